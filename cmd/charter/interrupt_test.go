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

// slowCUE is a comprehension of 20000 × 20000 elements: its evaluation runs
// for many minutes (issue 8).
const slowCUE = `package policies

import "list"

x: [for i in list.Range(0, 20000, 1) for j in list.Range(0, 20000, 1) {i*j}]
`

// TestValidateInterrupted runs charter validate on a policy whose CUE
// evaluation takes minutes, sends SIGINT once it is evaluating, and expects
// the process to exit promptly with exit code 2 and "interrupted".
func TestValidateInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	for _, sub := range []string{"validate", "test"} {
		t.Run(sub, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "slow.cue"), []byte(slowCUE), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], sub, dir)
			cmd.Env = append(os.Environ(), "CHARTER_TEST_MAIN=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() { _ = cmd.Process.Kill() }()
			time.Sleep(500 * time.Millisecond) // let it start evaluating
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
		})
	}
}

// TestServeExitsWithStuckReload: charter serve over a policy whose CUE
// evaluation runs for minutes. The reload cannot be interrupted inside CUE,
// yet SIGTERM ends the process within the drain bound (10 s), exit 0.
func TestServeExitsWithStuckReload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process and waits for the drain bound")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "slow.cue"), []byte(slowCUE), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "serve", "--source", dir, "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug")
	cmd, log := p.cmd, p.log
	log.await(t, "loading revision") // the first reload is under way, and will be stuck in CUE
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	log.await(t, "shutting down: draining in-flight requests")
	log.await(t, "the reconciler did not stop within the drain timeout; exiting without it")
	log.await(t, "stopped")
	log.awaitEOF(t) // all of stderr is read before Wait closes the pipe
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v, want 0\n%s", err, log.raw.String())
	}
	if took := time.Since(sent); took > drainTimeout+10*time.Second { // the bound plus a generous margin
		t.Errorf("exited %v after SIGTERM, want about the drain bound %v", took, drainTimeout)
	}
}
