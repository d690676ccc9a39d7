package main

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// runClosed runs the closed loop: p.conns workers, each sending its next
// request as soon as the previous answer is read, until the window ends.
// Requests started in the window are counted, including those that finish
// just after it.
func (p *phase) runClosed(ctx context.Context) *phaseResult {
	start := time.Now()
	from := start.Add(p.warmup)
	end := from.Add(p.dur)
	all := make([]*workerStats, p.conns)
	n := len(p.target.requests)
	var wg sync.WaitGroup
	for w := range all {
		st := newWorkerStats()
		all[w] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			next := w * n / p.conns // workers start at different questions
			for ctx.Err() == nil {
				sent := time.Now()
				if !sent.Before(end) {
					return
				}
				o := send(ctx, p.client, p.target, &p.target.requests[next%n], &buf)
				lat := time.Since(sent)
				next++
				if sent.Before(from) || aborted(ctx, o) {
					continue
				}
				st.record(o, lat)
			}
		}()
	}
	wg.Wait()
	// After an interrupt the aborted requests return at once, so now is
	// about when the run was stopped.
	return &phaseResult{stats: mergeStats(all), window: measuredWindow(from, end, time.Now()), interrupted: ctx.Err() != nil}
}
