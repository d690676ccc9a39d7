package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childPIDsVar names the file to which an evaluation child of this test
// binary appends its pid (TestMain).
const childPIDsVar = "CHARTER_TEST_CHILD_PIDS"

// recordPID appends this process's pid to the file name.
func recordPID(name string) {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return // the test that set the variable notices the missing pid
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
}

// childPIDs returns the pids recorded in the file name.
func childPIDs(t *testing.T, name string) []int {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q is not a pid", name, f)
		}
		pids = append(pids, pid)
	}
	return pids
}

// awaitChildPID waits until an evaluation child recorded its pid in name.
func awaitChildPID(t *testing.T, name string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if pids := childPIDs(t, name); len(pids) > 0 {
			return pids[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no evaluation child started within 20 s")
	return 0
}

// assertGone fails the test when a process pid still exists (a zombie
// counts: nobody reaped it), after a short grace for the kernel to reap an
// orphan that init adopted.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Errorf("the evaluation child %d still exists", pid)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hostileCUE reads a hostile CUE file of the limits' own tests.
func hostileCUE(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../schema/cueproc/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestValidateCUELimits: charter validate over a policy with a CUE bomb or
// an endless comprehension reports the evaluation that exceeded its limit
// as an error of its file, with a position, beside the policy's other
// errors, and exits 1; the evaluation ran in a child, not in this process.
func TestValidateCUELimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes that run into their limits")
	}
	tests := []struct {
		name, file, timeout string
		want                *regexp.Regexp
	}{
		// A generous timeout: the bomb must meet the memory limit.
		{"a CUE bomb", "bomb.cue", "60s", regexp.MustCompile(`^hostile/a\.cue:1:1: evaluation exceeded 64 MiB \(--cue-memory-limit\)$`)},
		// It meets one or the other, whichever comes first.
		{"a comprehension of 20000 × 20000", "comprehension.cue", "2s",
			regexp.MustCompile(`^hostile/a\.cue:1:1: evaluation exceeded (64 MiB \(--cue-memory-limit\)|2s \(--cue-timeout\))$`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writePolicyFile(t, dir, "roles.cue", serveRoles)
			writePolicyFile(t, dir, "records.json", `{"records": {"r1": {"name": "R1", "users": ["ann"], "statements": [{"roles": ["Usr"], "resources": ["documents"]}]}}}`)
			writePolicyFile(t, dir, "hostile/a.cue", hostileCUE(t, tc.file))

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			code, stdout, stderr := runCLI(t, "validate", dir, "--cue-memory-limit", "64MiB", "--cue-timeout", tc.timeout)
			took := time.Since(start)
			runtime.ReadMemStats(&after)

			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			if code != exitFailed || !slices.ContainsFunc(lines, tc.want.MatchString) {
				t.Fatalf("exit %d, want 1 and a line matching %s\nstdout:\n%s\nstderr:\n%s", code, tc.want, stdout, stderr)
			}
			if !strings.Contains(stdout, `records.json:1:`) || !strings.HasSuffix(stdout, ": invalid, 2 errors\n") {
				t.Errorf("the other file's error is missing:\n%s", stdout)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("this process allocated %d MiB during the load: the evaluation did not run in a child", grew>>20)
			}
			t.Logf("%s after %v", lines[0], took)

			code, stdout, _ = runCLI(t, "validate", dir, "--format", "json", "--cue-memory-limit", "64MiB", "--cue-timeout", tc.timeout)
			var report struct {
				Errors []jsonError `json:"errors"`
			}
			if err := json.Unmarshal([]byte(stdout), &report); err != nil || code != exitFailed {
				t.Fatalf("--format json: exit %d, %v\n%s", code, err, stdout)
			}
			if i := slices.IndexFunc(report.Errors, func(e jsonError) bool { return e.File == "hostile/a.cue" }); i < 0 ||
				report.Errors[i].Line != 1 || report.Errors[i].Col != 1 || !strings.HasPrefix(report.Errors[i].Message, "evaluation exceeded ") {
				t.Errorf("--format json: no error at hostile/a.cue:1:1 saying evaluation exceeded:\n%s", stdout)
			}
		})
	}
}

// TestCUELimitFlags: the limits are flags of every command that loads a
// policy, read from CHARTER_* as well, and bad values are usage errors.
func TestCUELimitFlags(t *testing.T) {
	dir := t.TempDir()
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	commands := map[string][]string{
		"validate": {"validate", dir}, "test": {"test", dir},
		"check": {"check", "--dir", dir, "ann", "documents/d1", "documents:read"}, "serve": {"serve", "--listen", "127.0.0.1:0"},
	}
	for _, cmd := range commands {
		for _, args := range [][]string{{"--cue-memory-limit", "lots"}, {"--cue-memory-limit", "1MiB"}, {"--cue-timeout", "0s"}} {
			code, _, stderr := runCLI(t, append(slices.Clone(cmd), args...)...)
			if code != exitFailure || !strings.Contains(stderr, strings.TrimLeft(args[0], "-")) {
				t.Errorf("charter %s %s: exit %d, stderr %q; want exit 2 naming the flag", cmd[0], strings.Join(args, " "), code, stderr)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	env := &cliEnv{stdout: &stdout, stderr: &stderr, now: time.Now, getenv: func(k string) string {
		return map[string]string{"CHARTER_CUE_MEMORY_LIMIT": "17MiB", "CHARTER_CUE_TIMEOUT": "1ns"}[k]
	}}
	if code := run(t.Context(), env, []string{"validate", dir}); code != exitFailed || !strings.Contains(stdout.String(), "roles.cue:1:1: evaluation exceeded 1ns (--cue-timeout)") {
		t.Errorf("CHARTER_CUE_TIMEOUT=1ns: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

func TestSizeValue(t *testing.T) {
	for text, want := range map[string]int64{"1GiB": 1 << 30, "512MiB": 512 << 20, "256 MiB": 256 << 20, "64KiB": 64 << 10, "2TiB": 2 << 40, "1000": 1000, "1000B": 1000} {
		var s sizeValue
		if err := s.Set(text); err != nil || int64(s) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", text, s, err, want)
		}
	}
	for _, text := range []string{"", "1GB", "1.5GiB", "-1MiB", "GiB", "99999999999TiB"} {
		var s sizeValue
		if err := s.Set(text); err == nil {
			t.Errorf("Set(%q) = %d, want an error", text, s)
		}
	}
	if s := sizeValue(1 << 30); s.String() != "1GiB" {
		t.Errorf("String() = %q, want 1GiB", s.String())
	}
}

// TestServeCUELimits: charter serve over a directory keeps serving its last
// good snapshot, and stays ready, while a CUE bomb sits in it; /v1/status
// shows the bomb's error with its position; once the bomb is gone, edits
// are served again.
func TestServeCUELimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes that run into their limits")
	}
	dir := t.TempDir()
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	writePolicyFile(t, dir, "records.cue", versionRecords(1))
	s := launchServer(t, serveConfig{source: dir, debounce: 50 * time.Millisecond, load: &loadOptions{memoryLimit: 64 << 20, timeout: time.Minute}})
	s.waitFor(t, func() bool { return s.status(t).Revision != "" })
	good := s.status(t).Revision

	writePolicyFile(t, dir, "bomb/a.cue", hostileCUE(t, "bomb.cue"))
	const want = "evaluation exceeded 64 MiB (--cue-memory-limit)"
	s.waitFor(t, func() bool {
		st := s.status(t)
		return st.Error != nil && slices.ContainsFunc(st.Error.Errors, func(e struct {
			Position string `json:"position"`
			Message  string `json:"message"`
		}) bool {
			return e.Position == "bomb/a.cue:1:1" && e.Message == want
		})
	})
	if st := s.status(t); st.Revision != good {
		t.Fatalf("served %s, want the last good %s", st.Revision, good)
	}
	if ok, rev, err := s.check("ann", "documents/d1", "documents:read"); err != nil || !ok || rev != good {
		t.Fatalf("check from the last good snapshot: %v %s %v", ok, rev, err)
	}
	resp, err := http.Get(s.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d with a bomb in the source, want 200", resp.StatusCode)
	}

	if err := os.RemoveAll(filepath.Join(dir, "bomb")); err != nil {
		t.Fatal(err)
	}
	writePolicyFile(t, dir, "records.cue", versionRecords(2))
	s.waitFor(t, func() bool { st := s.status(t); return st.Revision != good && st.Error == nil })
	if ok, _, err := s.check("ann", "documents/d2", "documents:read"); err != nil || !ok {
		t.Fatalf("the edit after the bomb is not served: %v %v", ok, err)
	}
}
