package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/schema"
)

// paddedCUE is a valid policy file of exactly size bytes: a package clause
// and a comment.
func paddedCUE(size int) string {
	head := "package policies\n// "
	return head + strings.Repeat("x", size-len(head)-1) + "\n"
}

// sizeFlags parses args as the limit flags of a command that reads a
// policy root, as charter serve does.
func sizeFlags(t *testing.T, args ...string) *loadOptions {
	t.Helper()
	fs := newFlagSet("serve", "", os.Stderr)
	o := loadFlags(fs)
	if _, err := parseFlags(fs, args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	return o
}

// statusHas reports whether st holds the error position: message.
func statusHas(st statusBody, position, message string) bool {
	return st.Error != nil && slices.ContainsFunc(st.Error.Errors, func(e struct {
		Position string `json:"position"`
		Message  string `json:"message"`
	}) bool {
		return e.Position == position && e.Message == message
	})
}

// TestValidateSizeLimits: --max-file-size refuses a larger file and
// --max-total-size the file that takes the policy past it, each as an
// error positioned at the file, never read; by default both are read.
func TestValidateSizeLimits(t *testing.T) {
	dir := t.TempDir()
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	writePolicyFile(t, dir, "records.cue", versionRecords(1))
	writePolicyFile(t, dir, "big.cue", paddedCUE(2048))
	total := len(serveRoles) + len(versionRecords(1)) + 2048

	if code, stdout, stderr := runCLI(t, "validate", "--no-tests", dir); code != exitOK {
		t.Fatalf("default limits: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-file-size", "1KiB"}, "big.cue:1: file is 2048 bytes, more than the 1024 a policy file may hold"},
		{[]string{"--max-file-size=2047"}, "big.cue:1: file is 2048 bytes, more than the 2047 a policy file may hold"},
		// In the walk's order, big.cue, records.cue, roles.cue: the last
		// one passes the total.
		{[]string{"--max-total-size", fmt.Sprint(total - 1)}, fmt.Sprintf("roles.cue:1: policy files exceed %d bytes together", total-1)},
	} {
		code, stdout, stderr := runCLI(t, append(append([]string{"validate", "--no-tests"}, tc.args...), dir)...)
		if code != exitFailed || !strings.Contains(stdout, tc.want+"\n") {
			t.Errorf("validate %s: exit %d, want %d and %q\n%s%s", strings.Join(tc.args, " "), code, exitFailed, tc.want, stdout, stderr)
		}
	}
	if code, stdout, stderr := runCLI(t, "validate", "--no-tests", "--max-file-size", "2KiB", "--max-total-size", fmt.Sprint(total), dir); code != exitOK {
		t.Errorf("limits just large enough: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, cmd := range [][]string{{"validate"}, {"test"}, {"check", "ann", "documents/d1", "documents:read"}, {"serve"}} {
		for _, flag := range []string{"--max-file-size", "--max-total-size"} {
			code, _, stderr := runCLI(t, append(slices.Clone(cmd), flag, "lots")...)
			if code != exitFailure || !strings.Contains(stderr, flag[2:]) {
				t.Errorf("charter %s %s lots: exit %d, stderr %q; want exit 2 naming the flag", cmd[0], flag, code, stderr)
			}
		}
	}
}

// TestServeSizeLimits: charter serve over a directory, with the limits of
// its flags, refuses the same files as charter validate with the same
// positioned message in /v1/status, and keeps serving its last good
// snapshot.
func TestServeSizeLimits(t *testing.T) {
	dir := t.TempDir()
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	writePolicyFile(t, dir, "records.cue", versionRecords(1))
	total := len(serveRoles) + len(versionRecords(1))
	s := launchServer(t, serveConfig{source: dir, debounce: 20 * time.Millisecond,
		load: sizeFlags(t, "--max-file-size", "1KiB", "--max-total-size", fmt.Sprint(total+1500))})
	s.waitFor(t, func() bool { return s.status(t).Revision != "" })
	good := s.status(t).Revision

	for _, tc := range []struct {
		name     string
		size     int
		position string
		message  string
	}{
		{"big.cue", 2048, "big.cue:1", "file is 2048 bytes, more than the 1024 a policy file may hold"},
		{"more/a.cue", 1000, "more/b.cue:1", fmt.Sprintf("policy files exceed %d bytes together", total+1500)},
	} {
		writePolicyFile(t, dir, tc.name, paddedCUE(tc.size))
		if tc.name == "more/a.cue" {
			writePolicyFile(t, dir, "more/b.cue", paddedCUE(1000))
		}
		s.waitFor(t, func() bool { return statusHas(s.status(t), tc.position, tc.message) })
		if st := s.status(t); st.Revision != good {
			t.Fatalf("%s: served %s, want the last good %s", tc.name, st.Revision, good)
		}
		// charter validate with the same flags says the same.
		code, stdout, _ := runCLI(t, "validate", "--no-tests", "--max-file-size", "1KiB", "--max-total-size", fmt.Sprint(total+1500), dir)
		if want := tc.position + ": " + tc.message + "\n"; code != exitFailed || !strings.Contains(stdout, want) {
			t.Errorf("validate: exit %d, want %d and %q\n%s", code, exitFailed, want, stdout)
		}
		if err := os.RemoveAll(filepath.Join(dir, strings.Split(tc.name, "/")[0])); err != nil {
			t.Fatal(err)
		}
		s.waitFor(t, func() bool { st := s.status(t); return st.Error == nil })
	}
}

// TestSizeFlagDefaults: without the flags, the limits are the documented
// defaults, for the loader and the sources alike.
func TestSizeFlagDefaults(t *testing.T) {
	want := schema.SizeLimits{File: 64 << 20, Total: 1 << 30}
	if got := sizeFlags(t).sizeLimits(); got != want {
		t.Errorf("flags' defaults = %+v, want %+v", got, want)
	}
	if got := (serveConfig{}).loadOptions().sizeLimits().WithDefaults(); got != want {
		t.Errorf("serve's defaults without flags = %+v, want %+v", got, want)
	}
	l, runner, err := sizeFlags(t).loader()
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()
	if l.Limits != want {
		t.Errorf("loader's limits = %+v, want %+v", l.Limits, want)
	}
}
