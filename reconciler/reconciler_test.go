package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/dir"
	"github.com/charter-policy/charter/schema"
)

const rolesCUE = `package policies

roles: User: {name: "User", permissions: [{action: "documents:read"}]}
roles: Editor: {name: "Editor", permissions: [{action: "documents"}]}
`

func recordCUE(user, role string) string {
	return `package policies

records: r1: {name: "R1", users: ["` + user + `"], statements: [{roles: ["` + role + `"], resources: ["documents"]}]}
`
}

func allowed(t *testing.T, s *engine.Snapshot, user, action string) bool {
	t.Helper()
	d, err := s.Check(engine.Question{User: user, Resource: "documents/d1", Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return d.Allowed
}

// fetchOnly hides a source's optional capabilities (its watcher), so that
// only the test's requests start reconciles.
type fetchOnly struct{ source.Source }

func newDir(t *testing.T, root string, opts dir.Options) *dir.Source {
	t.Helper()
	opts.Debounce = max(opts.Debounce, 20*time.Millisecond)
	s, err := dir.New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs a reconciler's loop until the test ends; tweak, when not nil,
// changes the reconciler before the loop starts.
func start(t *testing.T, src source.Source, opts Options, tweak func(*Reconciler)) *Reconciler {
	t.Helper()
	r := New(src, opts)
	if tweak != nil {
		tweak(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return r
}

func reconcileNow(t *testing.T, r *Reconciler) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := r.ReconcileNow(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("ReconcileNow timed out")
	}
	return err
}

func counter(r *Reconciler, result string) float64 {
	return testutil.ToFloat64(r.m.reconciles.WithLabelValues(result))
}

func TestReconcileKeepsLastGoodSnapshot(t *testing.T) {
	root := t.TempDir()
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	gittest.WriteFile(t, root, "records.cue", recordCUE("ann", "User"))
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := start(t, fetchOnly{newDir(t, root, dir.Options{})}, Options{Metrics: NewMetrics(reg), Logger: log}, nil)

	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	first := r.Served()
	if !strings.HasPrefix(first.Revision.ID, "sha256:") || first.Snapshot.Revision() != first.Revision.ID {
		t.Fatalf("revision %q, snapshot revision %q", first.Revision.ID, first.Snapshot.Revision())
	}
	if !allowed(t, first.Snapshot, "ann", "documents:read") || allowed(t, first.Snapshot, "ann", "documents:update") {
		t.Fatal("first revision decides wrongly")
	}

	// An unchanged source is no work and no line at info.
	lines := strings.Count(logs.String(), "\n")
	if err := reconcileNow(t, r); err != nil || r.Served() != first {
		t.Fatalf("unchanged source replaced the snapshot (err %v)", err)
	}
	if n := strings.Count(logs.String(), "\n"); n != lines {
		t.Errorf("an unchanged revision logged at info:\n%s", logs.String())
	}

	// An invalid edit keeps the last good snapshot and is reported with its position.
	gittest.WriteFile(t, root, "records.cue", recordCUE("ann", "Edtor"))
	err := reconcileNow(t, r)
	var invalid *InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("an invalid revision: %v, want an InvalidError", err)
	}
	st := r.Status()
	if st.Served != first || st.Rejected == nil || st.Rejected.Result != ResultInvalid || st.Rejected.Revision != st.Fetched.ID {
		t.Fatalf("status after an invalid edit: %+v", st)
	}
	if e := st.Rejected.Errors[0]; e.Pos.String() != "records.cue:3:56" || !strings.Contains(e.Message, `role "Edtor" does not exist`) {
		t.Fatalf("rejection error = %v", e)
	}
	// The same bad revision is not tried again; a request is told why it
	// is not served.
	if err := reconcileNow(t, r); !errors.As(err, &invalid) {
		t.Fatalf("a request for the same invalid revision: %v, want its InvalidError", err)
	}
	if got := counter(r, ResultInvalid); got != 1 {
		t.Errorf("the same invalid revision was tried again: %v invalid reconciles", got)
	}

	// Fixing the file recovers without a restart, and clears the error.
	gittest.WriteFile(t, root, "records.cue", recordCUE("ann", "Editor"))
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	if st.Rejected != nil || st.Served == first || !allowed(t, st.Served.Snapshot, "ann", "documents:update") {
		t.Fatalf("status after the fix: %+v", st)
	}
	if allowed(t, first.Snapshot, "ann", "documents:update") {
		t.Fatal("the old snapshot changed")
	}
	if !strings.Contains(logs.String(), "revision served") {
		t.Errorf("no audit line:\n%s", logs.String())
	}

	if got := counter(r, ResultSuccess); got != 2 {
		t.Errorf("success reconciles = %v, want 2", got)
	}
	if got := counter(r, ResultInvalid); got != 1 {
		t.Errorf("invalid reconciles = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.info.WithLabelValues(st.Served.Revision.ID)); got != 1 {
		t.Errorf("snapshot_info of the served revision = %v", got)
	}
	if n := testutil.CollectAndCount(r.m.info); n != 1 {
		t.Errorf("snapshot_info has %d series, want only the served revision", n)
	}
	if n := testutil.CollectAndCount(r.m.reconciles); n != 5 {
		t.Errorf("charter_reconcile_total has %d series, want 5 results", n)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
}

func TestReconcileRejectsPermissionTypeChange(t *testing.T) {
	root := t.TempDir()
	server := func(typ, extra string) string {
		return `package policies

resourceServers: s: {name: "S", scopes: ["read"], policies: p: {name: "P", type: "user", users: ["ann"]}
	permissions: read: {name: "Read", type: "` + typ + `", ` + extra + ` policies: ["p"]}}
`
	}
	gittest.WriteFile(t, root, "server.cue", server("scope", `scopes: ["read"],`))
	r := start(t, fetchOnly{newDir(t, root, dir.Options{})}, Options{}, nil)
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	good := r.Served()
	gittest.WriteFile(t, root, "server.cue", server("resource", `resourceType: "doc",`))
	var rejected *RejectedError
	if err := reconcileNow(t, r); !errors.As(err, &rejected) {
		t.Fatalf("a permission type change: %v, want a RejectedError", err)
	}
	st := r.Status()
	if st.Served != good || st.Rejected.Result != ResultRejected || !strings.Contains(st.Rejected.Errors[0].Error(), "type cannot change") {
		t.Fatalf("status: %+v", st.Rejected)
	}
}

func TestReconcileContentError(t *testing.T) {
	root := t.TempDir()
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	reg := prometheus.NewRegistry()
	r := start(t, fetchOnly{newDir(t, root, dir.Options{})}, Options{Metrics: NewMetrics(reg)}, nil)
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.cue")
	gittest.WriteFile(t, filepath.Dir(outside), "secret.cue", "package p\n")
	if err := os.Symlink(outside, filepath.Join(root, "escape.cue")); err != nil {
		t.Fatal(err)
	}
	var invalid *InvalidError
	if err := reconcileNow(t, r); !errors.As(err, &invalid) {
		t.Fatalf("a symbolic link out of the root: %v, want an InvalidError", err)
	}
	st := r.Status()
	if st.Rejected == nil || len(st.Rejected.Errors) != 1 || st.FetchError != nil {
		t.Fatalf("status: %+v", st)
	}
	// Placed at the link's first line, as charter validate places it.
	if e := st.Rejected.Errors[0]; e.Pos.String() != "escape.cue:1" || !strings.HasPrefix(e.Message, "symbolic link to ") || !strings.Contains(e.Message, "leads outside the policy root") {
		t.Fatalf("the refusal is %q at %q, want a symbolic link out of the root at escape.cue:1", e.Message, e.Pos)
	}
	if err := reconcileNow(t, r); !errors.As(err, &invalid) {
		t.Errorf("a request for the same unusable content: %v, want its InvalidError", err)
	}
	if got := counter(r, ResultInvalid); got != 1 {
		t.Errorf("invalid reconciles = %v, want 1", got)
	}
}

// TestFetchErrorClearedWithoutChange: a fetch fails, then succeeds with the
// content already served; the error goes, nothing is reloaded.
func TestFetchErrorClearedWithoutChange(t *testing.T) {
	root := filepath.Join(t.TempDir(), "policies")
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	reg := prometheus.NewRegistry()
	// No retry on a timer: only the test's requests reconcile (a request
	// may still be answered by a reconcile that an earlier one queued).
	r := start(t, fetchOnly{newDir(t, root, dir.Options{})}, Options{Metrics: NewMetrics(reg)}, func(r *Reconciler) {
		r.after = func(time.Duration) <-chan time.Time { return nil }
	})
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	served := r.Served()

	if err := os.Rename(root, root+".away"); err != nil {
		t.Fatal(err)
	}
	var transient *TransientError
	if err := reconcileNow(t, r); !errors.As(err, &transient) {
		t.Fatalf("fetch of a missing directory: %v, want a TransientError", err)
	}
	st := r.Status()
	if st.FetchError == nil || st.FetchError.Failures < 1 || st.Served != served || st.Rejected != nil {
		t.Fatalf("status after a failed fetch: %+v", st)
	}
	if err := reconcileNow(t, r); !errors.As(err, &transient) {
		t.Fatalf("second failed fetch: %v", err)
	}
	if failed := r.Status().FetchError.Failures; failed <= st.FetchError.Failures {
		t.Errorf("failures = %d after %d and one more failed fetch", failed, st.FetchError.Failures)
	}
	// One fetch_error per failed fetch (polled: a queued reconcile may be
	// publishing between the two reads).
	waitFor(t, func() bool { return counter(r, ResultFetchError) == float64(r.Status().FetchError.Failures) })

	if err := os.Rename(root+".away", root); err != nil {
		t.Fatal(err)
	}
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	if st.FetchError != nil || st.Served != served || st.LastFetch.IsZero() {
		t.Fatalf("status after a good fetch of the same content: %+v", st)
	}
	if got := counter(r, ResultSuccess); got != 1 {
		t.Errorf("success reconciles = %v, want 1 (the unchanged revision is no reconcile)", got)
	}
}

// blockingSource holds each Fetch until the test releases it.
type blockingSource struct {
	source.Source
	entered  chan struct{}
	release  chan struct{}
	inFlight atomic.Int32
	most     atomic.Int32
}

func (b *blockingSource) Fetch(ctx context.Context) (source.Revision, fs.FS, error) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return source.Revision{}, nil, ctx.Err()
	}
	return b.Source.Fetch(ctx)
}

// TestStatusDuringReload: while a reconcile is held inside Fetch, Status
// and Snapshot answer at once, and requests from many goroutines do not
// start a second reconcile beside it.
func TestStatusDuringReload(t *testing.T) {
	root := t.TempDir()
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	src := &blockingSource{Source: newDir(t, root, dir.Options{}), entered: make(chan struct{}, 16), release: make(chan struct{})}
	r := start(t, fetchOnly{src}, Options{}, nil)

	<-src.entered // the first reconcile is held
	instant := func(name string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatalf("%s waited for the reload", name)
		}
	}
	instant("Status", func() {
		if st := r.Status(); st.Served != nil || st.Source == "" {
			t.Errorf("status during the first reload: %+v", st)
		}
	})
	instant("Snapshot", func() {
		if r.Snapshot() != nil {
			t.Error("a snapshot before the first reload ended")
		}
	})
	var results []<-chan error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 8 {
		wg.Go(func() {
			ch := r.Request()
			mu.Lock()
			results = append(results, ch)
			mu.Unlock()
		})
	}
	wg.Wait()
	src.release <- struct{}{} // the first reconcile ends
	<-src.entered             // the one the requests asked for begins
	instant("Status", func() {
		if st := r.Status(); st.Served == nil {
			t.Error("the first reconcile's snapshot is not in the status")
		}
	})
	close(src.release)
	for _, ch := range results {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("request: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request was never answered")
		}
	}
	if m := src.most.Load(); m != 1 {
		t.Errorf("%d fetches ran at once, want 1", m)
	}
}

func TestBackoffSchedule(t *testing.T) {
	const s = time.Second
	nominal := []time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s, 128 * s, 256 * s, 300 * s, 300 * s}
	for _, r := range []float64{0, 0.5, 0.999} {
		var b backoff
		for i, want := range nominal {
			got := b.next(r)
			low := want - time.Duration(float64(want)*backoffJitter*r) - time.Millisecond
			if got > want || got < low {
				t.Errorf("r=%v: failure %d waits %v, want %v jittered down by at most %v", r, i+1, got, want, time.Duration(float64(want)*backoffJitter))
			}
		}
		for range 100 {
			if d := b.next(r); d > BackoffMax {
				t.Fatalf("a delay of %v, over the cap", d)
			}
		}
		b.reset()
		if got := b.next(0); got != BackoffMin {
			t.Errorf("after a reset the first delay is %v, want %v", got, BackoffMin)
		}
	}
	if got := jittered(30*s, 0); got != 27*s {
		t.Errorf("jittered(30s, 0) = %v, want 27s", got)
	}
	if got := jittered(30*s, 0.5); got != 30*s {
		t.Errorf("jittered(30s, 0.5) = %v, want 30s", got)
	}
}

