package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// run measures the target and then, unless -no-baseline, /healthz the same
// way, and writes the report to out (progress lines go to progress). An
// interrupt ends the current phase early; what was measured is still
// reported.
func run(ctx context.Context, c config, out, progress io.Writer) (*report, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	base, err := baseURL(c.addr, c.allowRemote) // before anything is sent
	if err != nil {
		return nil, err
	}
	qs, err := c.loadQuestions()
	if err != nil {
		return nil, err
	}
	tgt, err := newTarget(c.target, base, qs, c.batch)
	if err != nil {
		return nil, err
	}
	conns := c.conns
	if c.openLoop() {
		conns = c.maxInflight
	}
	client := newClient(conns, c.timeout, c.allowRemote)
	defer client.CloseIdleConnections()

	rep := &report{Addr: base}
	res := measure(ctx, c, client, tgt, progress)
	rep.Target = newPhaseReport(c, tgt, res)
	rep.Interrupted = res.interrupted
	if !c.noBaseline && c.target != targetHealthz && !res.interrupted {
		hz, _ := newTarget(targetHealthz, base, nil, 1)
		bres := measure(ctx, c, client, hz, progress)
		rep.Baseline = newPhaseReport(c, hz, bres)
		rep.Interrupted = bres.interrupted
		if !bres.interrupted {
			rep.Ratio = newRatio(c.openLoop(), rep.Target, rep.Baseline)
		}
	}
	if c.json {
		err = rep.writeJSON(out)
	} else {
		err = rep.writeText(out)
	}
	return rep, err
}

// measure runs one phase of t in the mode the flags choose.
func measure(ctx context.Context, c config, client *http.Client, t *target, progress io.Writer) *phaseResult {
	p := &phase{client: client, target: t, warmup: c.warmup, dur: c.dur,
		conns: c.conns, rate: c.rate, maxInflight: c.maxInflight, lateAfter: c.lateAfter}
	if c.openLoop() {
		fmt.Fprintf(progress, "charter-load: %s, open loop at %g requests/s for %v after %v warm-up\n", t.name, c.rate, c.dur, c.warmup)
		return p.runOpen(ctx)
	}
	fmt.Fprintf(progress, "charter-load: %s, closed loop with %d connections for %v after %v warm-up\n", t.name, c.conns, c.dur, c.warmup)
	return p.runClosed(ctx)
}
