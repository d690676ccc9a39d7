package reconciler

import (
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema"
)

// Served is the snapshot being served and where it came from. It is never
// changed once published.
type Served struct {
	Snapshot *engine.Snapshot
	Policy   *schema.PolicySet
	Revision source.Revision
	// LoadedAt is when the snapshot began to be served.
	LoadedAt time.Time
}

// Status is the state of the reconciler as of its last reconcile, kept as
// separate facts (what is served, what was fetched, what failed). A Status
// is never changed once published; Status returns it without waiting. What
// its pointers reach is shared with every other reader: read only.
type Status struct {
	// Source describes the policy source (source.Source.String).
	Source string
	// Branch is the branch a git source follows (source.Brancher); empty
	// for other sources, and before it is known.
	Branch string
	// Served is what is served; nil before the first snapshot.
	Served *Served
	// Fetched is the newest revision fetched, served or not; nil before the
	// first successful fetch.
	Fetched *source.Revision
	// LastFetch is when the last fetch ended, successful or not; zero
	// before the first.
	LastFetch time.Time
	// FetchError is the last fetch's failure; nil once a fetch succeeds,
	// whether or not its content changed.
	FetchError *FetchError
	// Rejected is the newest revision seen that could not be served; nil
	// once a newer revision is served.
	Rejected *Rejection
	// WatchProblem is a watch of the source that could not be set up (again):
	// changes are then seen only at the interval and on request. It is read
	// from the source when Status is called (source.WatchHealth), or is the
	// error that ended the source's watch; nil while the watch is whole or
	// the source is not watched.
	WatchProblem *source.WatchProblem
}

// FetchError is a failed fetch.
type FetchError struct {
	At      time.Time
	Message string
	// Failures counts the failed fetches in a row.
	Failures int
}

// Rejection is a revision that was not served, with every reason.
type Rejection struct {
	// Revision is the revision's ID; empty when its content could not be
	// named (an unreadable policy root).
	Revision string
	// Result is ResultInvalid, ResultRejected or ResultInternal.
	Result string
	Errors schema.Errors
	At     time.Time
}
