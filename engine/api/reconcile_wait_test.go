package api

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charter-policy/charter/engine"
)

// countingBackend counts the looks at the served snapshot.
type countingBackend struct {
	*testBackend
	looks atomic.Int32
}

func (b *countingBackend) Snapshot() *engine.Snapshot {
	b.looks.Add(1)
	return b.testBackend.Snapshot()
}

// TestMinRevisionWakesOnSwap: a request waiting for a revision is answered
// from it as soon as it is served, long before the wait ends, also when
// another revision is served first.
func TestMinRevisionWakesOnSwap(t *testing.T) {
	rev1, rev2, rev3 := exampleSnapshot(t, "rev1"), exampleSnapshot(t, "rev2"), exampleSnapshot(t, "rev3")
	const wait = 30 * time.Second
	b := newBackend(rev1)
	base := startServer(t, NewHandler(b, Options{MinRevisionWait: wait}))
	type answer struct {
		status   int
		revision string
		err      error
		took     time.Duration
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		req, err := http.NewRequest(http.MethodGet, base+checkPath("alice", "documents/d1", "documents:read"), nil)
		if err != nil {
			done <- answer{err: err}
			return
		}
		req.Header.Set(HeaderMinRevision, "rev3")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		resp.Body.Close()
		done <- answer{status: resp.StatusCode, revision: resp.Header.Get(HeaderRevision), took: time.Since(start)}
	}()
	for deadline := time.Now().Add(10 * time.Second); b.reconciles.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // the request asks for a fetch before it waits
			t.Fatal("the request asked for no fetch")
		}
	}
	b.serve(rev2) // not the one asked for: it keeps waiting
	select {
	case a := <-done:
		t.Fatalf("answered after rev2: %+v", a)
	case <-time.After(50 * time.Millisecond):
	}
	b.serve(rev3)
	a := <-done
	if a.err != nil || a.status != http.StatusOK || a.revision != "rev3" {
		t.Fatalf("%+v, want 200 at rev3", a)
	}
	if a.took > wait/2 {
		t.Errorf("answered after %v: it waited for the deadline (%v), not for the new snapshot", a.took, wait)
	}
	if n := b.reconciles.Load(); n != 1 {
		t.Errorf("%d fetches asked for, want 1", n)
	}
}

