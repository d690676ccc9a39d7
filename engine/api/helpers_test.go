package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/schema"
)

// examplePolicy loads policies-example once for the whole package.
var examplePolicy = sync.OnceValues(func() (*schema.PolicySet, error) {
	return schema.NewLoader().Load(context.Background(), os.DirFS("../../policies-example"))
})

// exampleSnapshot builds a snapshot of policies-example at revision rev.
func exampleSnapshot(tb testing.TB, rev string) *engine.Snapshot {
	tb.Helper()
	p, err := examplePolicy()
	if err != nil {
		tb.Fatalf("loading policies-example: %v", err)
	}
	s, err := engine.Build(p, rev)
	if err != nil {
		tb.Fatalf("building snapshot: %v", err)
	}
	return s
}

// snapshotOf loads and builds the policy in fsys.
func snapshotOf(tb testing.TB, fsys fs.FS, rev string) *engine.Snapshot {
	tb.Helper()
	p, err := schema.NewLoader().Load(context.Background(), fsys)
	if err != nil {
		tb.Fatalf("loading policy: %v", err)
	}
	s, err := engine.Build(p, rev)
	if err != nil {
		tb.Fatalf("building snapshot: %v", err)
	}
	return s
}

// testBackend is a real Backend over real snapshots: what the reconciler
// does, minus fetching. On Reconcile it serves next, when set, a little
// later; on ReconcileWait at once, and then answers waitErr.
type testBackend struct {
	snap       atomic.Pointer[engine.Snapshot]
	next       atomic.Pointer[engine.Snapshot]
	reconciles atomic.Int32
	status     Status
	waitErr    error

	mu      sync.Mutex
	changed chan struct{} // closed by serve; nil until asked for
}

func (b *testBackend) Snapshot() *engine.Snapshot { return b.snap.Load() }

func (b *testBackend) Status() Status {
	st := b.status
	if s := b.snap.Load(); s != nil {
		st.Revision = s.Revision()
	}
	return st
}

func (b *testBackend) Reconcile() bool {
	b.reconciles.Add(1)
	if n := b.next.Swap(nil); n != nil {
		// Serve the next revision a little later, as a fetch would.
		time.AfterFunc(20*time.Millisecond, func() { b.serve(n) })
	}
	return true
}

func (b *testBackend) ReconcileWait(ctx context.Context) error {
	b.reconciles.Add(1)
	if n := b.next.Swap(nil); n != nil {
		b.serve(n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.waitErr
}

func (b *testBackend) SnapshotChanged() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.changed
}

// serve swaps in s and wakes the waiters, as the reconciler does.
func (b *testBackend) serve(s *engine.Snapshot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.snap.Store(s)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

func newBackend(s *engine.Snapshot) *testBackend {
	b := &testBackend{}
	if s != nil {
		b.snap.Store(s)
	}
	return b
}

// startServer serves h on a real listener on 127.0.0.1 and returns its base URL.
func startServer(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// response is what a test looks at.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request to the server at base; path is sent as written
// (escapes included).
func do(tb testing.TB, base, method, path string, body []byte, hdr map[string]string) response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return bytes.Equal(ca, cb)
}

// errorCode returns the code of an error body, or "" when the body is not
// exactly {"error":{"code","message"}} with both non-empty.
func errorCode(body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&e) != nil || e.Error.Message == "" {
		return ""
	}
	return e.Error.Code
}

// newTestLogger logs to the test's output.
func newTestLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }
