//go:build linux

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
)

// TestTimePolicyWithoutSystemTZData runs the charter binary as it runs in
// a scratch container image: statically linked, chrooted into a directory
// that holds only the binary and the example policies, so that no
// /usr/share/zoneinfo, no $GOROOT/lib/time/zoneinfo.zip and no ZONEINFO
// (pointed at a directory that does not exist) can supply the time zone
// database, and TZ unset. The example's "business-hours" policy is in
// Europe/Berlin: without the embedded time/tzdata the policy does not even
// validate ("unknown time zone"), and a UTC reading would answer the 17:30Z
// question the other way (17:30 in UTC is inside 09:00-17:59, 18:30 in
// Berlin is not).
//
// Chroot needs root, or a user namespace where the kernel allows one; the
// test is skipped when neither is available.
func TestTimePolicyWithoutSystemTZData(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the charter binary")
	}
	root := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, "charter"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.CopyFS(filepath.Join(root, "policy"), os.DirFS("../../policies-example")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		at   string // the time of the question
		code int
		want string // the start of stdout
	}{
		{"inside Berlin business hours", "2026-03-02T16:30:00Z", exitOK, "allowed: "},
		{"after Berlin business hours, inside UTC ones", "2026-03-02T17:30:00Z", exitFailed, "denied: "},
		{"Sunday", "2026-03-01T10:30:00Z", exitFailed, "denied: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("/charter", "check", "--dir", "/policy", "--time", tt.at, "bob", "acme/reports/q1", "read")
			cmd.Dir = "/"
			cmd.Env = []string{"ZONEINFO=/nonexistent"} // and no TZ, no GOROOT
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
			if os.Geteuid() != 0 {
				cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER
				cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
				cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
			}
			err := cmd.Run()
			var exitErr *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &exitErr):
			case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS):
				t.Skipf("cannot chroot here (needs root or user namespaces): %v", err)
			default:
				t.Fatalf("running charter: %v", err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.code || !strings.HasPrefix(stdout.String(), tt.want) {
				t.Errorf("charter check at %s: exit %d, stdout %q, stderr %q; want exit %d and %q",
					tt.at, code, stdout.String(), stderr.String(), tt.code, tt.want)
			}
		})
	}
}
