package main

import (
	"net/http"
	"time"
)

// phase is one measured run of a target: a warm-up whose requests are sent
// but not counted, then the measured window.
type phase struct {
	client *http.Client
	target *target
	warmup time.Duration
	dur    time.Duration

	// closed loop
	conns int
	// open loop
	rate        float64       // requests per second; 0 means closed loop
	maxInflight int           // bound on requests in flight (and workers)
	lateAfter   time.Duration // a send this far behind its intended time is late
}

// phaseResult is the merged tally of a phase.
type phaseResult struct {
	stats       *workerStats
	window      time.Duration // the measured time, shorter if interrupted
	missed      int64         // open loop: scheduled in the window, never sent
	workers     int           // open loop: most requests in flight at once (workers started)
	interrupted bool
}

func mergeStats(all []*workerStats) *workerStats {
	s := newWorkerStats()
	for _, w := range all {
		s.merge(w)
	}
	return s
}

// measuredWindow is the part of [from, end) that elapsed by stop.
func measuredWindow(from, end, stop time.Time) time.Duration {
	if stop.After(end) {
		stop = end
	}
	return max(stop.Sub(from), 0)
}
