package api

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flood sends n concurrent requests built by mk to the server and returns
// the count of answers by status.
func flood(t *testing.T, n int, mk func() (*http.Request, error)) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			req, err := mk()
			if err != nil {
				errs <- err
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				errs <- errMissingRetryAfter
			}
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return counts
}

var errMissingRetryAfter = &apiError{Code: "test", Message: "429 without Retry-After"}

// TestReconcileFloodIsRateLimited: 200 concurrent POST /v1/reconcile from
// loopback ask the backend for at most the bucket's burst of reconciles;
// the rest are answered 429 rate_limited with Retry-After (issue 8: a tight
// loop got 34,690 accepted).
func TestReconcileFloodIsRateLimited(t *testing.T) {
	b := newBackend(exampleSnapshot(t, "rev1"))
	base := startServer(t, NewHandler(b, Options{}))
	counts := flood(t, 200, func() (*http.Request, error) {
		return http.NewRequest(http.MethodPost, base+"/v1/reconcile", nil)
	})
	// The bucket refills at 1/s: allow for a slow run.
	if got := b.reconciles.Load(); got > DefaultReconcileBurst+3 {
		t.Errorf("%d reconciles asked for by 200 requests, want at most about %d", got, DefaultReconcileBurst)
	}
	if counts[http.StatusTooManyRequests] < 150 {
		t.Errorf("answers %v: want most of them 429", counts)
	}
	r := do(t, base, http.MethodPost, "/v1/reconcile", nil, nil)
	if r.status != http.StatusTooManyRequests || errorCode(r.body) != codeRateLimited || r.header.Get("Retry-After") == "" {
		t.Errorf("over the limit: %d %s Retry-After=%q, want 429 rate_limited with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
}

// TestMinRevisionFloodBounded: 100 clients naming a commit that is not in
// the repository cost at most one fetch per second and one ancestry
// question per (served, wanted) pair (issue 8: 23 CPU-seconds in 10 s).
func TestMinRevisionFloodBounded(t *testing.T) {
	b := newBackend(exampleSnapshot(t, "rev1"))
	var questions atomic.Int32
	includes := func(context.Context, string, string) (bool, error) {
		questions.Add(1)
		return false, nil // unknown commit
	}
	base := startServer(t, NewHandler(b, Options{MinRevisionWait: 200 * time.Millisecond, RevisionIncludes: includes}))
	const unknown = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	start := time.Now()
	counts := flood(t, 100, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, base+checkPath("alice", "documents/d1", "documents:read"), nil)
		if err == nil {
			req.Header.Set(HeaderMinRevision, unknown)
		}
		return req, err
	})
	if counts[http.StatusConflict] != 100 {
		t.Errorf("answers %v, want 100 × 409", counts)
	}
	maxFetches := int32(time.Since(start)/minRevisionFetchInterval) + 1
	if got := b.reconciles.Load(); got > maxFetches {
		t.Errorf("%d fetches asked for in %v, want at most %d", got, time.Since(start), maxFetches)
	}
	if got := questions.Load(); got > 5 { // concurrent first askers may race
		t.Errorf("%d ancestry questions for one (served, wanted) pair, want about 1", got)
	}
}
