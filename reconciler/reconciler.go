package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// Served is the snapshot being served and where it came from. It is never
// changed once published.
type Served struct {
	Snapshot *engine.Snapshot
	Policy   *schema.PolicySet
	Revision Revision
	LoadedAt time.Time
}

// Status is the state of the reconciler, for GET /v1/status.
type Status struct {
	Source string
	Served *Served // nil before the first snapshot
	// Rejected is the newest revision seen that could not be served, or nil
	// once a newer revision is served.
	Rejected *Rejection
}

// Rejection is a revision that was not served, with every reason.
type Rejection struct {
	Revision string // empty for a failed fetch
	Result   string // ResultInvalid, ResultRejected or ResultFetchError
	Errors   schema.Errors
}

// Options configure a Reconciler.
type Options struct {
	Logger  *slog.Logger
	Metrics *Metrics // nil: none
	// Interval, when set, fetches the source that often besides its own
	// change notifications.
	Interval time.Duration
	Now      func() time.Time
}

// Reconciler keeps a snapshot current with a Source. Snapshot and Status
// never block on a reload: the new snapshot is built outside any lock and
// published with one atomic pointer swap.
type Reconciler struct {
	src    Source
	loader *schema.Loader
	log    *slog.Logger
	m      *Metrics
	opts   Options
	kick   chan struct{}

	served atomic.Pointer[Served]

	mu       sync.Mutex // guards the fields below and serializes reconciles
	lastKey  string     // Key of the newest revision handled, served or not
	rejected *Rejection
}

// New returns a Reconciler for src. Run starts it.
func New(src Source, opts Options) *Reconciler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reconciler{src: src, loader: schema.NewLoader(), log: opts.Logger, m: opts.Metrics, opts: opts, kick: make(chan struct{}, 1)}
}

// Snapshot returns the served snapshot, or nil before the first one.
func (r *Reconciler) Snapshot() *engine.Snapshot {
	if s := r.served.Load(); s != nil {
		return s.Snapshot
	}
	return nil
}

// Served returns what is served, or nil before the first snapshot.
func (r *Reconciler) Served() *Served { return r.served.Load() }

// Status returns the reconciler's state.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Source: r.src.String(), Served: r.served.Load(), Rejected: r.rejected}
}

