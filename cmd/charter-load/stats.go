package main

import (
	"context"
	"errors"
	"time"
)

// outcome is what one request came to.
type outcome struct {
	status    int   // HTTP status, 0 when the request failed in transport
	err       error // transport error (dial, write, read, timeout)
	badBody   bool  // a 2xx answer whose body did not hold the expected results
	succeeded bool  // counted as a success for the target
}

// workerStats is one worker's tally of a phase. Workers never share one;
// the phase merges them when it ends.
type workerStats struct {
	latency   *histogram // from the (intended) send time to the last body byte
	lag       *histogram // open loop: actual send time minus intended send time
	requests  int64
	successes int64
	allowed   int64 // check: 200
	denied    int64 // check: 404
	transport int64
	badBody   int64
	late      int64         // open loop: sent later than the late threshold
	status    map[int]int64 // statuses that are not successes
	firstErr  string        // the first transport error, as an example
}

func newWorkerStats() *workerStats {
	return &workerStats{latency: newHistogram(), lag: newHistogram(), status: map[int]int64{}}
}

// aborted reports whether an outcome is only the run being interrupted, which
// is not counted at all.
func aborted(ctx context.Context, o outcome) bool {
	return o.err != nil && ctx.Err() != nil && errors.Is(o.err, context.Canceled)
}

func (s *workerStats) record(o outcome, latency time.Duration) {
	s.requests++
	s.latency.record(latency)
	switch {
	case o.err != nil:
		s.transport++
		if s.firstErr == "" {
			s.firstErr = o.err.Error()
		}
	case o.badBody:
		s.badBody++
	case o.succeeded:
		s.successes++
		switch o.status {
		case 200:
			s.allowed++
		case 404:
			s.denied++
		}
	default:
		s.status[o.status]++
	}
}

func (s *workerStats) merge(o *workerStats) {
	s.latency.merge(o.latency)
	s.lag.merge(o.lag)
	s.requests += o.requests
	s.successes += o.successes
	s.allowed += o.allowed
	s.denied += o.denied
	s.transport += o.transport
	s.badBody += o.badBody
	s.late += o.late
	for k, v := range o.status {
		s.status[k] += v
	}
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
}

// errors is the number of requests that were not successes.
func (s *workerStats) errors() int64 {
	var n int64
	for _, v := range s.status {
		n += v
	}
	return n + s.transport + s.badBody
}
