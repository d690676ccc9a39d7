package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/prometheus/client_golang/prometheus"
)

// benchWriter is a ResponseWriter that can be reused, so that a benchmark
// shows the handler's own allocations (net/http allocates the header map of
// a real response anyway).
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// naiveCheckHandler is the check route written the obvious way, kept as the
// baseline that BenchmarkCheckRoute compares with: ServeMux matching and
// PathValue, metrics looked up by label values, reflection JSON, header
// canonicalization.
func naiveCheckHandler(b Backend, reg prometheus.Registerer) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "naive_requests_total", Help: "h"}, []string{"endpoint", "decision"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "naive_duration_seconds", Help: "h"}, []string{"endpoint"})
	reg.MustRegister(requests, duration)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{userId}/resources/{resourceUri}/permissions/{action}", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		d, err := b.Snapshot().Check(engine.Question{User: r.PathValue("userId"), Resource: r.PathValue("resourceUri"), Action: r.PathValue("action")})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Charter-Revision", d.Revision)
		status, dec := http.StatusNotFound, "deny"
		if d.Allowed {
			status, dec = http.StatusOK, "allow"
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"allowed": d.Allowed, "revision": d.Revision})
		requests.WithLabelValues("check", dec).Inc()
		duration.WithLabelValues("check").Observe(time.Since(start).Seconds())
	})
	return mux
}

// BenchmarkCheckRoute measures GET .../permissions/{action}:
//
//	go test ./engine/api/ -run '^$' -bench BenchmarkCheckRoute -benchmem
//
// recorder: the handler with a new httptest.ResponseRecorder per request;
// reused: the handler with a reused writer (its own allocations and the
// engine's); engine: Snapshot.Check alone; naive: the baseline handler.
func BenchmarkCheckRoute(b *testing.B) {
	snap := exampleSnapshot(b, "rev1")
	backend := newBackend(snap)
	h := NewHandler(backend, Options{Registerer: prometheus.NewRegistry()})
	naive := naiveCheckHandler(backend, prometheus.NewRegistry())
	for _, p := range []struct{ name, path string }{
		{"escaped", "/v1/users/alice/resources/documents%2Fd1/permissions/documents:read"},
		{"plain", "/v1/users/alice/resources/documents/permissions/documents:read"},
	} {
		req := httptest.NewRequest(http.MethodGet, p.path, nil)
		for _, hc := range []struct {
			name string
			h    http.Handler
		}{{"handler", h}, {"naive", naive}} {
			b.Run(p.name+"/"+hc.name+"/recorder", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					hc.h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
			b.Run(p.name+"/"+hc.name+"/reused", func(b *testing.B) {
				b.ReportAllocs()
				w := &benchWriter{h: http.Header{}}
				for b.Loop() {
					clear(w.h)
					hc.h.ServeHTTP(w, req)
					if w.code != http.StatusOK {
						b.Fatalf("%d", w.code)
					}
				}
			})
		}
	}
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		q := engine.Question{User: "alice", Resource: "documents/d1", Action: "documents:read"}
		for b.Loop() {
			if d, err := snap.Check(q); err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
		}
	})
}

// BenchmarkBatch100 measures POST /v1/check with 100 checks per request;
// checks/s is b.N*100 over the time.
func BenchmarkBatch100(b *testing.B) {
	h := NewHandler(newBackend(exampleSnapshot(b, "rev1")), Options{})
	users := []string{"alice", "bob", "carol", "nina", "fiona", "dave"}
	var sb strings.Builder
	sb.WriteString(`{"checks":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"userId":"` + users[i%len(users)] + `","resourceUri":"documents/d1","action":"documents:read"}`)
	}
	sb.WriteString(`]}`)
	body := sb.String()
	b.ReportAllocs()
	w := &benchWriter{h: http.Header{}}
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/check", strings.NewReader(body)))
		if w.code != http.StatusOK {
			b.Fatal(w.code)
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "checks/s")
}
