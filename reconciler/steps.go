package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/trust"
	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// run is the state of one reconcile, filled in by its steps.
type run struct {
	base    *Served // served when the reconcile began; nil before the first
	fetched bool    // the fetch gave a revision (or content that has none)
	// stale is why the source could not be brought up to date when it
	// gave the revision it held before (source.StaleError); nil otherwise.
	stale error
	rev   source.Revision
	files fs.FS
	// relabel: the content equals base's under another ID; nothing is
	// loaded, the snapshot is base's with the new ID.
	relabel bool
	// commit is the revision's commit ("" when it is not one); forcePush,
	// when not empty, the served commit it does not descend from.
	commit, forcePush string
	// trust is the digest of the trusted keys a signature check used.
	trust  string
	loaded *schema.Loaded
	diff   *change.Diff
	snap   *engine.Snapshot
	served *Served // what swap published
}

// step is one stage of a reconcile. It returns nil to go on, or an error
// that stops the reconcile.
type step func(ctx context.Context, x *run) error

// reconcile runs the steps in order, stopping at the first error, and
// publishes the outcome. After a stale fetch it returns the fetch's
// failure, whatever became of the revision, so that the fetch is retried
// with backoff.
func (r *Reconciler) reconcile(ctx context.Context) error {
	x := &run{base: r.served.Load()}
	err := r.steps(ctx, x)
	r.publish(ctx, x, err)
	if x.stale != nil && !isContextErr(ctx, err) && !retries(err) {
		return &TransientError{Err: x.stale}
	}
	return err
}

