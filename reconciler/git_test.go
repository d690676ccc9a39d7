package reconciler

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source/git"
)

// TestGitSourceRemoteDown: a sidecar restarted while its git remote is
// down serves the cached clone's tip, says in status and metrics that the
// fetch failed, retries with backoff, and catches up once the remote is
// back.
func TestGitSourceRemoteDown(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	first := remote.Set(t, map[string]string{"policies/roles.cue": rolesCUE}, "first")
	daemon := gittest.StartDaemon(t, root)
	cache := t.TempDir()
	newSource := func() *git.Source {
		s, err := git.New(daemon.URL("policy.git"), git.Options{Path: "policies", CacheDir: cache, FetchTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	src := newSource()
	if _, _, err := src.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	src.Close()
	daemon.Stop()

	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var (
		mu     sync.Mutex
		delays []time.Duration
	)
	r := start(t, newSource(), Options{Metrics: NewMetrics(reg), Logger: log}, func(r *Reconciler) {
		r.after = func(d time.Duration) <-chan time.Time {
			mu.Lock()
			defer mu.Unlock()
			delays = append(delays, d)
			return nil
		}
	})
	var transient *TransientError
	if err := reconcileNow(t, r); !errors.As(err, &transient) {
		t.Fatalf("the first reconcile with the remote down: %v, want a TransientError", err)
	}
	st := r.Status()
	if st.Served == nil || st.Served.Revision.ID != first || st.FetchError == nil || st.Branch != "main" {
		t.Fatalf("status with the remote down: %+v", st)
	}
	failures := st.FetchError.Failures
	if got := testutil.ToFloat64(r.m.reconciles.WithLabelValues(ResultFetchError)); got != float64(failures) {
		t.Errorf("fetch errors = %v, want %d, as many as failures in status", got, failures)
	}
	if got := testutil.ToFloat64(r.m.lastSuccess); got != 0 {
		t.Errorf("last success = %v before any fetch succeeded", got)
	}
	if err := reconcileNow(t, r); !errors.As(err, &transient) {
		t.Fatalf("again with the remote down: %v", err)
	}
	if st := r.Status(); st.FetchError == nil || st.FetchError.Failures <= failures || st.Served.Revision.ID != first {
		t.Errorf("status after more failures: %+v", st)
	}
	mu.Lock()
	if len(delays) < 2 || delays[0] > BackoffMin || delays[1] <= delays[0] {
		t.Errorf("delays after the failures %v, want a growing backoff", delays)
	}
	mu.Unlock()
	if !strings.Contains(logs.String(), "fetching the policy source failed") {
		t.Errorf("no warning about the failed fetch:\n%s", logs.String())
	}

	next := remote.Set(t, map[string]string{"policies/roles.cue": rolesCUE + "// next\n"}, "next")
	daemon.Start()
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Served.Revision.ID != next || st.FetchError != nil {
		t.Errorf("the remote back: %+v", st)
	}
	if got := testutil.ToFloat64(r.m.lastSuccess); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success = %v after a successful fetch", got)
	}
}
