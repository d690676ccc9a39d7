//go:build !linux

package cueproc

import (
	"os"
	"runtime/debug"
	"syscall"
)

// executable returns the running binary.
func executable() (string, error) {
	if path, err := os.Executable(); err == nil {
		return path, nil
	}
	return startedAs()
}

// childProcAttr changes nothing about the child outside Linux.
func childProcAttr() *syscall.SysProcAttr { return nil }

// limitMemory sets only the GC's soft limit outside Linux, which has no
// hard limit on a process's heap that the Go runtime respects (macOS does
// not enforce RLIMIT_DATA): the timeout still ends a runaway evaluation.
func limitMemory(limit int64) error {
	debug.SetMemoryLimit(limit)
	return nil
}
