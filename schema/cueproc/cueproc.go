// Package cueproc evaluates CUE in a child process of the running binary,
// under a memory limit and a deadline, so that a runaway evaluation (a CUE
// bomb, an endless comprehension) ends that child and never the process
// that asked. Its Runner is the schema.CUERunner of the sidecar and the
// CLI; Child is what the child runs, behind the hidden subcommand
// Subcommand of the same binary.
package cueproc

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
)

// minMemoryLimit is the smallest memory limit New accepts: the heap a small
// unit needs, on top of what the runtime itself maps.
const minMemoryLimit = 16 << 20

// Exit codes of the child besides 0; a Go runtime failure (out of memory,
// a panic) exits 2.
const exitBroken = 3 // the request could not be read or the response written

// stderrHead bounds how much of the child's stderr is kept: enough to
// recognise the runtime's out-of-memory report, which comes first. What
// is kept is never shown: it may hold the content of a policy file.
const stderrHead = 4096

// killGrace bounds how long a run waits for the child's output once the
// child has been killed or has exited.
const killGrace = time.Second

// Options configure a Runner.
type Options struct {
	// MemoryLimit bounds the memory of each evaluation, in bytes, on top
	// of what the Go runtime maps before it starts (0: DefaultMemoryLimit).
	MemoryLimit int64
	// Timeout bounds the wall time of each evaluation (0: DefaultTimeout).
	Timeout time.Duration
	// MaxResponse bounds the size of an evaluation's result (0: DefaultMaxResponse).
	MaxResponse int64
	// MemoryLimitName and TimeoutName name the settings in messages, as
	// "evaluation exceeded 1 GiB (--cue-memory-limit)"; empty: not named.
	MemoryLimitName, TimeoutName string
}

// Runner runs each CUE evaluation in a new child process of the running
// binary: `<binary> internal-cue-eval --memory-limit=N`, the request on its
// stdin and the response on its stdout. It implements schema.CUERunner.
type Runner struct {
	path  string // the running binary
	argv0 string
	opts  Options
}

// New returns a Runner for the running binary.
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
	switch {
	case opts.MemoryLimit < minMemoryLimit:
		return nil, fmt.Errorf("a CUE memory limit of %s is too small: want at least %s", FormatSize(opts.MemoryLimit), FormatSize(minMemoryLimit))
	case opts.Timeout < 0:
		return nil, fmt.Errorf("a CUE timeout of %v is negative", opts.Timeout)
	case opts.MaxResponse < 0:
		return nil, fmt.Errorf("a maximum CUE response of %d bytes is negative", opts.MaxResponse)
	}
	path, err := executable()
	if err != nil {
		return nil, fmt.Errorf("find the running binary to evaluate CUE in: %w", err)
	}
	return &Runner{path: path, argv0: os.Args[0], opts: opts}, nil
}

// RunCUE evaluates request in a new child process and returns its response.
// A child that exceeds the memory limit, the timeout or the response bound,
// or that crashes, yields a *schema.EvalError; when ctx ends, the child is
// killed and ctx's error returned; a child that cannot be started is any
// other error.
func (r *Runner) RunCUE(ctx context.Context, request []byte) ([]byte, error) {
	runCtx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, r.path, Subcommand, "--memory-limit="+strconv.FormatInt(r.opts.MemoryLimit, 10))
	cmd.Args[0] = r.argv0
	cmd.Stdin = bytes.NewReader(request)
	stdout := &boundedBuffer{max: r.opts.MaxResponse, overflow: cancel}
	stderr := &boundedBuffer{max: stderrHead}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "GOTRACEBACK=none")
	cmd.WaitDelay = killGrace
	cmd.SysProcAttr = childProcAttr()
	err := cmd.Run()

	response, overflowed := stdout.result()
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if overflowed {
		return nil, &schema.EvalError{Message: "evaluation result exceeded " + FormatSize(r.opts.MaxResponse)}
	}
	if err == nil {
		return response, nil
	}
	if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		return nil, &schema.EvalError{Message: "evaluation exceeded " + r.opts.Timeout.String() + named(r.opts.TimeoutName)}
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return nil, fmt.Errorf("run the CUE evaluation child: %w", err)
	}
	head, _ := stderr.result()
	switch {
	case outOfMemory(head):
		return nil, &schema.EvalError{Message: "evaluation exceeded " + FormatSize(r.opts.MemoryLimit) + named(r.opts.MemoryLimitName)}
	case exit.ExitCode() == exitBroken:
		return nil, fmt.Errorf("the CUE evaluation child could not read its request or write its response (%v)", exit.ProcessState)
	}
	return nil, &schema.EvalError{Message: fmt.Sprintf("CUE evaluation failed (%v)", exit.ProcessState)}
}

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
// could not be mapped.
func outOfMemory(stderr []byte) bool {
	for _, report := range []string{
		"fatal error: runtime: out of memory",
		"fatal error: out of memory",
		"runtime: cannot allocate memory",
		"runtime/cgo: pthread_create failed: Resource temporarily unavailable",
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

// boundedBuffer keeps what is written to it up to max bytes. Past that it
// keeps nothing more, calls overflow (when set) once, and reports the
// overflow; writes never fail, so the child is never blocked on a pipe.
type boundedBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	max      int64
	over     bool
	overflow func()
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over {
		return len(p), nil
	}
	if int64(b.buf.Len())+int64(len(p)) > b.max {
		b.buf.Write(p[:b.max-int64(b.buf.Len())])
		b.over = true
		if b.overflow != nil {
			b.overflow()
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// result returns what was kept and whether more was written.
func (b *boundedBuffer) result() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes(), b.over
}

// Child is the child process's side of a Runner: args are the arguments
// after Subcommand. It limits the process's memory first, then evaluates
// the one request on stdin and writes the response to stdout. It returns
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
	if err := schema.ServeCUE(ctx, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Subcommand, err)
		return exitBroken
	}
	return 0
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