// steps runs the steps of a reconcile in order, stopping at the first
// error.
func (r *Reconciler) steps(ctx context.Context, x *run) error {
	steps := []struct {
		phase string // the phase label of its duration; "" for untimed
		do    step
	}{
		{PhaseFetch, r.fetch},
		{"", r.verify},
		{PhaseLoad, r.load},
		{"", r.check}, // times its two phases, diff and validate
		{PhaseApply, r.build},
		{"", r.swap},
	}
	for _, s := range steps {
		start := time.Now()
		err := s.do(ctx, x)
		if s.phase != "" {
			r.observe(s.phase, time.Since(start))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) observe(phase string, d time.Duration) {
	if r.m != nil {
		r.m.duration.WithLabelValues(phase).Observe(d.Seconds())
	}
}

// isContextErr reports whether err is the end of ctx, not a failure.
func isContextErr(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// fetch asks the source for its revision and files. A revision handled
// before (same ID and content) ends the reconcile with errUnchanged. A
// stale revision (the source could not be brought up to date, and offers
// what it held before) goes on as fetched, the failure kept for publish.
func (r *Reconciler) fetch(ctx context.Context, x *run) error {
	rev, files, err := r.src.Fetch(ctx)
	var (
		content *source.ContentError
		stale   *source.StaleError
	)
	switch {
	case err == nil:
	case isContextErr(ctx, err):
		return err
	case errors.As(err, &stale) && files != nil:
		x.stale = stale.Err
	case errors.As(err, &content):
		// Unusable content is the revision's fault: handled like an invalid
		// one, keyed by the error (the content has no digest), under the
		// commit that holds it when the source names one. The error is about
		// a whole file: it is placed at the file's first line, as the loader
		// places the same refusal (charter validate).
		x.fetched = true
		x.rev = rev
		x.rev.Key = "content-error:" + err.Error()
		if r.handled.id == x.rev.ID && r.handled.key == x.rev.Key {
			return errUnchanged
		}
		return &InvalidError{Revision: rev.ID, Errors: schema.Errors{{Pos: schema.Pos{File: content.Path, Line: 1}, Message: content.Err.Error()}}}
	default:
		return &TransientError{Err: err}
	}
	x.fetched, x.rev, x.files = true, rev, files
	if rev.ID == r.handled.id && rev.Key == r.handled.key && !r.trustChanged() {
		return errUnchanged
	}
	x.relabel = x.base != nil && rev.Key == x.base.Revision.Key
	return nil
}

// verify checks the revision's commit against Options.Trust: signatures,
// and descent from the served commit. It finds a force-push even without
// Trust, for the log.
func (r *Reconciler) verify(ctx context.Context, x *run) error {
	policy := r.opts.Trust
	if policy == nil {
		policy = &trust.Policy{}
	}
	if x.rev.Signature.Status == source.SignatureBad {
		return r.reject(x, "the commit's signature is not good")
	}
	commit, dirty := commitOf(x.rev.ID)
	var repo *gitrepo.Repo
	if cs, ok := r.src.(CommitSource); ok && commit != "" {
		repo = cs.Repository()
	}
	switch {
	case repo == nil && policy.Keys != nil:
		return r.reject(x, fmt.Sprintf("revision %s is not a git commit: its signature cannot be verified (--trusted-keys, --trusted-ssh-signers)", x.rev.ID))
	case repo == nil && policy.NoRewind:
		return r.reject(x, fmt.Sprintf("revision %s is not a git commit: its descent from the served commit cannot be checked (--no-rewind)", x.rev.ID))
	case repo == nil:
		return nil
	case dirty && policy.Keys != nil:
		return r.reject(x, fmt.Sprintf("revision %s differs from its commit %s: only committed content carries a signature (--trusted-keys, --trusted-ssh-signers)", x.rev.ID, commit))
	case dirty && policy.NoRewind:
		return r.reject(x, fmt.Sprintf("revision %s differs from its commit %s: uncommitted content has no place in the history that --no-rewind follows", x.rev.ID, commit))
	}
	x.commit = commit
	if policy.Keys != nil {
		x.trust = policy.Keys.Digest()
	}
	v, err := policy.Check(ctx, repo, r.servedCommit, commit)
	var re *trust.RejectError
	switch {
	case err == nil:
	case errors.As(err, &re):
		return r.reject(x, re.Reason)
	case isContextErr(ctx, err):
		return err
	default:
		return &TransientError{Err: fmt.Errorf("verify commit %s: %w", commit, err)}
	}
	if policy.Keys != nil {
		x.rev.Signature = v.Signature
	}
	if v.ForcePush {
		x.forcePush = r.servedCommit
	}
	return nil
}

// reject returns the RejectedError of a revision that failed verification.
func (r *Reconciler) reject(x *run, reason string) error {
	return &RejectedError{Revision: x.rev.ID, Errors: schema.Errors{{Message: reason}}}
}

// commitOf returns the commit of a revision ID ("<commit>" or
// "<commit>+dirty.<hex>"), and whether it is dirty; "" when the ID is not a
// commit's.
func commitOf(id string) (commit string, dirty bool) {
	commit, _, dirty = strings.Cut(id, "+dirty")
	if !trust.IsCommitHash(commit) {
		return "", false
	}
	return commit, dirty
}

// load parses and validates the files (SPEC 3.1 without tests).
func (r *Reconciler) load(ctx context.Context, x *run) error {
	if x.relabel {
		return nil
	}
	r.log.Debug("loading revision", "revision", x.rev.ID, "source", r.src.String())
	loaded, err := r.loader.LoadResult(ctx, x.files)
	var errs schema.Errors
	switch {
	case err == nil:
		x.loaded = loaded
		return nil
	case isContextErr(ctx, err):
		return err
	case errors.As(err, &errs):
		return &InvalidError{Revision: x.rev.ID, Errors: errs}
	case errors.Is(err, schema.ErrNoPolicy):
		return &InvalidError{Revision: x.rev.ID, Errors: schema.Errors{{Message: err.Error()}}}
	}
	return &InternalError{Revision: x.rev.ID, Err: fmt.Errorf("load: %w", err)}
}

// check diffs the loaded policy against the served one and applies the
// change rules (SPEC 3.2 without --author).
func (r *Reconciler) check(_ context.Context, x *run) error {
	if x.relabel {
		x.diff = &change.Diff{}
		return nil
	}
	var base *schema.PolicySet
	if x.base != nil {
		base = x.base.Policy
	}
	start := time.Now()
	x.diff = change.FromLoad(base, x.loaded)
	r.observe(PhaseDiff, time.Since(start))
	start = time.Now()
	errs := change.Check(base, x.loaded.Set)
	r.observe(PhaseValidate, time.Since(start))
	if len(errs) > 0 {
		return &RejectedError{Revision: x.rev.ID, Errors: errs}
	}
	return nil
}

// build makes the new snapshot: the diff applied to the served one, or a
// full build the first time and after an internal error.
func (r *Reconciler) build(_ context.Context, x *run) error {
	var err error
	switch {
	case x.relabel && x.rev.ID == x.base.Revision.ID:
		x.snap = x.base.Snapshot // back to what is served: nothing to build
	case x.relabel:
		x.snap, err = x.base.Snapshot.Apply(x.diff, x.rev.ID)
	case x.base == nil || r.rebuild:
		x.snap, err = engine.Build(x.loaded.Set, x.rev.ID)
	default:
		x.snap, err = x.base.Snapshot.Apply(x.diff, x.rev.ID)
	}
	if err != nil {
		return &InternalError{Revision: x.rev.ID, Err: fmt.Errorf("build snapshot: %w", err)}
	}
	return nil
}

// swap publishes the new snapshot with one atomic store, then wakes those
// waiting on ServedChanged.
func (r *Reconciler) swap(_ context.Context, x *run) error {
	if x.snap == x.base.snapshot() {
		x.served = x.base
		return nil
	}
	policy := x.base.policy()
	if x.loaded != nil {
		policy = x.loaded.Set
	}
	x.served = &Served{Snapshot: x.snap, Policy: policy, Revision: x.rev, LoadedAt: r.opts.Now().UTC()}
	r.served.Store(x.served)
	next := make(chan struct{})
	close(*r.swapped.Swap(&next)) // after the store: a waiter woken sees the new snapshot
	return nil
}

func (s *Served) snapshot() *engine.Snapshot {
	if s == nil {
		return nil
	}
	return s.Snapshot
}

func (s *Served) policy() *schema.PolicySet {
	if s == nil {
		return nil
	}
	return s.Policy
}

// publish is the one place a reconcile's outcome becomes visible: the
// status, the metrics and the log.
func (r *Reconciler) publish(ctx context.Context, x *run, err error) {
	if isContextErr(ctx, err) {
		return // stopped, not failed
	}
	now := r.opts.Now().UTC()
	st := *r.status.Load()
	st.LastFetch = now
	if b, ok := r.src.(source.Brancher); ok {
		st.Branch = b.Branch()
	}
	if x.fetched {
		if x.stale == nil {
			st.FetchError = nil
			if r.m != nil {
				r.m.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
			}
		}
		if x.rev.ID != "" {
			rev := x.rev
			st.Fetched = &rev
		}
	}
	if x.stale != nil {
		st.FetchError = r.fetchFailed(st.FetchError, x.stale, now, x.base)
	}
	result := resultOf(err)
	var (
		invalid   *InvalidError
		rejected  *RejectedError
		transient *TransientError
		internal  *InternalError
	)
	switch {
	case errors.Is(err, errUnchanged):
		r.log.Debug("revision unchanged", "revision", x.rev.ID, "source", st.Source)
	case err == nil:
		st.Served, st.Rejected = x.served, nil
		r.handled.id, r.handled.key, r.handled.err, r.handled.trust = x.rev.ID, x.rev.Key, nil, ""
		r.rebuild = false
		if x.forcePush != "" {
			r.log.Warn("force-push: the new revision does not descend from the served commit; serving it", "revision", x.rev.ID,
				"previous", x.forcePush, "source", st.Source)
		}
		r.audit(x)
		r.observeServed(x.served, x.base)
		r.recordServed(x.commit, now)
	case errors.As(err, &invalid):
		r.handled.id, r.handled.key, r.handled.err, r.handled.trust = x.rev.ID, x.rev.Key, err, ""
		st.Rejected = &Rejection{Revision: invalid.Revision, Result: result, Errors: invalid.Errors, At: now}
		r.logRejection(st.Rejected)
	case errors.As(err, &rejected):
		r.handled.id, r.handled.key, r.handled.err, r.handled.trust = x.rev.ID, x.rev.Key, err, x.trust
		st.Rejected = &Rejection{Revision: rejected.Revision, Result: result, Errors: rejected.Errors, At: now}
		r.logRejection(st.Rejected)
	case errors.As(err, &transient):
		st.FetchError = r.fetchFailed(st.FetchError, transient.Err, now, x.base)
	case errors.As(err, &internal):
		r.rebuild = true // not handled: retried with backoff, from scratch
		st.Rejected = &Rejection{Revision: internal.Revision, Result: result, Errors: schema.Errors{{Message: internal.Err.Error()}}, At: now}
		r.log.Error("internal error: the revision could not be served; retrying with backoff", "revision", internal.Revision,
			"err", internal.Err, "serving", x.base.revisionID())
	default:
		r.log.Error("reconcile failed", "err", err) // a step returned an untyped error: a bug
	}
	if r.m != nil && result != "" {
		r.m.reconciles.WithLabelValues(result).Inc()
	}
	if r.m != nil && x.stale != nil {
		r.m.reconciles.WithLabelValues(ResultFetchError).Inc()
	}
	r.status.Store(&st)
}

// fetchFailed logs a failed fetch and returns the status's FetchError
// after it, prev being the one before.
func (r *Reconciler) fetchFailed(prev *FetchError, err error, now time.Time, base *Served) *FetchError {
	failures := 1
	if prev != nil {
		failures = prev.Failures + 1
	}
	serving := base.revisionID()
	if s := r.served.Load(); s != nil {
		serving = s.Revision.ID
	}
	r.log.Warn("fetching the policy source failed; retrying with backoff", "source", r.src.String(), "err", err,
		"failures", failures, "serving", serving)
	return &FetchError{At: now, Message: err.Error(), Failures: failures}
}

// trustChanged reports whether the handled revision was rejected by the
// trusted keys and the keys have changed since: it is judged again.
func (r *Reconciler) trustChanged() bool {
	return r.handled.trust != "" && r.opts.Trust != nil && r.opts.Trust.Keys != nil && r.opts.Trust.Keys.Digest() != r.handled.trust
}

// recordServed remembers the served commit ("" for a revision that is not
// one), and records it in the state file when it changed.
func (r *Reconciler) recordServed(commit string, now time.Time) {
	if commit == "" || commit == r.servedCommit {
		return
	}
	r.servedCommit = commit
	if r.opts.State == nil {
		return
	}
	if err := r.opts.State.Store(commit, now); err != nil {
		level := slog.LevelWarn
		if t := r.opts.Trust; t != nil && (t.NoRewind || t.Mode == trust.All) {
			level = slog.LevelError // the check that needs it is weaker after a restart
		}
		r.log.Log(context.Background(), level, "recording the served commit failed; after a restart it is not known", "commit", commit,
			"file", r.opts.State.Path(), "err", err)
	}
}

func (s *Served) revisionID() string {
	if s == nil {
		return ""
	}
	return s.Revision.ID
}

func (r *Reconciler) logRejection(rej *Rejection) {
	r.log.Warn("revision not served", "revision", rej.Revision, "result", rej.Result, "errors", len(rej.Errors),
		"first", first(rej.Errors), "serving", r.served.Load().revisionID())
}

// audit logs the one structured line each served revision gets.
func (r *Reconciler) audit(x *run) {
	if x.served == x.base {
		r.log.Info("revision served again", "revision", x.rev.ID, "source", r.src.String())
		return
	}
	d := x.diff
	added, removed, changed := 0, 0, 0
	count := func(a, rm, ch int) { added, removed, changed = added+a, removed+rm, changed+ch }
	count(len(d.Roles.Added), len(d.Roles.Removed), len(d.Roles.Changed))
	count(len(d.Groups.Added), len(d.Groups.Removed), len(d.Groups.Changed))
	count(len(d.Records.Added), len(d.Records.Removed), len(d.Records.Changed))
	count(len(d.ResourceServers.Added), len(d.ResourceServers.Removed), len(d.ResourceServers.Changed))
	r.log.Info("revision served", "revision", x.rev.ID, "previous", x.base.revisionID(), "author", x.rev.Author.Name,
		"subject", x.rev.Subject, "added", added, "removed", removed, "changed", changed, "source", r.src.String())
}

func (r *Reconciler) observeServed(s, prev *Served) {
	if r.m == nil || s == prev {
		return
	}
	if prev != nil && prev.Revision.ID != s.Revision.ID {
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
