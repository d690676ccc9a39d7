// Package cueproc evaluates CUE in child processes of the running binary,
// under a memory limit and a deadline, so that a runaway evaluation (a CUE
// bomb, an endless comprehension) ends a child and never the process that
// asked. Its Runner is the schema.CUERunner of the sidecar and the CLI;
// Child is what a child runs, behind the hidden subcommand Subcommand of
// the same binary.
//
// A child evaluates one request at a time and is reused for the next
// (at most MaxRequests), because a fresh process pays for its start and,
// above all, for a heap it must fault in and warm up: the first unit a
// process evaluates costs about twice what the next ones do. A child that
// exceeds a limit or crashes is killed and never reused, and a unit that
// kills a reused child is evaluated again in a fresh one before it is
// blamed, so that nothing a previous unit left behind can fail it.
package cueproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/charter-policy/charter/schema"
)

// Subcommand is the hidden subcommand under which the binary runs Child.
// The binary's main (and the TestMain of a test binary that uses a Runner)
// must hand the arguments after it to Child.
const Subcommand = "internal-cue-eval"

// Defaults of Options.
const (
	DefaultMemoryLimit = 1 << 30
	DefaultTimeout     = 30 * time.Second
	DefaultMaxResponse = 256 << 20
	DefaultMaxRequests = 256
)

// minMemoryLimit is the smallest memory limit New accepts: the heap a small
// unit needs, on top of what the runtime itself maps.
const minMemoryLimit = 16 << 20

// exitBroken is the child's exit code when it cannot read a request or
// write a response; a Go runtime failure (out of memory, a panic) exits 2.
const exitBroken = 3

// exitMemory is the child's exit code when its watchdog finds the heap
// past the memory limit (watchMemory).
const exitMemory = 4

// memoryWatchEvery is how often a child's watchdog samples its heap.
const memoryWatchEvery = 5 * time.Millisecond

// stderrHead bounds how much of a child's stderr is kept: enough to
// recognise the runtime's out-of-memory report, which comes first. What is
// kept is never shown: it may hold the content of a policy file.
const stderrHead = 4096

// killGrace bounds how long a run waits for a child to be reaped once it
// has been killed or has broken its pipes.
const killGrace = time.Second

// idleRelease is how long a child waits for its next request before it
// returns the memory its heap no longer uses to the system.
const idleRelease = 5 * time.Second

// Options configure a Runner.
type Options struct {
	// MemoryLimit bounds the memory of each child, in bytes, on top of
	// what the Go runtime maps before it starts (0: DefaultMemoryLimit).
	MemoryLimit int64
	// Timeout bounds the wall time of each evaluation (0: DefaultTimeout).
	Timeout time.Duration
	// MaxResponse bounds the size of an evaluation's result (0: DefaultMaxResponse).
	MaxResponse int64
	// MaxRequests bounds how many evaluations one child makes before it is
	// replaced (0: DefaultMaxRequests).
	MaxRequests int
	// MaxIdle bounds how many children wait for a request between runs
	// (0: GOMAXPROCS, which is how many units a Loader evaluates at once).
	MaxIdle int
	// MemoryLimitName and TimeoutName name the settings in messages, as
	// "evaluation exceeded 1 GiB (--cue-memory-limit)"; empty: not named.
	MemoryLimitName, TimeoutName string
}

// Runner evaluates each request in a child process of the running binary,
// `<binary> internal-cue-eval --memory-limit=N`, which reads requests from
// its stdin and writes responses to its stdout, each preceded by its length
// (a uvarint). It implements schema.CUERunner; Close ends the children that
// wait for a request (they also end when this process does).
type Runner struct {
	path  string // the running binary
	argv0 string
	opts  Options

	mu     sync.Mutex
	idle   []*child
	closed bool
}

