package cueproc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/cueproc"
)

// TestMain lets this test binary be the child its Runners start; such a
// child appends its pid to the file $CUEPROC_TEST_CHILD_PIDS names, when set.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == cueproc.Subcommand {
		if name := os.Getenv(childPIDsVar); name != "" {
			if f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				fmt.Fprintln(f, os.Getpid())
				f.Close()
			}
		}
		os.Exit(cueproc.Child(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// hostile reads a hostile CUE file of testdata.
func hostile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// newRunner returns a Runner that is closed when the test ends.
func newRunner(t *testing.T, opts cueproc.Options) *cueproc.Runner {
	t.Helper()
	r, err := cueproc.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// loadWith loads the policy root fsys with a Loader whose CUE runs in children under opts.
func loadWith(ctx context.Context, t *testing.T, opts cueproc.Options, fsys fstest.MapFS) error {
	t.Helper()
	r := newRunner(t, opts)
	l := schema.NewLoader()
	l.CUE = r
	_, err := l.Load(ctx, fsys)
	return err
}

// busyCUE keeps the evaluator busy for minutes in little memory: a
// comprehension over 20000 × 20000 pairs that keeps none of them.
const busyCUE = `package policies

import "list"

n: len([for i in list.Range(0, 20000, 1) for j in list.Range(0, 20000, 1) if i*j < 0 {i}])
`

// TestRunnerLimits: a unit that exceeds the memory limit, the timeout or
// the response bound is an error of that unit, at its first file, that
// names the limit and the setting; the other units still load and are
// checked.
func TestRunnerLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes that run into their limits")
	}
	good := []byte(`roles: R: {name: "R", permissions: [{action: "documents:read"}]}` + "\n")
	tests := []struct {
		name string
		opts cueproc.Options
		file string
		data []byte
		want string
	}{
		{"a CUE bomb", cueproc.Options{MemoryLimit: 256 << 20, Timeout: time.Minute, MemoryLimitName: "--cue-memory-limit"},
			"bomb/a.cue", hostile(t, "bomb.cue"), "bomb/a.cue:1:1: evaluation exceeded 256 MiB (--cue-memory-limit)"},
		{"a comprehension that never ends", cueproc.Options{MemoryLimit: 1 << 30, Timeout: 2 * time.Second, TimeoutName: "--cue-timeout"},
			"busy/a.cue", []byte(busyCUE), "busy/a.cue:1:1: evaluation exceeded 2s (--cue-timeout)"},
		{"a result larger than the bound", cueproc.Options{MaxResponse: 64},
			"big/a.cue", good, "big/a.cue:1:1: evaluation result exceeded 64 B"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{tc.file: {Data: tc.data}, "ok/r.json": {Data: []byte(`{"records": {"r": {"name": "R", "users": ["u"], "statements": [{"roles": ["Nope"], "resources": ["d"]}]}}}`)}}
			start := time.Now()
			err := loadWith(context.Background(), t, tc.opts, fsys)
			var errs schema.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want schema.Errors", err)
			}
			got := errs.Error()
			if !strings.Contains(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant one:\n%s", got, tc.want)
			}
			if !strings.Contains(got, `ok/r.json:1:`) || !strings.Contains(got, `"Nope"`) {
				t.Errorf("the other unit's reference error is missing:\n%s", got)
			}
			t.Logf("%s after %v", tc.want, time.Since(start))
		})
	}
}

