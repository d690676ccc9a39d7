package cueproc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"syscall"
)

// limitHeadroom is the share of the memory limit allowed on top of it in
// the hard limit, for the runtime's own bookkeeping of a heap that size and
// the granularity at which it maps memory: the soft limit (the GC's target)
// is the memory limit itself.
const limitHeadroom = 8 // an eighth

// executable returns the running binary. /proc/self/exe names it even
// after the file was replaced or removed (an upgrade in place), so the
// child is always the same program as its parent. Without /proc (a chroot
// that lacks it) it is the path the binary was started by.
func executable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	return startedAs()
}

// childProcAttr puts the child in its own process group, so that a Ctrl-C
// at the terminal reaches the parent only (which then kills the child), and
// asks the kernel to kill the child if the parent dies first.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// unmeasuredBase stands for the data segment of a process that cannot
// read its own (no /proc): what the Go runtime has mapped plus this, more
// than the binary's writable data and C's mappings measure (about 70 MB
// statically linked, 100 MB with cgo).
const unmeasuredBase = 256 << 20

// limitMemory sets the process's hard limit on its data segment
// (RLIMIT_DATA, which counts private writable mappings: the Go heap, stacks
// and runtime structures, not reserved address space) to what it uses now
// plus limit and some headroom, and makes limit the GC's soft limit, so
// that the collector works hard as the heap nears it and an allocation
// beyond the hard limit ends the process with "out of memory".
func limitMemory(limit int64) error {
	base, err := dataSize()
	if err != nil {
		sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		metrics.Read(sample)
		base = int64(sample[0].Value.Uint64()) + unmeasuredBase
	}
	hard := uint64(base + limit + limit/limitHeadroom)
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_DATA, &cur); err != nil {
		return fmt.Errorf("read the data size limit: %w", err)
	}
	hard = min(hard, cur.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: hard, Max: hard}); err != nil {
		return fmt.Errorf("set the data size limit to %d bytes: %w", hard, err)
	}
	debug.SetMemoryLimit(limit)
	return nil
}

// dataSize returns the size of the process's data segment (VmData), in bytes.
func dataSize() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read the process's memory use: %w", err)
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		rest, ok := bytes.CutPrefix(s.Bytes(), []byte("VmData:"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read VmData of /proc/self/status: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmData in /proc/self/status")
}
