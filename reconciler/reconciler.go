package reconciler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/trust"
	"github.com/charter-policy/charter/schema"
)

// Options configure a Reconciler.
type Options struct {
	// Logger receives one line per served revision (info), per revision
	// that cannot be served and per failed fetch (warn), and per internal
	// error (error). Nil: nothing is logged.
	Logger *slog.Logger
	// Metrics, when not nil, receives the reconciler's metrics.
	Metrics *Metrics
	// Interval, when positive, fetches the source that often (jittered)
	// besides its own change notifications: the rescan of a directory, the
	// poll of a remote.
	Interval time.Duration
	// Trust, when not nil, is what a commit must satisfy to be served: its
	// signature and those below it by trusted keys, its descent from the
	// served commit (trust.Policy). A revision that is not a commit of a
	// repository the source can read (see CommitSource) is rejected when
	// Trust requires a signature or forbids a rewind, and so is a work tree
	// with uncommitted changes. A bad
	// signature reported by the source is rejected whatever this says.
	Trust *trust.Policy
	// LastServed is the commit served before this process started (as
	// State recorded it), the base of Trust's checks until a revision is
	// served; "" when unknown.
	LastServed string
	// State, when not nil, records each newly served commit, for
	// LastServed after a restart.
	State *trust.State
	// Now returns the time for status and LoadedAt. Nil: time.Now.
	Now func() time.Time
}

// CommitSource is a Source whose revisions are git commits of a repository
// it can read. The reconciler checks their signatures and ancestry there
// (Options.Trust), and notices force-pushes.
type CommitSource interface {
	// Repository returns the repository that holds the commit of the
	// revision the last Fetch returned, or nil when that revision is not a
	// commit (a directory outside git). Only the reconciler's loop calls
	// it, after Fetch.
	Repository() *gitrepo.Repo
}

// Reconciler keeps a snapshot current with a source. Run runs its loop;
// every other method may be called from any goroutine and never waits for
// a reconcile, except ReconcileNow, which is meant to.
type Reconciler struct {
	src    source.Source
	loader *schema.Loader
	log    *slog.Logger
	m      *Metrics
	opts   Options

	served atomic.Pointer[Served]
	// swapped is closed, and replaced, each time served changes.
	swapped atomic.Pointer[chan struct{}]
	status  atomic.Pointer[Status]
	kick    chan struct{} // capacity 1: a reconcile is wanted
	run     atomic.Bool   // Run was called
	// watchEnded is the error that ended the source's watch; nil while it
	// runs.
	watchEnded atomic.Pointer[source.WatchProblem]

	mu      sync.Mutex
	waiters []chan error // requests for the next reconcile's outcome
	stopped bool         // the loop has ended

	// Owned by the loop goroutine.
	handled struct { // the last revision handled, served or not
		id, key string
		err     error // why it is not served; nil when it is
		// trust is the digest of the trusted keys that rejected it, when
		// its signature did: a change of the keys judges it again.
		trust string
	}
	servedCommit string // the commit served (or LastServed before the first)
	rebuild      bool   // build the next snapshot from scratch
	backoff      backoff
	// after and random are time.After and rand.Float64; tests replace them.
	after  func(time.Duration) <-chan time.Time
	random func() float64
}

// New returns a Reconciler for src. Run starts it.
func New(src source.Source, opts Options) *Reconciler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reconciler{
		src: src, loader: schema.NewLoader(), log: opts.Logger, m: opts.Metrics, opts: opts,
		kick: make(chan struct{}, 1), after: time.After, random: rand.Float64,
		servedCommit: opts.LastServed,
	}
	r.status.Store(&Status{Source: src.String()})
	swapped := make(chan struct{})
	r.swapped.Store(&swapped)
	return r
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

// ServedChanged returns a channel that is closed once a snapshot other than
// the one served when it was called is served. To wait for a change, get
// the channel first, then look at Snapshot or Served: a change between the
// two closes the channel.
func (r *Reconciler) ServedChanged() <-chan struct{} { return *r.swapped.Load() }