// fakeClock hands the loop's waits to the test, which fires them.
type fakeClock struct{ waits chan fakeWait }

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	w := fakeWait{d: d, fire: make(chan time.Time, 1)}
	c.waits <- w
	return w.fire
}

func (c *fakeClock) next(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not wait")
		return fakeWait{}
	}
}

// TestLoopBackoff drives the loop with a fake clock: failed fetches wait
// 1s, 2s, 4s (jittered), a success waits the jittered interval and resets
// the backoff.
func TestLoopBackoff(t *testing.T) {
	root := filepath.Join(t.TempDir(), "policies")
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	clock := &fakeClock{waits: make(chan fakeWait)}
	r := start(t, fetchOnly{newDir(t, root, dir.Options{})}, Options{Interval: 30 * time.Second}, func(r *Reconciler) {
		r.after = clock.after
		r.random = func() float64 { return 0.5 }
	})
	if w := clock.next(t); w.d != 30*time.Second {
		t.Fatalf("after the first success the loop waits %v, want the interval 30s", w.d)
	}
	if err := os.Rename(root, root+".away"); err != nil {
		t.Fatal(err)
	}
	r.Reconcile() // the interval's wait is abandoned
	want := []time.Duration{900 * time.Millisecond, 1800 * time.Millisecond, 3600 * time.Millisecond}
	for i, d := range want {
		w := clock.next(t)
		if w.d != d {
			t.Errorf("failure %d: the loop waits %v, want %v", i+1, w.d, d)
		}
		if i == len(want)-1 {
			if err := os.Rename(root+".away", root); err != nil {
				t.Fatal(err)
			}
		}
		w.fire <- time.Now()
	}
	if w := clock.next(t); w.d != 30*time.Second {
		t.Errorf("after the recovery the loop waits %v, want the interval", w.d)
	}
	if st := r.Status(); st.FetchError != nil {
		t.Errorf("the fetch error stayed: %+v", st.FetchError)
	}
	if err := os.Rename(root, root+".away"); err != nil {
		t.Fatal(err)
	}
	r.Reconcile()
	if w := clock.next(t); w.d != 900*time.Millisecond {
		t.Errorf("the first failure after a success waits %v, want 900ms (the backoff was reset)", w.d)
	}
}