// TestRunnerCancel: when the context ends, RunCUE returns its error at
// once and the child is gone (killed and reaped, not orphaned).
func TestRunnerCancel(t *testing.T) {
	t.Setenv(childPIDsVar, filepath.Join(t.TempDir(), "pids"))
	r := newRunner(t, cueproc.Options{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.RunCUE(ctx, request(t, busyCUE))
		done <- err
	}()
	pid := awaitChild(t)
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("RunCUE returned %v after the context ended, want well under a second", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunCUE did not return 10 s after the context ended")
	}
	if alive(pid) {
		t.Errorf("the child %d is still there after RunCUE returned", pid)
	}
}

// TestRunnerCrash: a child that dies for another reason is an error of
// the unit that says how it ended, and quotes nothing the child printed.
func TestRunnerCrash(t *testing.T) {
	t.Setenv(childPIDsVar, filepath.Join(t.TempDir(), "pids"))
	r := newRunner(t, cueproc.Options{Timeout: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := r.RunCUE(context.Background(), request(t, busyCUE))
		done <- err
	}()
	if err := syscall.Kill(awaitChild(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-done
	var eval *schema.EvalError
	if !errors.As(err, &eval) || eval.Message != "CUE evaluation failed (signal: killed)" {
		t.Fatalf("err = %v, want the EvalError CUE evaluation failed (signal: killed)", err)
	}
}

// TestRunnerBrokenRequest: a request the child cannot read is the
// runner's error, not the unit's.
func TestRunnerBrokenRequest(t *testing.T) {
	r := newRunner(t, cueproc.Options{})
	_, err := r.RunCUE(context.Background(), []byte("not a request"))
	var eval *schema.EvalError
	if err == nil || errors.As(err, &eval) || !strings.Contains(err.Error(), "could not read its request") {
		t.Fatalf("err = %v, want a runner error saying the child could not read its request", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, opts := range []cueproc.Options{{MemoryLimit: 1 << 20}, {Timeout: -time.Second}, {MaxResponse: -1}} {
		if _, err := cueproc.New(opts); err == nil {
			t.Errorf("New(%+v) accepted", opts)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1 GiB", 256 << 20: "256 MiB", 1536 << 10: "1536 KiB", 3 << 40: "3 TiB", 1000: "1000 B", 0: "0 B"} {
		if got := cueproc.FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// request encodes a request for one CUE file the way the Loader does, by
// catching what a Loader hands its runner.
func request(t *testing.T, src string) []byte {
	t.Helper()
	c := &capture{}
	l := schema.NewLoader()
	l.CUE = c
	_, _ = l.Load(context.Background(), fstest.MapFS{"a.cue": {Data: []byte(src)}})
	if c.request == nil {
		t.Fatal("the Loader sent no request")
	}
	return c.request
}

// capture is a CUERunner that keeps the request and fails.
type capture struct{ request []byte }

func (c *capture) RunCUE(_ context.Context, request []byte) ([]byte, error) {
	c.request = bytes.Clone(request)
	return nil, errors.New("captured")
}

// childPIDsVar names the file to which an evaluation child of this test
// binary appends its pid (TestMain).
const childPIDsVar = "CUEPROC_TEST_CHILD_PIDS"

// awaitChild returns the pid of the first evaluation child started since
// the test set childPIDsVar, once it runs.
func awaitChild(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(os.Getenv(childPIDsVar))
		if line, _, ok := strings.Cut(string(data), "\n"); ok {
			pid, err := strconv.Atoi(line)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no evaluation child within 10 s")
	return 0
}

// alive reports whether a process pid exists (a zombie counts: it was not reaped).
func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// pids returns the pids the children of this test recorded, in order.
func pids(t *testing.T) []int {
	t.Helper()
	data, err := os.ReadFile(os.Getenv(childPIDsVar))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pid)
	}
	return out
}

// TestRunnerReusesChildren: a child answers request after request, up to
// MaxRequests; one that died while idle is replaced; Close ends the idle
// ones.
func TestRunnerReusesChildren(t *testing.T) {
	t.Setenv(childPIDsVar, filepath.Join(t.TempDir(), "pids"))
	r := newRunner(t, cueproc.Options{MaxRequests: 3})
	good := request(t, `roles: R: {name: "R", permissions: [{action: "documents:read"}]}`)
	run := func() {
		t.Helper()
		if _, err := r.RunCUE(context.Background(), good); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		run()
	}
	if got := pids(t); len(got) != 2 {
		t.Fatalf("4 requests with MaxRequests 3 started %d children (%v), want 2", len(got), got)
	}
	second := pids(t)[1]
	if err := syscall.Kill(second, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for alive(second) {
		time.Sleep(5 * time.Millisecond) // until the runner reaped it
	}
	run()
	got := pids(t)
	if len(got) != 3 {
		t.Fatalf("after the idle child was killed, %d children (%v), want a third", len(got), got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(got[2]) {
		if time.Now().After(deadline) {
			t.Fatalf("the idle child %d is still there 5 s after Close", got[2])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunnerBlamesInAFreshChild: a unit that kills a reused child is
// evaluated again in a fresh one before its error is reported, and the
// runner goes on with fresh children afterwards.
func TestRunnerBlamesInAFreshChild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts children that run into their memory limit")
	}
	t.Setenv(childPIDsVar, filepath.Join(t.TempDir(), "pids"))
	r := newRunner(t, cueproc.Options{MemoryLimit: 64 << 20, Timeout: time.Minute})
	good := request(t, `roles: R: {name: "R", permissions: [{action: "documents:read"}]}`)
	if _, err := r.RunCUE(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	_, err := r.RunCUE(context.Background(), request(t, string(hostile(t, "bomb.cue"))))
	var eval *schema.EvalError
	if !errors.As(err, &eval) || eval.Message != "evaluation exceeded 64 MiB" {
		t.Fatalf("err = %v, want the EvalError evaluation exceeded 64 MiB", err)
	}
	if got := pids(t); len(got) != 2 {
		t.Fatalf("%d children (%v), want 2: the reused one, then a fresh one for the bomb", len(got), got)
	}
	if _, err := r.RunCUE(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	if got := pids(t); len(got) != 3 {
		t.Fatalf("%d children (%v), want 3: none of the killed ones reused", len(got), got)
	}
}
