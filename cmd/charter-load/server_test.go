package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer is a tiny stand-in for the sidecar with the three routes the
// load generator uses, on a real loopback listener.
type testServer struct {
	base  string
	hits  atomic.Int64
	sleep time.Duration // delay of every check answer

	mu        sync.Mutex
	resources map[string]bool // resource URIs seen by the single check, decoded
}

// allowedRule: a resource ending in an even digit is allowed.
func allowedRule(resource string) bool {
	if resource == "" {
		return false
	}
	c := resource[len(resource)-1]
	return c >= '0' && c <= '9' && (c-'0')%2 == 0
}

func startServer(tb testing.TB, sleep time.Duration) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &testServer{base: ln.Addr().String(), sleep: sleep, resources: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /v1/users/{userId}/resources/{resourceUri}/permissions/{action}", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		time.Sleep(s.sleep)
		res := r.PathValue("resourceUri")
		s.mu.Lock()
		s.resources[res] = true
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if allowedRule(res) {
			w.Write([]byte(`{"allowed":true}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"allowed":false}`))
	})
	mux.HandleFunc("POST /v1/check", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		var in struct {
			Checks []question `json:"checks"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Checks) == 0 {
			http.Error(w, `{"error":{"code":"bad_request","message":"bad body"}}`, http.StatusBadRequest)
			return
		}
		var b strings.Builder
		b.WriteString(`{"revision":"test","results":[`)
		for i, q := range in.Checks {
			if i > 0 {
				b.WriteString(",")
			}
			if allowedRule(q.Resource) {
				b.WriteString(`{"allowed":true}`)
			} else {
				b.WriteString(`{"allowed":false}`)
			}
		}
		b.WriteString("]}")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(b.String()))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return s
}

// waitHits waits until the server has answered at least n requests; 20 s
// is a bound for a loaded machine, not a speed requirement.
func (s *testServer) waitHits(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.hits.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the server saw %d requests in 20s, want %d", s.hits.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *testServer) saw(resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resources[resource]
}