// TestMinRevisionDoesNotPoll: while nothing is served, a waiting request
// does not look at the snapshot again until the wait ends.
func TestMinRevisionDoesNotPoll(t *testing.T) {
	const wait = 300 * time.Millisecond
	b := &countingBackend{testBackend: newBackend(exampleSnapshot(t, "rev1"))}
	base := startServer(t, NewHandler(b, Options{MinRevisionWait: wait}))
	resp := do(t, base, http.MethodGet, checkPath("alice", "documents/d1", "documents:read"), nil, map[string]string{HeaderMinRevision: "rev9"})
	if resp.status != http.StatusConflict || errorCode(resp.body) != codeRevisionBehind {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	// One look before waiting, one for the 409's revision; a poll every
	// 10 ms would have looked about 30 times.
	if n := b.looks.Load(); n > 3 {
		t.Errorf("%d looks at the snapshot during a wait of %v: it polls", n, wait)
	}
}

// TestMinRevisionIncludes: the ancestry question gets a context bounded by
// the wait; an error reading the history does not satisfy the header.
func TestMinRevisionIncludes(t *testing.T) {
	const wait = 200 * time.Millisecond
	path := checkPath("alice", "documents/d1", "documents:read")
	var bounded atomic.Bool
	b := newBackend(exampleSnapshot(t, "rev2"))
	base := startServer(t, NewHandler(b, Options{MinRevisionWait: wait,
		RevisionIncludes: func(ctx context.Context, served, min string) (bool, error) {
			if d, ok := ctx.Deadline(); ok && time.Until(d) <= wait {
				bounded.Store(true)
			}
			if min == "broken" {
				return true, errors.New("the history is unreadable")
			}
			return served == "rev2" && min == "rev1", nil
		}}))
	if resp := do(t, base, http.MethodGet, path, nil, map[string]string{HeaderMinRevision: "rev1"}); resp.status != 200 {
		t.Errorf("an ancestor: %d %s", resp.status, resp.body)
	}
	if !bounded.Load() {
		t.Error("the ancestry question had no deadline within the wait")
	}
	if resp := do(t, base, http.MethodGet, path, nil, map[string]string{HeaderMinRevision: "broken"}); resp.status != http.StatusConflict {
		t.Errorf("an unreadable history: %d %s", resp.status, resp.body)
	}
}

func TestReconcileWait(t *testing.T) {
	rev1, rev2 := exampleSnapshot(t, "rev1"), exampleSnapshot(t, "rev2")
	t.Run("served", func(t *testing.T) {
		b := newBackend(rev1)
		b.next.Store(rev2)
		base := startServer(t, NewHandler(b, Options{}))
		resp := do(t, base, http.MethodPost, "/v1/reconcile?wait=true", nil, nil)
		if resp.status != http.StatusAccepted || resp.header.Get(HeaderRevision) != "rev2" ||
			!jsonEqual(resp.body, []byte(`{"status":"served","revision":"rev2","error":null}`)) {
			t.Errorf("%d %v %s", resp.status, resp.header, resp.body)
		}
	})
	t.Run("not served", func(t *testing.T) {
		b := newBackend(rev1)
		b.waitErr = errors.New("revision rev2 is invalid")
		base := startServer(t, NewHandler(b, Options{}))
		resp := do(t, base, http.MethodPost, "/v1/reconcile?wait=1", nil, nil)
		if resp.status != http.StatusAccepted || resp.header.Get(HeaderRevision) != "rev1" ||
			!jsonEqual(resp.body, []byte(`{"status":"not_served","revision":"rev1","error":"revision rev2 is invalid"}`)) {
			t.Errorf("%d %v %s", resp.status, resp.header, resp.body)
		}
	})
	t.Run("no snapshot", func(t *testing.T) {
		b := newBackend(nil)
		b.waitErr = errors.New("fetch failed")
		base := startServer(t, NewHandler(b, Options{}))
		resp := do(t, base, http.MethodPost, "/v1/reconcile?wait=true", nil, nil)
		if resp.status != http.StatusAccepted || resp.header.Get(HeaderRevision) != "" ||
			!jsonEqual(resp.body, []byte(`{"status":"not_served","revision":"","error":"fetch failed"}`)) {
			t.Errorf("%d %v %s", resp.status, resp.header, resp.body)
		}
	})
	t.Run("arguments", func(t *testing.T) {
		b := newBackend(rev1)
		base := startServer(t, NewHandler(b, Options{}))
		for query, want := range map[string]int{
			"?wait=false": http.StatusAccepted, "?wait=": 400, "?wait=soon": 400, "?wait=true&wait=true": 400,
		} {
			resp := do(t, base, http.MethodPost, "/v1/reconcile"+query, nil, nil)
			if resp.status != want || (want == 400 && errorCode(resp.body) != codeInvalidArgument) {
				t.Errorf("%s: %d %s, want %d", query, resp.status, resp.body, want)
			}
		}
		if n := b.reconciles.Load(); n != 1 {
			t.Errorf("%d reconciles, want 1 (bad arguments ask for none)", n)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		b := newBackend(rev1)
		base := startServer(t, NewHandler(b, Options{WebhookSecret: []byte("s")}))
		resp := do(t, base, http.MethodPost, "/v1/reconcile?wait=true", nil, nil)
		if resp.status < 400 || resp.status > 499 || b.reconciles.Load() != 0 {
			t.Errorf("without a signature: %d %s, %d reconciles", resp.status, resp.body, b.reconciles.Load())
		}
	})
}