// New returns a Runner for the running binary. It starts no process.
func New(opts Options) (*Runner, error) {
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponse == 0 {
		opts.MaxResponse = DefaultMaxResponse
	}
	if opts.MaxRequests == 0 {
		opts.MaxRequests = DefaultMaxRequests
	}
	if opts.MaxIdle == 0 {
		opts.MaxIdle = runtime.GOMAXPROCS(0)
	}
	switch {
	case opts.MemoryLimit < minMemoryLimit:
		return nil, fmt.Errorf("a CUE memory limit of %s is too small: want at least %s", FormatSize(opts.MemoryLimit), FormatSize(minMemoryLimit))
	case opts.Timeout < 0:
		return nil, fmt.Errorf("a CUE timeout of %v is negative", opts.Timeout)
	case opts.MaxResponse < 0 || opts.MaxRequests < 0 || opts.MaxIdle < 0:
		return nil, errors.New("a negative bound of CUE responses, requests or idle children")
	}
	path, err := executable()
	if err != nil {
		return nil, fmt.Errorf("find the running binary to evaluate CUE in: %w", err)
	}
	return &Runner{path: path, argv0: os.Args[0], opts: opts}, nil
}

// RunCUE evaluates request in a child process and returns its response. A
// child that exceeds the memory limit, the timeout or the response bound,
// or that crashes, yields a *schema.EvalError; when ctx ends, the child is
// killed and ctx's error returned; a child that cannot be started, or that
// cannot read the request, is any other error.
func (r *Runner) RunCUE(ctx context.Context, request []byte) ([]byte, error) {
	c, err := r.take()
	if err != nil {
		return nil, err
	}
	response, err := r.exchange(ctx, c, request)
	var failed *childFailure
	if errors.As(err, &failed) && c.served > 0 {
		// Perhaps not this unit's fault: blame it only in a fresh child.
		if c, err = r.start(); err != nil {
			return nil, err
		}
		response, err = r.exchange(ctx, c, request)
	}
	switch {
	case err == nil:
		r.put(c)
		return response, nil
	case errors.As(err, &failed):
		return nil, failed.err
	}
	return nil, err
}

// Close ends the children that wait for a request. Runs in progress go on;
// their children end when they are done.
func (r *Runner) Close() error {
	r.mu.Lock()
	idle := r.idle
	r.idle, r.closed = nil, true
	r.mu.Unlock()
	for _, c := range idle {
		c.retire()
	}
	return nil
}

// take returns an idle child that is still alive, or starts one.
func (r *Runner) take() (*child, error) {
	r.mu.Lock()
	for len(r.idle) > 0 {
		c := r.idle[len(r.idle)-1]
		r.idle = r.idle[:len(r.idle)-1]
		select {
		case <-c.exited:
			continue // it died while it waited (killed from outside)
		default:
		}
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()
	return r.start()
}

// put keeps c for the next request, or retires it.
func (r *Runner) put(c *child) {
	r.mu.Lock()
	keep := !r.closed && c.served < r.opts.MaxRequests && len(r.idle) < r.opts.MaxIdle
	if keep {
		r.idle = append(r.idle, c)
	}
	r.mu.Unlock()
	if !keep {
		c.retire()
	}
}

// child is one child process.
type child struct {
	cmd    *exec.Cmd
	stdin  *os.File      // the write end of the child's stdin
	stdout *bufio.Reader // over the read end of the child's stdout
	out    *os.File
	stderr *boundedBuffer
	exited chan struct{} // closed once the process has exited and was reaped
	served int           // requests it answered
}

func (r *Runner) start() (*child, error) {
	inRead, inWrite, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start a CUE evaluation child: %w", err)
	}
	outRead, outWrite, err := os.Pipe()
	if err != nil {
		inRead.Close()
		inWrite.Close()
		return nil, fmt.Errorf("start a CUE evaluation child: %w", err)
	}
	cmd := exec.Command(r.path, Subcommand, "--memory-limit="+strconv.FormatInt(r.opts.MemoryLimit, 10))
	cmd.Args[0] = r.argv0
	cmd.Stdin, cmd.Stdout = inRead, outWrite
	c := &child{cmd: cmd, stdin: inWrite, stdout: bufio.NewReader(outRead), out: outRead, stderr: &boundedBuffer{max: stderrHead}, exited: make(chan struct{})}
	cmd.Stderr = c.stderr
	cmd.Env = append(os.Environ(), "GOTRACEBACK=none")
	cmd.WaitDelay = killGrace
	cmd.SysProcAttr = childProcAttr()
	err = cmd.Start()
	inRead.Close() // the child's ends
	outWrite.Close()
	if err != nil {
		inWrite.Close()
		outRead.Close()
		return nil, fmt.Errorf("start a CUE evaluation child: %w", err)
	}
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(c.exited)
	}()
	return c, nil
}