// Reconcile asks for a reconcile as soon as possible; it never blocks.
func (r *Reconciler) Reconcile() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run reconciles once, then whenever the source reports a change, Reconcile
// is called or the interval passes, until ctx is done.
func (r *Reconciler) Run(ctx context.Context) error {
	if w, ok := r.src.(Watcher); ok {
		go func() {
			if err := w.Watch(ctx, r.Reconcile); err != nil {
				r.log.Error("watching the policy source failed; changes are picked up only on request", "source", r.src.String(), "err", err)
			}
		}()
	}
	var tick <-chan time.Time
	if r.opts.Interval > 0 {
		t := time.NewTicker(r.opts.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		if err := r.ReconcileNow(ctx); err != nil && ctx.Err() == nil {
			r.log.Debug("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-tick:
		}
	}
}

// ReconcileNow fetches the source and, when its revision is new, loads,
// validates, diffs and serves it. A revision that fails is recorded in the
// status and not tried again until the source's revision changes. The
// returned error says why nothing new is served (nil when it is, or when the
// revision was already handled).
func (r *Reconciler) ReconcileNow(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	observe := func(name string, d time.Duration) {
		if r.m != nil {
			r.m.duration.WithLabelValues(name).Observe(d.Seconds())
		}
	}
	phase := func(name string, start time.Time) { observe(name, time.Since(start)) }
	start := time.Now()
	rev, fsys, err := r.src.Fetch(ctx)
	phase(PhaseFetch, start)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.reject(Revision{}, ResultFetchError, schema.Errors{{Message: err.Error()}})
		return fmt.Errorf("fetch %s: %w", r.src, err)
	}
	if rev.Key == r.lastKey {
		return nil
	}
	r.lastKey = rev.Key

	cur := r.served.Load()
	var base *schema.PolicySet
	if cur != nil {
		base = cur.Policy
	}
	start = time.Now()
	loaded, err := r.loader.LoadResult(ctx, fsys)
	observe(PhaseLoad, time.Since(start))
	if err != nil {
		var errs schema.Errors
		if !errors.As(err, &errs) {
			errs = schema.Errors{{Message: err.Error()}}
		}
		r.reject(rev, ResultInvalid, errs)
		return fmt.Errorf("revision %s is invalid: %w", rev.ID, err)
	}
	policy := loaded.Set
	start = time.Now()
	diff := change.FromLoad(base, loaded)
	phase(PhaseDiff, start)

	start = time.Now()
	errs := change.Check(base, policy)
	phase(PhaseValidate, start)
	if len(errs) > 0 {
		r.reject(rev, ResultRejected, errs)
		return fmt.Errorf("revision %s is rejected: %w", rev.ID, errs)
	}

	start = time.Now()
	var snap *engine.Snapshot
	if cur == nil {
		snap, err = engine.Build(policy, rev.ID)
	} else {
		snap, err = cur.Snapshot.Apply(diff, rev.ID)
	}
	phase(PhaseApply, start)
	if err != nil {
		r.reject(rev, ResultRejected, schema.Errors{{Message: err.Error()}})
		return fmt.Errorf("build snapshot of %s: %w", rev.ID, err)
	}
	served := &Served{Snapshot: snap, Policy: policy, Revision: rev, LoadedAt: r.opts.Now().UTC()}
	r.served.Store(served)
	r.rejected = nil
	r.audit(served, cur, diff)
	r.observeServed(served, cur)
	return nil
}

// reject records a revision that could not be served.
func (r *Reconciler) reject(rev Revision, result string, errs schema.Errors) {
	r.rejected = &Rejection{Revision: rev.ID, Result: result, Errors: errs}
	if r.m != nil {
		r.m.reconciles.WithLabelValues(result).Inc()
	}
	first := ""
	if len(errs) > 0 {
		first = errs[0].Error()
	}
	r.log.Warn("revision not served", "revision", rev.ID, "result", result, "errors", len(errs), "first", first,
		"serving", r.servedID())
}

func (r *Reconciler) servedID() string {
	if s := r.served.Load(); s != nil {
		return s.Revision.ID
	}
	return ""
}

// audit logs the one structured line each served revision gets.
func (r *Reconciler) audit(s, prev *Served, d *change.Diff) {
	added, removed, changed := 0, 0, 0
	count := func(a, rm, ch int) { added, removed, changed = added+a, removed+rm, changed+ch }
	count(len(d.Roles.Added), len(d.Roles.Removed), len(d.Roles.Changed))
	count(len(d.Groups.Added), len(d.Groups.Removed), len(d.Groups.Changed))
	count(len(d.Records.Added), len(d.Records.Removed), len(d.Records.Changed))
	count(len(d.ResourceServers.Added), len(d.ResourceServers.Removed), len(d.ResourceServers.Changed))
	previous := ""
	if prev != nil {
		previous = prev.Revision.ID
	}
	r.log.Info("revision served", "revision", s.Revision.ID, "previous", previous, "author", s.Revision.Author,
		"added", added, "removed", removed, "changed", changed, "source", r.src.String())
}

func (r *Reconciler) observeServed(s, prev *Served) {
	if r.m == nil {
		return
	}
	r.m.reconciles.WithLabelValues(ResultSuccess).Inc()
	if prev != nil {
		r.m.info.DeleteLabelValues(prev.Revision.ID)
	}
	r.m.info.WithLabelValues(s.Revision.ID).Set(1)
	r.m.loadedAt.Set(float64(s.LoadedAt.UnixNano()) / 1e9)
	c := s.Snapshot.Counts()
	r.m.objects.WithLabelValues("roles").Set(float64(c.Roles))
	r.m.objects.WithLabelValues("groups").Set(float64(c.Groups))
	r.m.objects.WithLabelValues("records").Set(float64(c.Records))
	r.m.objects.WithLabelValues("resource_servers").Set(float64(c.ResourceServers))
}
