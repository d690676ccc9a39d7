package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/charter-policy/charter/engine"
)

// Backend is what the API serves from: the current snapshot and the state of
// the process that keeps it current (the reconciler, wired in by charter serve).
type Backend interface {
	// Snapshot returns the served snapshot, or nil before the first one is loaded.
	// It never blocks.
	Snapshot() *engine.Snapshot
	// Status returns what GET /v1/status reports.
	Status() Status
	// Reconcile asks for a fetch now (POST /v1/reconcile); it returns at
	// once. It reports false when a reconcile was queued already and this
	// request is coalesced with it.
	Reconcile() bool
	// ReconcileWait asks for a fetch now and waits for the outcome of a
	// reconcile that starts after the call (POST /v1/reconcile?wait=true):
	// nil when the source's revision is served, newly or already, else why
	// it is not. It returns ctx's error when ctx ends first.
	ReconcileWait(ctx context.Context) error
	// SnapshotChanged returns a channel that is closed once a snapshot
	// other than the one served when it was called is served. A waiter gets
	// the channel first, then looks at Snapshot, so that it misses no
	// change. It never blocks.
	SnapshotChanged() <-chan struct{}
}

// Status is the body of GET /v1/status. Every field is always present:
// times, and the fields of SPEC 6.1 (branch, fetchedRevision,
// lastFetchError, signature and its signer), are null while unknown
// (outside git, before the first snapshot or fetch, or without a failure).
type Status struct {
	Revision   string
	CommitTime time.Time
	Author     string
	// Committer and Subject (the first line of the message) are those of
	// the served commit; empty outside git.
	Committer string
	Subject   string
	LoadedAt  time.Time
	Source    string
	// Branch is the branch the source follows; empty when it follows none
	// (a directory).
	Branch string
	// FetchedRevision is the newest revision fetched, served or not; empty
	// before the first successful fetch.
	FetchedRevision string
	// LastFetch is when the last fetch ended, successful or not; zero
	// before the first.
	LastFetch time.Time
	// LastFetchError is why the last fetch failed; empty once a fetch
	// succeeds.
	LastFetchError string
	// Signature is the served revision's; nil before the first snapshot.
	Signature *Signature
	Counts    map[string]int
	// Error describes the newest revision seen that could not be served;
	// nil once a newer revision is served.
	Error *RevisionError
	// WatchError is a watch of the source that could not be set up again
	// (changes are then seen only at the reconcile interval); nil while the
	// watch is whole or the source is not watched. It is not a revision's
	// error: the served revision may well be the newest.
	WatchError *WatchError
}

// WatchError is a watch of the policy source that could not be set up
// again: "watchError" in GET /v1/status.
type WatchError struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"` // when setting it up last failed
}

// Signature is the state of a served commit's signature (SPEC 6.1).
type Signature struct {
	// Status is "good", "bad" or "none".
	Status string
	// Signer names the trusted key that made a good signature; empty
	// otherwise.
	Signer string
}

// MarshalJSON writes the signature with a null signer when there is none.
func (s Signature) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Status string  `json:"status"`
		Signer *string `json:"signer"`
	}{s.Status, stringOrNull(s.Signer)})
}

func stringOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MarshalJSON writes the status with null for unknown times.
func (s Status) MarshalJSON() ([]byte, error) {
	orNull := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	counts := s.Counts
	if counts == nil {
		counts = map[string]int{}
	}
	return json.Marshal(struct {
		Revision        string         `json:"revision"`
		CommitTime      *time.Time     `json:"commitTime"`
		Author          string         `json:"author"`
		Committer       string         `json:"committer"`
		Subject         string         `json:"subject"`
		LoadedAt        *time.Time     `json:"loadedAt"`
		Source          string         `json:"source"`
		Branch          *string        `json:"branch"`
		FetchedRevision *string        `json:"fetchedRevision"`
		LastFetch       *time.Time     `json:"lastFetch"`
		LastFetchError  *string        `json:"lastFetchError"`
		Signature       *Signature     `json:"signature"`
		Counts          map[string]int `json:"counts"`
		Error           *RevisionError `json:"error"`
		WatchError      *WatchError    `json:"watchError"`
	}{
		s.Revision, orNull(s.CommitTime), s.Author, s.Committer, s.Subject, orNull(s.LoadedAt), s.Source,
		stringOrNull(s.Branch), stringOrNull(s.FetchedRevision), orNull(s.LastFetch), stringOrNull(s.LastFetchError),
		s.Signature, counts, s.Error, s.WatchError,
	})
}

// RevisionError is a revision that was rejected, with every reason.
type RevisionError struct {
	Revision string            `json:"revision"`
	Errors   []PositionedError `json:"errors"`
}

// PositionedError is one reason, at "file:line:col" relative to the policy root
// (empty when it has no position, as for a failed fetch).
type PositionedError struct {
	Position string `json:"position"`
	Message  string `json:"message"`
}