// TestCommitAloneIsNoticed (defect 3): in a git work tree, a commit of the
// served edit, with no further file change, is served as the new commit,
// without loading the policy again.
func TestCommitAloneIsNoticed(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "roles.cue", rolesCUE)
	gittest.WriteFile(t, repo, "records.cue", recordCUE("ann", "User"))
	first := gittest.CommitAll(t, repo, "first")
	r := start(t, newDir(t, repo, dir.Options{}), Options{}, nil)
	waitFor(t, func() bool { return r.Served().revisionID() == first })

	gittest.WriteFile(t, repo, "records.cue", recordCUE("bob", "User"))
	waitFor(t, func() bool { return strings.HasPrefix(r.Served().revisionID(), first+"+dirty.") })
	dirty := r.Served()

	gittest.Git(t, repo, "commit", "-q", "-am", "second")
	second := gittest.Git(t, repo, "rev-parse", "HEAD")
	waitFor(t, func() bool { return r.Served().revisionID() == second })
	s := r.Served()
	if s.Policy != dirty.Policy || s.Snapshot.Revision() != second || s.Revision.Subject != "second" {
		t.Errorf("the commit was loaded again or mislabelled: %+v", s.Revision)
	}
	if !allowed(t, s.Snapshot, "bob", "documents:read") {
		t.Error("the committed revision decides wrongly")
	}
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunOnceAndStopped(t *testing.T) {
	root := t.TempDir()
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	r := New(fetchOnly{newDir(t, root, dir.Options{})}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err == nil {
		t.Error("a second Run was accepted")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.Request():
		if !errors.Is(err, ErrStopped) {
			t.Errorf("a request after the loop stopped: %v", err)
		}
	case <-time.After(time.Second):
		t.Error("a request after the loop stopped waits")
	}
}

func TestResultOf(t *testing.T) {
	errs := schema.Errors{{Message: "x"}}
	tests := []struct {
		err     error
		result  string
		retries bool
	}{
		{nil, ResultSuccess, false},
		{&InvalidError{Errors: errs}, ResultInvalid, false},
		{fmt.Errorf("wrapped: %w", &RejectedError{Errors: errs}), ResultRejected, false},
		{&TransientError{Err: errors.New("no route")}, ResultFetchError, true},
		{fmt.Errorf("wrapped: %w", &InternalError{Err: errors.New("bug")}), ResultInternal, true},
		{errUnchanged, "", false},
		{context.Canceled, "", false},
	}
	for _, tt := range tests {
		if got := resultOf(tt.err); got != tt.result {
			t.Errorf("resultOf(%v) = %q, want %q", tt.err, got, tt.result)
		}
		if got := retries(tt.err); got != tt.retries {
			t.Errorf("retries(%v) = %v, want %v", tt.err, got, tt.retries)
		}
	}
	var es schema.Errors
	if !errors.As(&InvalidError{Errors: errs}, &es) || len(es) != 1 {
		t.Error("an InvalidError does not unwrap to its schema.Errors")
	}
}

// TestServedChanged: the channel is closed by a swap and only by one; a
// reconcile that serves nothing new leaves it open.
func TestServedChanged(t *testing.T) {
	root := t.TempDir()
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	gittest.WriteFile(t, root, "records.cue", recordCUE("ann", "User"))
	r := start(t, fetchOnly{newDir(t, root, dir.Options{})}, Options{}, nil)
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
	first := r.Served()

	changed := r.ServedChanged()
	if err := reconcileNow(t, r); err != nil || r.Served() != first {
		t.Fatalf("unchanged source: err %v", err)
	}
	select {
	case <-changed:
		t.Fatal("closed without a new snapshot")
	default:
	}

	gittest.WriteFile(t, root, "records.cue", recordCUE("bob", "User"))
	r.Reconcile()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("not closed after a new snapshot was served")
	}
	if r.Served() == first {
		t.Fatal("closed, but the old snapshot is still served")
	}
	select {
	case <-r.ServedChanged():
		t.Fatal("the channel after the swap is closed already")
	default:
	}
}

