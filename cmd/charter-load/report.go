package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// report is the outcome of a run, as printed by -json.
type report struct {
	Addr        string       `json:"addr"`
	Interrupted bool         `json:"interrupted"`
	Target      *phaseReport `json:"target"`
	Baseline    *phaseReport `json:"baseline,omitempty"` // /healthz measured the same way
	Ratio       *ratio       `json:"ratio,omitempty"`    // target / baseline
}

// phaseReport is one phase's figures; latencies are in milliseconds.
type phaseReport struct {
	Target            string      `json:"target"`
	Mode              string      `json:"mode"` // "closed" or "open"
	Connections       int         `json:"connections,omitempty"`
	Rate              float64     `json:"rate,omitempty"`
	Seconds           float64     `json:"seconds"`
	Requests          int64       `json:"requests"`
	Successes         int64       `json:"successes"`
	Allowed           int64       `json:"allowed"` // check: 200
	Denied            int64       `json:"denied"`  // check: 404
	Checks            int64       `json:"checks"`  // checks answered: successes × checks per request
	ChecksPerRequest  int         `json:"checksPerRequest"`
	RequestsPerSecond float64     `json:"requestsPerSecond"`
	ChecksPerSecond   float64     `json:"checksPerSecond"`
	Errors            errorReport `json:"errors"`
	LateSends         int64       `json:"lateSends"`   // open loop
	MissedSends       int64       `json:"missedSends"` // open loop
	Workers           int         `json:"workers,omitempty"`
	Latency           latency     `json:"latencyMs"`
	SendLag           *latency    `json:"sendLagMs,omitempty"` // open loop: actual minus intended send time
	Hist              *histogram  `json:"-"`
}

type errorReport struct {
	Total          int64            `json:"total"`
	Status         map[string]int64 `json:"status"` // unexpected status codes
	Transport      int64            `json:"transport"`
	BadBody        int64            `json:"badBody"` // batch answers without one result per check
	FirstTransport string           `json:"firstTransportError,omitempty"`
}

type latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// ratio compares the target with /healthz: throughput for a closed loop,
// latency for an open loop.
type ratio struct {
	Throughput float64 `json:"throughput,omitempty"`
	P50        float64 `json:"p50,omitempty"`
	P99        float64 `json:"p99,omitempty"`
	P999       float64 `json:"p99.9,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func newLatency(h *histogram) latency {
	return latency{Min: ms(h.minimum()), Mean: ms(h.mean()), P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)),
		P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(h.maximum())}
}

func newPhaseReport(c config, t *target, r *phaseResult) *phaseReport {
	s := r.stats
	p := &phaseReport{Target: t.name, Seconds: r.window.Seconds(), Requests: s.requests, Successes: s.successes,
		Allowed: s.allowed, Denied: s.denied, Checks: s.successes * int64(t.perReq), ChecksPerRequest: t.perReq,
		LateSends: s.late, MissedSends: r.missed, Workers: r.workers, Latency: newLatency(s.latency), Hist: s.latency,
		Errors: errorReport{Total: s.errors(), Status: map[string]int64{}, Transport: s.transport, BadBody: s.badBody, FirstTransport: s.firstErr}}
	for code, n := range s.status {
		p.Errors.Status[strconv.Itoa(code)] = n
	}
	if t.name != targetCheck {
		p.Allowed, p.Denied = 0, 0
	}
	if c.openLoop() {
		p.Mode, p.Rate = "open", c.rate
		lag := newLatency(s.lag)
		p.SendLag = &lag
	} else {
		p.Mode, p.Connections = "closed", c.conns
	}
	if sec := r.window.Seconds(); sec > 0 {
		p.RequestsPerSecond = float64(p.Requests) / sec
		p.ChecksPerSecond = float64(p.Checks) / sec
	}
	return p
}

func newRatio(open bool, t, b *phaseReport) *ratio {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	if open {
		return &ratio{P50: div(t.Latency.P50, b.Latency.P50), P99: div(t.Latency.P99, b.Latency.P99), P999: div(t.Latency.P999, b.Latency.P999)}
	}
	return &ratio{Throughput: div(t.RequestsPerSecond, b.RequestsPerSecond)}
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "charter-load against %s", r.Addr)
	if r.Interrupted {
		b.WriteString(" (interrupted: partial figures)")
	}
	b.WriteString("\n")
	r.Target.writeText(&b)
	if r.Baseline != nil {
		r.Baseline.writeText(&b)
	}
	if q := r.Ratio; q != nil {
		name := r.Target.Target
		if q.Throughput > 0 {
			fmt.Fprintf(&b, "ratio %s/healthz throughput (requests/s): %.3f\n", name, q.Throughput)
		} else {
			fmt.Fprintf(&b, "ratio %s/healthz latency: p50 %.2f  p99 %.2f  p99.9 %.2f\n", name, q.P50, q.P99, q.P999)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *phaseReport) writeText(b *strings.Builder) {
	if p.Mode == "open" {
		fmt.Fprintf(b, "\n%s: open loop at %g requests/s, %.2fs measured\n", p.Target, p.Rate, p.Seconds)
	} else {
		fmt.Fprintf(b, "\n%s: closed loop, %d connections, %.2fs measured\n", p.Target, p.Connections, p.Seconds)
	}
	fmt.Fprintf(b, "  requests   %d (%.1f/s)\n", p.Requests, p.RequestsPerSecond)
	if p.ChecksPerRequest > 1 || p.Target == targetCheck {
		fmt.Fprintf(b, "  checks     %d (%.1f/s)\n", p.Checks, p.ChecksPerSecond)
	}
	fmt.Fprintf(b, "  successes  %d", p.Successes)
	if p.Target == targetCheck {
		fmt.Fprintf(b, " (200 allowed %d, 404 denied %d)", p.Allowed, p.Denied)
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "  errors     %d", p.Errors.Total)
	if p.Errors.Total > 0 {
		var parts []string
		codes := make([]string, 0, len(p.Errors.Status))
		for code := range p.Errors.Status {
			codes = append(codes, code)
		}
		sort.Strings(codes)
		for _, code := range codes {
			parts = append(parts, fmt.Sprintf("status %s: %d", code, p.Errors.Status[code]))
		}
		if p.Errors.Transport > 0 {
			parts = append(parts, fmt.Sprintf("transport: %d", p.Errors.Transport))
		}
		if p.Errors.BadBody > 0 {
			parts = append(parts, fmt.Sprintf("bad batch body: %d", p.Errors.BadBody))
		}
		fmt.Fprintf(b, " (%s)", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	if p.Errors.FirstTransport != "" {
		fmt.Fprintf(b, "  first transport error: %s\n", p.Errors.FirstTransport)
	}
	if p.Mode == "open" {
		fmt.Fprintf(b, "  sends      late %d, missed %d, workers %d\n", p.LateSends, p.MissedSends, p.Workers)
	}
	l := p.Latency
	fmt.Fprintf(b, "  latency ms p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (mean %.3f)\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	if p.SendLag != nil {
		fmt.Fprintf(b, "  send lag ms p50 %.3f  p99 %.3f  max %.3f\n", p.SendLag.P50, p.SendLag.P99, p.SendLag.Max)
	}
}
