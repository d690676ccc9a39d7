package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testConfig is a short run against s with a small generated mix.
func testConfig(s *testServer) config {
	c := defaultConfig()
	c.addr = s.base
	c.warmup = 100 * time.Millisecond
	c.dur = 400 * time.Millisecond
	c.conns = 4
	c.users, c.docs, c.pool = 50, 200, 500
	c.timeout = 2 * time.Second
	return c
}

func runTest(t *testing.T, c config) (*report, []byte) {
	t.Helper()
	var out bytes.Buffer
	rep, err := run(context.Background(), c, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return rep, out.Bytes()
}

// checkConsistent asserts the counts add up and the percentiles are ordered.
func checkConsistent(t *testing.T, p *phaseReport) {
	t.Helper()
	if p.Requests == 0 {
		t.Fatalf("%s: no requests measured", p.Target)
	}
	if p.Requests != p.Successes+p.Errors.Total {
		t.Errorf("%s: requests %d != successes %d + errors %d", p.Target, p.Requests, p.Successes, p.Errors.Total)
	}
	var status int64
	for _, n := range p.Errors.Status {
		status += n
	}
	if p.Errors.Total != status+p.Errors.Transport+p.Errors.BadBody {
		t.Errorf("%s: error kinds do not add up: %+v", p.Target, p.Errors)
	}
	if p.Checks != p.Successes*int64(p.ChecksPerRequest) {
		t.Errorf("%s: checks %d != successes %d × %d", p.Target, p.Checks, p.Successes, p.ChecksPerRequest)
	}
	l := p.Latency
	seq := []float64{l.Min, l.P50, l.P90, l.P99, l.P999, l.Max}
	for i := 1; i < len(seq); i++ {
		if seq[i] < seq[i-1] {
			t.Errorf("%s: percentiles not monotonic: %+v", p.Target, l)
		}
	}
	if l.Min <= 0 || l.Mean < l.Min || l.Mean > l.Max {
		t.Errorf("%s: implausible latency %+v", p.Target, l)
	}
	if p.Seconds <= 0 || p.RequestsPerSecond <= 0 {
		t.Errorf("%s: no throughput: %+v", p.Target, p)
	}
}

func TestClosedLoopCheckWithBaseline(t *testing.T) {
	s := startServer(t, 0)
	c := testConfig(s)
	rep, out := runTest(t, c)
	p := rep.Target
	checkConsistent(t, p)
	if p.Errors.Total != 0 {
		t.Errorf("errors against a healthy server: %+v", p.Errors)
	}
	if p.Allowed == 0 || p.Denied == 0 || p.Allowed+p.Denied != p.Successes {
		t.Errorf("allowed %d + denied %d should be successes %d, both non-zero", p.Allowed, p.Denied, p.Successes)
	}
	if p.Checks != p.Requests {
		t.Errorf("checks %d != requests %d", p.Checks, p.Requests)
	}
	if rep.Baseline == nil || rep.Baseline.Target != targetHealthz || rep.Ratio == nil || rep.Ratio.Throughput <= 0 {
		t.Fatalf("no healthz baseline or ratio: %+v %+v", rep.Baseline, rep.Ratio)
	}
	checkConsistent(t, rep.Baseline)
	if served := s.hits.Load(); served < p.Requests+rep.Baseline.Requests {
		t.Errorf("server saw %d requests, fewer than the %d measured", served, p.Requests+rep.Baseline.Requests)
	}
	for _, want := range []string{"check: closed loop, 4 connections", "healthz: closed loop", "ratio check/healthz throughput", "p99.9"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestClosedLoopBatchJSON(t *testing.T) {
	s := startServer(t, 0)
	c := testConfig(s)
	c.target, c.batch, c.noBaseline, c.json = targetBatch, 25, true, true
	c.dur = 300 * time.Millisecond
	rep, out := runTest(t, c)
	p := rep.Target
	checkConsistent(t, p)
	if p.Errors.Total != 0 {
		t.Errorf("errors: %+v", p.Errors)
	}
	if p.Checks != p.Requests*25 {
		t.Errorf("checks %d != requests %d × 25", p.Checks, p.Requests)
	}
	if math.Abs(p.ChecksPerSecond-25*p.RequestsPerSecond) > 1e-6*p.ChecksPerSecond {
		t.Errorf("checks/s %g != 25 × requests/s %g", p.ChecksPerSecond, p.RequestsPerSecond)
	}
	if rep.Baseline != nil {
		t.Error("-no-baseline ran the baseline")
	}
	var decoded report
	if err := json.Unmarshal(out, &decoded); err != nil {
		t.Fatalf("-json output: %v\n%s", err, out)
	}
	if decoded.Target.Requests != p.Requests || decoded.Target.Checks != p.Checks || decoded.Target.Latency != p.Latency {
		t.Errorf("-json output differs from the report: %+v", decoded.Target)
	}
}

func TestOpenLoopSendsAtRate(t *testing.T) {
	s := startServer(t, 0)
	c := testConfig(s)
	c.rate, c.dur, c.noBaseline = 500, 500*time.Millisecond, true
	rep, _ := runTest(t, c)
	p := rep.Target
	checkConsistent(t, p)
	// Every send due in the measured window is either sent or counted as
	// missed: arithmetic on the schedule, whatever the machine's speed.
	want := c.rate * c.dur.Seconds() // 250
	if sent := float64(p.Requests + p.MissedSends); math.Abs(sent-want) > 2 {
		t.Errorf("sent %d + missed %d sends in the window, want %g scheduled", p.Requests, p.MissedSends, want)
	}
	// A send is missed only when every worker allowed is busy as the window
	// ends. How many go out on time is this machine's speed, which
	// BenchmarkOpenLoopOnSchedule measures instead of asserting.
	if p.MissedSends > 0 && p.Workers < c.maxInflight {
		t.Errorf("%d sends missed with only %d of %d workers started", p.MissedSends, p.Workers, c.maxInflight)
	}
	if p.Mode != "open" || p.SendLag == nil || p.Workers < 1 || p.Workers > c.maxInflight {
		t.Errorf("open loop report: %+v", p)
	}
}

func TestOpenLoopCountsLateSends(t *testing.T) {
	// Each answer takes 50 ms and only 2 may be in flight: at most 40/s get
	// through against 200/s scheduled, so sends slip, and the latency,
	// measured from the intended time, shows the queue.
	s := startServer(t, 50*time.Millisecond)
	c := testConfig(s)
	c.rate, c.maxInflight, c.dur, c.noBaseline = 200, 2, time.Second, true
	rep, out := runTest(t, c)
	p := rep.Target
	checkConsistent(t, p)
	if p.LateSends == 0 {
		t.Errorf("no late sends counted:\n%s", out)
	}
	if p.MissedSends == 0 {
		t.Errorf("no missed sends counted:\n%s", out)
	}
	if p.Workers > 2 {
		t.Errorf("%d workers, want at most -max-inflight 2", p.Workers)
	}
	if sent := p.Requests + p.MissedSends; math.Abs(float64(sent)-200) > 2 {
		t.Errorf("sent %d + missed %d, want about 200 scheduled", p.Requests, p.MissedSends)
	}
	if p.Latency.P99 < 200 {
		t.Errorf("p99 %.1f ms hides the queue (coordinated omission)", p.Latency.P99)
	}
}

func TestResourcePathRoundTrips(t *testing.T) {
	s := startServer(t, 0)
	file := filepath.Join(t.TempDir(), "questions.txt")
	err := os.WriteFile(file, []byte("# one question\nuser-1 documents/d1 documents:read\n\nuser-2 documents/d2 documents:read\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig(s)
	c.questions, c.noBaseline = file, true
	c.warmup, c.dur, c.conns = 0, 100*time.Millisecond, 1
	rep, _ := runTest(t, c)
	if !s.saw("documents/d1") || !s.saw("documents/d2") {
		t.Errorf("server did not see the decoded resource URIs: %v", s.resources)
	}
	if p := rep.Target; p.Allowed == 0 || p.Denied == 0 { // d2 is allowed, d1 denied
		t.Errorf("allowed %d, denied %d: want both", p.Allowed, p.Denied)
	}
}

func TestLoopbackGuardSendsNothing(t *testing.T) {
	c := defaultConfig()
	c.addr = "10.0.0.1:8181"
	var out, progress bytes.Buffer
	_, err := run(context.Background(), c, &out, &progress)
	if !errors.Is(err, errNotLoopback) {
		t.Fatalf("run against 10.0.0.1: err %v, want the loopback refusal", err)
	}
	// A phase prints its progress line before it sends anything.
	if out.Len() > 0 || progress.Len() > 0 {
		t.Errorf("something ran before the refusal: %q %q", out.String(), progress.String())
	}
	// The client's dialer refuses too, before connecting.
	client := newClient(1, 2*time.Second, false)
	_, err = client.Get("http://10.0.0.1:8181/healthz")
	if !errors.Is(err, errNotLoopback) {
		t.Errorf("dial to 10.0.0.1: err %v, want the loopback refusal", err)
	}
}

// TestInterruptEndsRunEarly interrupts an hour-long run once the server has
// answered some requests: the run must end, report what it measured before
// the interrupt, and skip the baseline.
func TestInterruptEndsRunEarly(t *testing.T) {
	s := startServer(t, 0)
	c := testConfig(s)
	c.warmup, c.dur = 0, time.Hour // every request is measured; only the interrupt ends the run
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		rep *report
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		rep, err := run(ctx, c, io.Discard, io.Discard)
		done <- result{rep, err}
	}()
	// 20 answered requests with at most 4 in flight: at least 16 completed,
	// so the measured window has requests whatever the machine's speed.
	s.waitHits(t, 20)
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second): // against an hour, not a speed requirement
		t.Fatal("the run went on after the interrupt")
	}
	ran := time.Since(start)
	if r.err != nil {
		t.Fatal(r.err)
	}
	rep := r.rep
	if !rep.Interrupted || rep.Baseline != nil {
		t.Errorf("interrupted %v, baseline %v", rep.Interrupted, rep.Baseline)
	}
	checkConsistent(t, rep.Target)
	if rep.Target.Errors.Total != 0 {
		t.Errorf("the interrupt was counted as errors: %+v", rep.Target.Errors)
	}
	if rep.Target.Seconds > ran.Seconds() {
		t.Errorf("measured window %.3fs, longer than the %.3fs the run lasted: want the part before the interrupt", rep.Target.Seconds, ran.Seconds())
	}
}

// BenchmarkOpenLoopOnSchedule measures how well the open loop keeps its
// schedule on this machine: 500 requests/s for 500 ms against the stand-in
// server, reporting the share of the due sends that went out (sent-%) and
// the share of those that went out late (late-%). The tests assert only
// what holds at any speed.
func BenchmarkOpenLoopOnSchedule(b *testing.B) {
	s := startServer(b, 0)
	c := testConfig(s)
	c.rate, c.dur, c.noBaseline = 500, 500*time.Millisecond, true
	var sent, due, late int64
	for b.Loop() {
		rep, err := run(context.Background(), c, io.Discard, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		sent += rep.Target.Requests
		due += rep.Target.Requests + rep.Target.MissedSends
		late += rep.Target.LateSends
	}
	b.ReportMetric(100*float64(sent)/float64(max(due, 1)), "sent-%")
	b.ReportMetric(100*float64(late)/float64(max(sent, 1)), "late-%")
}
