package main

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// job is one scheduled request of the open loop.
type job struct {
	seq      int64
	intended time.Time
}

// runOpen runs the open loop: request i is due at t0 + i/rate whatever the
// answers to earlier ones, and its latency runs from that intended time, so
// a stalled server shows up as latency instead of as fewer requests
// (coordinated omission). Workers are started as needed up to
// p.maxInflight; when all are busy the send waits for one and, if it starts
// more than p.lateAfter behind schedule, counts as late. Requests still
// unsent when the window ends count as missed.
func (p *phase) runOpen(ctx context.Context) *phaseResult {
	t0 := time.Now()
	from := t0.Add(p.warmup)
	end := from.Add(p.dur)
	n := int64(len(p.target.requests))
	work := make(chan job) // unbuffered: a send succeeds only into an idle worker
	var (
		wg  sync.WaitGroup
		all []*workerStats
	)
	handle := func(st *workerStats, buf *bytes.Buffer, j job) {
		actual := time.Now()
		o := send(ctx, p.client, p.target, &p.target.requests[j.seq%n], buf)
		lat := time.Since(j.intended)
		if j.intended.Before(from) || aborted(ctx, o) {
			return
		}
		st.record(o, lat)
		lag := actual.Sub(j.intended)
		st.lag.record(lag)
		if lag > p.lateAfter {
			st.late++
		}
	}
	spawn := func(first job) {
		st := newWorkerStats()
		all = append(all, st)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			handle(st, &buf, first)
			for j := range work {
				handle(st, &buf, j)
			}
		}()
	}

	var missed int64
	endTimer := time.NewTimer(time.Until(end))
	defer endTimer.Stop()
	period := 1e9 / p.rate // nanoseconds between intended sends
	seq := int64(0)
schedule:
	for ; ; seq++ {
		j := job{seq: seq, intended: t0.Add(time.Duration(float64(seq) * period))}
		if !j.intended.Before(end) {
			break
		}
		if !sleepUntil(ctx, j.intended) {
			break
		}
		select {
		case work <- j:
			continue
		default:
		}
		if len(all) < p.maxInflight {
			spawn(j)
			continue
		}
		select { // every worker is busy: this send and the ones after it slip
		case work <- j:
		case <-ctx.Done():
			break schedule
		case <-endTimer.C:
			break schedule
		}
	}
	if ctx.Err() == nil { // the window ended with sends still due in it
		for ; ; seq++ {
			at := t0.Add(time.Duration(float64(seq) * period))
			if !at.Before(end) {
				break
			}
			if !at.Before(from) {
				missed++
			}
		}
	}
	close(work)
	wg.Wait()
	return &phaseResult{stats: mergeStats(all), window: measuredWindow(from, end, time.Now()),
		missed: missed, workers: len(all), interrupted: ctx.Err() != nil}
}