// retire closes c's stdin, so that it exits once idle, and its stdout.
func (c *child) retire() {
	c.stdin.Close()
	c.out.Close()
}

// kill ends c at once and waits until it is reaped.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	c.retire()
	<-c.exited
}

// childFailure is an evaluation that ended its child: err is what the unit
// is told (a *schema.EvalError) if the child was fresh.
type childFailure struct{ err error }

func (f *childFailure) Error() string { return f.err.Error() }

// exchange sends request to c and reads the response, within the timeout
// and while ctx lasts. On any error but a childFailure of a reused child,
// c is dead or killed.
func (r *Runner) exchange(ctx context.Context, c *child, request []byte) ([]byte, error) {
	type result struct {
		response []byte
		err      error
		written  bool
	}
	done := make(chan result, 1)
	go func() {
		_, err := c.stdin.Write(binary.AppendUvarint(nil, uint64(len(request))))
		if err == nil {
			_, err = c.stdin.Write(request)
		}
		if err != nil {
			done <- result{err: err}
			return
		}
		n, err := binary.ReadUvarint(c.stdout)
		if err != nil {
			done <- result{err: err, written: true}
			return
		}
		if n > uint64(r.opts.MaxResponse) {
			done <- result{err: errTooLarge, written: true}
			return
		}
		response := make([]byte, n)
		if _, err := io.ReadFull(c.stdout, response); err != nil {
			done <- result{err: err, written: true}
			return
		}
		done <- result{response: response, written: true}
	}()
	timer := time.NewTimer(r.opts.Timeout)
	defer timer.Stop()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		c.kill()
		<-done
		return nil, ctx.Err()
	case <-timer.C:
		c.kill()
		<-done
		return nil, &schema.EvalError{Message: "evaluation exceeded " + r.opts.Timeout.String() + named(r.opts.TimeoutName)}
	}
	switch {
	case res.err == nil:
		c.served++
		return res.response, nil
	case errors.Is(res.err, errTooLarge):
		c.kill()
		return nil, &schema.EvalError{Message: "evaluation result exceeded " + FormatSize(r.opts.MaxResponse)}
	}
	// The child broke its pipes: it died, or is dying.
	select {
	case <-c.exited:
	case <-time.After(killGrace):
		c.kill()
	}
	c.retire()
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	state := c.cmd.ProcessState
	head := c.stderr.result()
	switch {
	case state.ExitCode() == exitMemory || outOfMemory(head):
		return nil, &childFailure{&schema.EvalError{Message: "evaluation exceeded " + FormatSize(r.opts.MemoryLimit) + named(r.opts.MemoryLimitName)}}
	case state.ExitCode() == exitBroken && !res.written && c.served > 0:
		return nil, &childFailure{fmt.Errorf("a CUE evaluation child ended (%v)", state)} // before it read the request: try a fresh one
	case state.ExitCode() == exitBroken:
		return nil, fmt.Errorf("the CUE evaluation child could not read its request or write its response (%v)", state)
	}
	return nil, &childFailure{&schema.EvalError{Message: fmt.Sprintf("CUE evaluation failed (%v)", state)}}
}

// errTooLarge reports a response longer than Options.MaxResponse.
var errTooLarge = errors.New("the response is too large")

// startedAs returns the absolute path of the binary as it was started
// (os.Args[0], looked up in PATH when it has no slash), for a system that
// cannot tell the running binary otherwise.
func startedAs() (string, error) {
	path, err := exec.LookPath(os.Args[0])
	if err != nil {
		return "", fmt.Errorf("neither /proc/self/exe nor %q names the running binary: %w", os.Args[0], err)
	}
	return filepath.Abs(path)
}

