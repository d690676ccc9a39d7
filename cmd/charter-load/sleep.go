package main

import (
	"context"
	"time"
)

// maxNap bounds one nap so an interrupt is noticed promptly.
const maxNap = 10 * time.Millisecond

// sleepUntil waits until t; it returns false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		nap(min(d, maxNap))
	}
}
