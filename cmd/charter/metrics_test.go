package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	policiesexample "github.com/charter-policy/charter/policies-example"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// metricsQuestions ask every endpoint that counts in the check metrics, with
// an allowed, a denied and a bad single check, so that every label value
// of endpoint and decision that these reach has samples.
var metricsQuestions = []struct {
	method, path, body string
	endpoint           string // the endpoint label it counts under
	status             int
}{
	{"GET", "/v1/users/bob/resources/documents%2Fd1/permissions/documents:update", "", "check", http.StatusOK},
	{"GET", "/v1/users/carol/resources/documents%2Fd1/permissions/documents:update", "", "check", http.StatusNotFound},
	{"GET", "/v1/users/bob/resources/documents%2Fd1/permissions/documents:*", "", "check", http.StatusBadRequest},
	{"GET", "/v1/users/bob/resources/documents%2Fd1/permissions", "", "permissions", http.StatusOK},
	{"GET", "/v1/users/amara/resources/organizations%2Facme/roles", "", "roles", http.StatusOK},
	{"GET", "/v1/users/nina/resources/hospitals%2Fh1/assignable/clerk", "", "assignable", http.StatusOK},
	{"GET", "/v1/users/carol/resources?permission=documents:read&collectionResource=documents", "", "resources", http.StatusOK},
	{"POST", "/v1/check", `{"checks":[{"userId":"bob","resourceUri":"documents/d1","action":"documents:update"},{"userId":"carol","resourceUri":"documents/d1","action":"documents:update"}]}`, "check_batch", http.StatusOK},
	{"POST", "/v1/explain", `{"userId":"lena","resourceUri":"acme/documents/d1","action":"delete","time":"2026-03-02T10:30:00Z"}`, "explain", http.StatusOK},
}

// specMetrics are the metric families of SPEC section 7, and one family of
// each of the Go and the process collectors.
var specMetrics = []string{
	"charter_check_requests_total",
	"charter_check_duration_seconds",
	"charter_reconcile_total",
	"charter_reconcile_duration_seconds",
	"charter_snapshot_info",
	"charter_snapshot_loaded_timestamp_seconds",
	"charter_snapshot_objects",
	"go_goroutines",
	"process_cpu_seconds_total",
}

// TestServeMetricsPassLint serves a copy of the example, reloads it once (so
// every reconcile phase is timed), asks every endpoint, and then lints the
// metrics with client_golang's promlint, the linter of "promtool check
// metrics" (SPEC 7): once on the server's registry as charter serve builds
// it, and once on a live scrape of GET /metrics.
func TestServeMetricsPassLint(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, policiesexample.FS()); err != nil {
		t.Fatal(err)
	}
	s := launchServer(t, serveConfig{source: dir, debounce: 50 * time.Millisecond})
	s.waitFor(t, func() bool { return s.status(t).Revision != "" })
	first := s.status(t).Revision
	file := filepath.Join(dir, "documents.cue")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(orig), `name: "Auditor"`, `name: "Auditor (renamed)"`, 1)
	if edited == string(orig) {
		t.Fatal(`documents.cue has no name: "Auditor" to edit`)
	}
	writePolicyFile(t, dir, "documents.cue", edited)
	s.waitFor(t, func() bool { return s.status(t).Revision != first })

	for _, q := range metricsQuestions {
		req, err := http.NewRequest(q.method, s.base+q.path, strings.NewReader(q.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != q.status {
			t.Fatalf("%s %s: status %d, want %d", q.method, q.path, resp.StatusCode, q.status)
		}
	}

	t.Run("registry", func(t *testing.T) {
		problems, err := testutil.GatherAndLint(s.metrics)
		if err != nil {
			t.Fatal(err)
		}
		reportProblems(t, problems)
		for _, name := range specMetrics {
			if n, err := testutil.GatherAndCount(s.metrics, name); err != nil || n == 0 {
				t.Errorf("the registry has no samples of %s (%v)", name, err)
			}
		}
		// The directory source's own counter (issue 8), zero while every
		// watch holds.
		if n, err := testutil.GatherAndCount(s.metrics, "charter_source_watch_errors_total"); err != nil || n != 1 {
			t.Errorf("charter_source_watch_errors_total: %d samples (%v), want 1", n, err)
		}
		families, err := s.metrics.Gather()
		if err != nil {
			t.Fatal(err)
		}
		// observations is the sample count of the histogram family whose label has value.
		observations := func(family, label, value string) uint64 {
			for _, mf := range families {
				if mf.GetName() != family {
					continue
				}
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == label && l.GetValue() == value {
							return m.GetHistogram().GetSampleCount()
						}
					}
				}
			}
			return 0
		}
		for _, q := range metricsQuestions {
			if observations("charter_check_duration_seconds", "endpoint", q.endpoint) == 0 {
				t.Errorf("charter_check_duration_seconds{endpoint=%q} has no observations after %s %s", q.endpoint, q.method, q.path)
			}
		}
		for _, phase := range []string{"fetch", "load", "validate", "diff", "apply"} {
			if observations("charter_reconcile_duration_seconds", "phase", phase) == 0 {
				t.Errorf("charter_reconcile_duration_seconds{phase=%q} has no observations after a reload", phase)
			}
		}
	})

	t.Run("scrape", func(t *testing.T) {
		body := s.scrape(t)
		problems, err := promlint.New(bytes.NewReader(body)).Lint()
		if err != nil {
			t.Fatalf("the scrape does not parse: %v", err)
		}
		reportProblems(t, problems)
		scraped := typedFamilies(body)
		for _, name := range specMetrics {
			if !slices.Contains(scraped, name) {
				t.Errorf("the scrape has no family %s", name)
			}
		}
		if !regexp.MustCompile(`(?m)^charter_snapshot_info\{revision="[^"]+"\} 1$`).Match(body) {
			t.Errorf("the scrape has no charter_snapshot_info{revision=…} 1 line")
		}
	})
}

// reportProblems fails the test with each lint problem.
// scrape returns the body of GET /metrics, which must be 200 in the text
// format.
func (s *server) scrape(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return body
}

func reportProblems(t *testing.T, problems []promlint.Problem) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// typedFamilies returns the names of the "# TYPE" lines of a text exposition, sorted.
func typedFamilies(body []byte) []string {
	var names []string
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, _, ok := strings.Cut(rest, " "); ok {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names
}