// outOfMemory reports whether the head of a child's stderr is the Go
// runtime's report that an allocation failed (the hard limit was hit): the
// heap could not grow, or, in a binary built with cgo, a thread's stack
// could not be mapped, or, built with -race, the race detector's shadow
// memory (ENOMEM, errno 12).
func outOfMemory(stderr []byte) bool {
	for _, report := range []string{
		"fatal error: runtime: out of memory",
		"fatal error: out of memory",
		"runtime: cannot allocate memory",
		"runtime/cgo: pthread_create failed: Resource temporarily unavailable",
		"ThreadSanitizer failed to allocate",
	} {
		if bytes.Contains(stderr, []byte(report)) {
			return true
		}
	}
	return false
}

func named(setting string) string {
	if setting == "" {
		return ""
	}
	return " (" + setting + ")"
}

// boundedBuffer keeps the first max bytes written to it and drops the
// rest; writes never fail, so the child is never blocked on its stderr.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// result returns what was kept.
func (b *boundedBuffer) result() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// Child is a child process's side of a Runner: args are the arguments
// after Subcommand. It limits the process's memory first, then evaluates
// each request read from stdin (a uvarint length, then the request) and
// writes its response to stdout the same way, until stdin ends. It returns
// the process's exit code; errors go to stderr.
func Child(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(Subcommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	limit := fs.Int64("memory-limit", DefaultMemoryLimit, "memory limit in bytes")
	if err := fs.Parse(args); err != nil {
		return exitBroken
	}
	if *limit < minMemoryLimit || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: want --memory-limit of at least %d bytes and no arguments\n", Subcommand, minMemoryLimit)
		return exitBroken
	}
	if err := limitMemory(*limit); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Subcommand, err)
		return exitBroken
	}
	stopWatch := watchMemory(*limit, func() {
		fmt.Fprintf(stderr, "%s: the heap exceeded the memory limit of %d bytes\n", Subcommand, *limit)
		os.Exit(exitMemory)
	})
	defer stopWatch()
	if err := serve(ctx, bufio.NewReader(stdin), stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Subcommand, err)
		return exitBroken
	}
	return 0
}

// watchMemory samples the heap's live and unswept objects every
// memoryWatchEvery and calls exceeded once they pass limit. The hard limit
// (limitMemory) stops an allocation beyond it too, but the Go runtime does
// not always report that as running out of memory: an allocation that
// fails inside the garbage collector may end the process with a fault. The
// watchdog ends the process first, with exitMemory, in all but the fastest
// growth. It returns a function that stops it.
func watchMemory(limit int64, exceeded func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(memoryWatchEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 && int64(sample[0].Value.Uint64()) > limit {
				exceeded()
				return
			}
		}
	}()
	return func() { close(done) }
}

// serve answers the requests of in on out until in ends or ctx does.
// Whenever it has waited idleRelease for a request, it returns the memory
// its heap no longer uses to the system.
func serve(ctx context.Context, in *bufio.Reader, out io.Writer) error {
	release := time.AfterFunc(idleRelease, debug.FreeOSMemory)
	defer release.Stop()
	for ctx.Err() == nil {
		n, err := binary.ReadUvarint(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read a request: %w", err)
		}
		release.Stop()
		request := make([]byte, n)
		if _, err := io.ReadFull(in, request); err != nil {
			return fmt.Errorf("read a request of %d bytes: %w", n, err)
		}
		response, err := schema.EvalCUERequest(request)
		if err != nil {
			return err
		}
		_, err = out.Write(binary.AppendUvarint(nil, uint64(len(response))))
		if err == nil {
			_, err = out.Write(response)
		}
		if err != nil {
			return fmt.Errorf("write a response: %w", err)
		}
		release.Reset(idleRelease)
	}
	return ctx.Err()
}

// FormatSize renders a number of bytes in the largest binary unit that
// divides it: "1 GiB", "512 MiB", "1536 KiB", "1000 B".
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}
