package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestValidateInterrupted runs charter validate on a policy whose CUE
// evaluation would take minutes (a comprehension of 20000 × 20000, issue
// 8), sends SIGINT once the child process evaluating it runs, and expects
// the process to exit promptly with exit code 2 and "interrupted", its
// child gone with it.
func TestValidateInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	for _, sub := range []string{"validate", "test"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			writePolicyFile(t, dir, "slow.cue", hostileCUE(t, "comprehension.cue"))
			pids := filepath.Join(t.TempDir(), "pids")
			cmd := exec.Command(os.Args[0], sub, dir)
			cmd.Env = append(os.Environ(), "CHARTER_TEST_MAIN=1", childPIDsVar+"="+pids)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() { _ = cmd.Process.Kill() }()
			child := awaitChildPID(t, pids) // it is evaluating
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			select {
			case err := <-done:
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
					t.Fatalf("exit: %v, want exit code %d\n%s", err, exitFailure, stderr.String())
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("stderr does not say interrupted:\n%s", stderr.String())
				}
				t.Logf("exited %v after SIGINT", time.Since(sent))
			case <-time.After(3 * time.Second): // generous: the goal is a second
				_ = cmd.Process.Signal(syscall.SIGKILL)
				t.Fatalf("still running 3 s after SIGINT\n%s", stderr.String())
			}
			assertGone(t, child)
		})
	}
}

// TestServeExitsWithStuckReload: charter serve over a policy whose CUE
// evaluation runs for minutes. SIGTERM kills the child evaluating it, so
// the reconciler stops at once and the process exits 0 well within the
// drain bound (10 s), its child gone.
func TestServeExitsWithStuckReload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	writePolicyFile(t, dir, "slow.cue", hostileCUE(t, "comprehension.cue"))
	pids := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(os.Args[0], "serve", "--source", dir, "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "CHARTER_TEST_MAIN=1", childPIDsVar+"="+pids)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	log := readLogLines(stderr)
	log.await(t, "charter is serving")
	log.await(t, "loading revision")
	child := awaitChildPID(t, pids) // the first reload is under way, in CUE
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	log.await(t, "shutting down: draining in-flight requests")
	log.await(t, "stopped")
	log.awaitEOF(t) // all of stderr is read before Wait closes the pipe
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v, want 0\n%s", err, log.raw.String())
	}
	if strings.Contains(log.raw.String(), "did not stop within the drain timeout") {
		t.Errorf("the reconciler did not stop when its evaluation child was killed:\n%s", log.raw.String())
	}
	if took := time.Since(sent); took > drainTimeout {
		t.Errorf("exited %v after SIGTERM, want well within the drain bound %v", took, drainTimeout)
	}
	assertGone(t, child)
}