// brokenWatch is a directory source whose watch cannot be set up, as when
// the inotify instance limit is reached, which a test cannot cause here
// without starving every other process of the user.
type brokenWatch struct{ source.Source }

func (brokenWatch) Watch(context.Context, func()) error {
	return errors.New("watch /policies: too many open files")
}

// TestStatusWatchProblem: a watch that ends with an error shows in Status
// (the source has no WatchHealth of its own to tell), and a directory
// source's own report of a watch that could not be set up again shows,
// then clears once it is set up again.
func TestStatusWatchProblem(t *testing.T) {
	root := t.TempDir()
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	r := start(t, brokenWatch{newDir(t, root, dir.Options{})}, Options{}, nil)
	waitFor(t, func() bool { return r.Status().WatchProblem != nil })
	if p := r.Status().WatchProblem; p.Message != "watch /policies: too many open files" || p.At.IsZero() {
		t.Errorf("WatchProblem of a watch that ended: %+v", p)
	}

	parent := filepath.Join(t.TempDir(), "parent")
	root = filepath.Join(parent, "policies")
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	r = start(t, newDir(t, root, dir.Options{}), Options{}, nil)
	waitFor(t, func() bool { return r.Served() != nil })
	if p := r.Status().WatchProblem; p != nil {
		t.Fatalf("WatchProblem of a whole watch: %+v", p)
	}
	if err := os.RemoveAll(parent); err != nil { // the root and the watched parent
		t.Fatal(err)
	}
	waitFor(t, func() bool { return r.Status().WatchProblem != nil })
	if p := r.Status().WatchProblem; !strings.Contains(p.Message, "no such file or directory") {
		t.Errorf("WatchProblem after the root and its parent were removed: %+v", p)
	}
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	waitFor(t, func() bool { return r.Status().WatchProblem == nil })
}
