package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHistogramMatchesSortedSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := newHistogram()
	var samples []time.Duration
	for range 200000 {
		// log-normal around 300 µs with a tail to seconds, plus exact small values
		v := time.Duration(math.Exp(r.NormFloat64()*1.5 + math.Log(300e3)))
		if r.IntN(50) == 0 {
			v = time.Duration(r.IntN(200))
		}
		samples = append(samples, v)
		h.record(v)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.quantile(q)
		if got < want || float64(got) > float64(want)*(1+1.0/subBuckets)+1 {
			t.Errorf("q%g: histogram %v, sorted samples %v", q, got, want)
		}
	}
	if h.minimum() != samples[0] || h.maximum() != samples[len(samples)-1] {
		t.Errorf("min/max %v/%v, want %v/%v", h.minimum(), h.maximum(), samples[0], samples[len(samples)-1])
	}
	// merging two halves gives the same histogram
	a, b := newHistogram(), newHistogram()
	for i, v := range samples {
		if i%2 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(b)
	if !slices.Equal(a.counts, h.counts) || a.count != h.count || a.min != h.min || a.max != h.max {
		t.Error("merged halves differ from the whole")
	}
}

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 257, 1000, 1 << 40, math.MaxInt64, math.MaxUint64} {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		if high := bucketHigh(i); high < v || (i > 0 && bucketHigh(i-1) >= v) {
			t.Errorf("value %d in bucket %d with upper edge %d", v, i, high)
		}
	}
	if got := newHistogram().quantile(0.99); got != 0 {
		t.Errorf("empty histogram p99 = %v", got)
	}
}

func TestCheckPathEscapesEachSegment(t *testing.T) {
	got := checkPath(question{User: "user-1", Resource: "documents/d1", Action: "documents:read"})
	want := "/v1/users/user-1/resources/documents%2Fd1/permissions/documents:read"
	if got != want {
		t.Errorf("checkPath = %q, want %q", got, want)
	}
	got = checkPath(question{User: "a b", Resource: "x/y?z#w", Action: "r"})
	if want := "/v1/users/a%20b/resources/x%2Fy%3Fz%23w/permissions/r"; got != want {
		t.Errorf("checkPath = %q, want %q", got, want)
	}
}

func TestBaseURLAcceptsOnlyLoopback(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8181":        "http://127.0.0.1:8181",
		"127.9.8.7:1":           "http://127.9.8.7:1",
		"localhost:8181":        "http://localhost:8181",
		"[::1]:8181":            "http://[::1]:8181",
		"http://127.0.0.1:8181": "http://127.0.0.1:8181",
	} {
		if got, err := baseURL(addr, false); err != nil || got != want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, addr := range []string{"10.0.0.1:8181", "0.0.0.0:8181", "example.com:80", "[::]:80", "192.168.1.1:80", "localhost.example.com:80"} {
		if _, err := baseURL(addr, false); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("baseURL(%q) accepted: %v", addr, err)
		}
	}
	if got, err := baseURL("10.0.0.1:8181", true); err != nil || got != "http://10.0.0.1:8181" {
		t.Errorf("-allow-remote: %q, %v", got, err)
	}
	for _, addr := range []string{"https://127.0.0.1:1", "127.0.0.1:1/path"} {
		if _, err := baseURL(addr, false); err == nil {
			t.Errorf("baseURL(%q) accepted", addr)
		}
	}
}

func TestGeneratedMixRepeats(t *testing.T) {
	m := mix{users: 10000, docs: 100000, userFormat: "user-%d", docFormat: "documents/d%d",
		actions: []string{"documents:read", "documents:update"}, seed: 42, size: 1000}
	a, b := m.generate(), m.generate()
	if !slices.Equal(a, b) {
		t.Error("same seed, different questions")
	}
	m.seed = 43
	if slices.Equal(a, m.generate()) {
		t.Error("different seeds, same questions")
	}
	for _, q := range a {
		if !strings.HasPrefix(q.User, "user-") || !strings.HasPrefix(q.Resource, "documents/d") || !strings.HasPrefix(q.Action, "documents:") {
			t.Fatalf("unexpected question %+v", q)
		}
	}
}

func TestParseQuestions(t *testing.T) {
	qs, err := parseQuestions(strings.NewReader("# comment\n\n alice  documents/d1\tdocuments:read \nbob x y\n"))
	if err != nil || len(qs) != 2 || qs[0] != (question{"alice", "documents/d1", "documents:read"}) {
		t.Errorf("parseQuestions = %+v, %v", qs, err)
	}
	if _, err := parseQuestions(strings.NewReader("alice documents/d1\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short line: %v", err)
	}
	if _, err := parseQuestions(strings.NewReader("# nothing\n")); err == nil {
		t.Error("empty file accepted")
	}
}

func TestBatchBodies(t *testing.T) {
	qs := []question{{"u", "documents/d1", "a"}, {"u", "documents/d2", "a"}, {"u", "documents/d3", "a"}}
	tg, err := newTarget(targetBatch, "http://127.0.0.1:1", qs, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.requests) != 1 || tg.perReq != 5 || strings.Count(string(tg.requests[0].body), `"userId"`) != 5 {
		t.Errorf("batch target: %+v", tg)
	}
	if !batchBodyOK([]byte(`{"results":[{"allowed":true},{"allowed":false}]}`), 2) || batchBodyOK([]byte(`{"results":[]}`), 2) {
		t.Error("batchBodyOK")
	}
}

func TestParseFlags(t *testing.T) {
	var sink strings.Builder
	c, err := parseFlags([]string{"-target", "batch", "-batch", "50", "-rate", "5000", "-d", "3s", "-actions", "a, b,,c"}, &sink)
	if err != nil {
		t.Fatal(err)
	}
	if c.target != targetBatch || c.batch != 50 || !c.openLoop() || c.dur != 3*time.Second || !slices.Equal(c.actionList(), []string{"a", "b", "c"}) {
		t.Errorf("parsed %+v", c)
	}
	for _, args := range [][]string{{"-target", "nope"}, {"-batch", "1001"}, {"-c", "0"}, {"-rate", "-1"}, {"extra"}} {
		if _, err := parseFlags(args, &sink); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