// Status returns the state published by the last reconcile, with the
// source's watch problem as it is now. It never waits, not even while a
// reconcile is in progress.
func (r *Reconciler) Status() Status {
	st := *r.status.Load()
	if h, ok := r.src.(source.WatchHealth); ok {
		st.WatchProblem = h.WatchProblem()
	}
	if st.WatchProblem == nil {
		st.WatchProblem = r.watchEnded.Load()
	}
	return st
}

// Reconcile asks the loop to fetch as soon as it can; it never blocks.
func (r *Reconciler) Reconcile() { r.TryReconcile() }

// TryReconcile asks the loop to fetch as soon as it can, like Reconcile,
// and reports whether this call queued the reconcile: false when one was
// queued already, so that this request is coalesced with it (at most one
// reconcile runs and one waits, whatever the number of requests).
func (r *Reconciler) TryReconcile() bool {
	select {
	case r.kick <- struct{}{}:
		return true
	default:
		return false
	}
}

// Request asks the loop to fetch as soon as it can and returns a channel
// that receives the outcome of a reconcile that starts after the request:
// nil when the source's revision is served (newly or already), else one of
// the typed errors of this package (for a revision handled before, the
// error it got then). After the loop has stopped, the channel receives
// ErrStopped.
func (r *Reconciler) Request() <-chan error {
	ch := make(chan error, 1)
	r.mu.Lock()
	if r.stopped {
		ch <- ErrStopped
	} else {
		r.waiters = append(r.waiters, ch)
	}
	r.mu.Unlock()
	r.Reconcile()
	return ch
}

// ReconcileNow asks the loop to fetch now and waits for that reconcile's
// outcome (see Request), or for ctx. It needs Run to be running.
func (r *Reconciler) ReconcileNow(ctx context.Context) error {
	select {
	case err := <-r.Request():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run reconciles once, then whenever the source reports a change, a
// request comes, the interval passes or, after a failure, the backoff delay
// passes, until ctx is done. It returns nil when ctx is done, after the
// source's watcher has stopped. Run may be called once.
func (r *Reconciler) Run(ctx context.Context) error {
	if !r.run.CompareAndSwap(false, true) {
		return errors.New("reconciler: Run called twice")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if w, ok := r.src.(source.Watcher); ok {
		wg.Go(func() {
			if err := w.Watch(ctx, r.Reconcile); err != nil {
				r.log.Error("watching the policy source failed; changes are picked up only at the interval and on request",
					"source", r.src.String(), "err", err)
				r.watchEnded.Store(&source.WatchProblem{At: r.opts.Now().UTC(), Message: err.Error()})
			}
		})
	}
	defer r.stop()
	for {
		r.mu.Lock()
		waiters := r.waiters
		r.waiters = nil
		r.mu.Unlock()

		err := r.reconcile(ctx)
		if ctx.Err() != nil {
			err = ErrStopped
		}
		for _, w := range waiters {
			w <- r.outcome(err)
		}
		if ctx.Err() != nil {
			return nil
		}

		var wake <-chan time.Time
		if d := r.delay(err); d > 0 {
			wake = r.after(d)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-wake:
		}
	}
}

// outcome is what a request is told about a reconcile that ended with err:
// for an unchanged revision, what was found when it was handled.
func (r *Reconciler) outcome(err error) error {
	if errors.Is(err, errUnchanged) {
		return r.handled.err
	}
	return err
}

// delay returns how long the loop waits, without a change or a request,
// before the next reconcile after one that ended with err; 0 for no limit.
func (r *Reconciler) delay(err error) time.Duration {
	if retries(err) {
		return r.backoff.next(r.random())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0
	}
	r.backoff.reset()
	if r.opts.Interval <= 0 {
		return 0
	}
	return jittered(r.opts.Interval, r.random())
}

// stop answers the pending requests once the loop has ended.
func (r *Reconciler) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for _, w := range r.waiters {
		w <- ErrStopped
	}
	r.waiters = nil
}
