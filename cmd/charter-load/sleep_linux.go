package main

import (
	"syscall"
	"time"
)

// nap sleeps for about d. On Linux it uses nanosleep(2), which wakes within
// tens of microseconds, where the runtime's timers often wake a millisecond
// late; the open loop's schedule needs the former.
func nap(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // an early wake-up (EINTR) is re-checked by the caller
}
