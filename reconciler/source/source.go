// Package source defines where policies come from: the Source contract that
// every policy source implements, the Revision it reports, the optional
// capabilities a source may have (Watcher, WatchHealth, Ancestry,
// Brancher), and the helpers that sources share to collect a policy root's
// files and name their content (Files, Digest, Rescan).
//
// The sources themselves live in subpackages (dir, embedded, git); each one runs
// the conformance suite of package sourcetest.
package source

import (
	"context"
	"io/fs"
	"time"
)

// Source is where policies come from. Only the reconciler's loop calls
// Fetch, one call at a time; String may be called from any goroutine.
type Source interface {
	// Fetch brings the source up to date and returns its revision and the
	// policy root's files, exactly those schema.IsPolicyFile selects. The
	// files never change afterwards. It honours ctx. A *ContentError says
	// that the content itself is unusable (fetching again will not help);
	// any other error is taken as transient. A *ContentError may come with
	// the revision that holds the content (its ID, without files). A
	// *StaleError comes with the revision and files held from before.
	Fetch(ctx context.Context) (Revision, fs.FS, error)
	// String describes the source for status and logs, never with
	// credentials.
	String() string
}

// Watcher is a Source that notices changes by itself.
type Watcher interface {
	// Watch calls changed after each change to the source (debounced) until
	// ctx is done, then returns nil. An error means the source cannot be
	// watched; it is then only fetched on request and at the interval.
	// changed must not block.
	Watch(ctx context.Context, changed func()) error
}

// Brancher is a Source that follows a branch of a remote repository.
type Brancher interface {
	// Branch returns the short name of the branch followed ("main"), or ""
	// before it is known (the remote's HEAD, not reached yet). It may be
	// called from any goroutine.
	Branch() string
}

// StaleError is a failed fetch of a source that still holds a revision it
// fetched before: Fetch returns it together with that revision and its
// files (a git source whose remote cannot be reached serving its cached
// clone, after a restart). The revision may be served; the fetch failed and
// is retried like any other failed fetch.
type StaleError struct {
	Err error // why the source could not be brought up to date
}

func (e *StaleError) Error() string { return e.Err.Error() + " (the cached revision is kept)" }

// Unwrap returns why the fetch failed.
func (e *StaleError) Unwrap() error { return e.Err }

// WatchHealth is a Watcher that tells whether its watch is whole.
type WatchHealth interface {
	// WatchProblem returns the problem of a watch that could not be set up
	// again, the latest failure of it, until the watch is whole again;
	// nil while it is whole. Changes are then seen only at the interval.
	// It may be called from any goroutine.
	WatchProblem() *WatchProblem
}

// WatchProblem is a watch that could not be set up again. It is never
// changed once returned.
type WatchProblem struct {
	// At is when setting the watch up last failed.
	At time.Time
	// Message says what could not be watched, and why; never file content.
	Message string
}

// Ancestry is a Source whose revisions have a history, for the
// Charter-Min-Revision header.
type Ancestry interface {
	// Includes reports whether the served revision is min or descends from
	// it. A min the source does not know (not fetched yet, or no commit at
	// all) is false without an error; an error means the history could not
	// be read. It may be called from any goroutine.
	Includes(ctx context.Context, served, min string) (bool, error)
}

// Revision identifies the content a source holds.
type Revision struct {
	// ID is what users see (Charter-Revision, status, logs): a commit hash;
	// "<commit>+dirty.<12 hex of Key>" for a git work tree that differs
	// from its HEAD; "sha256:<16 hex of Key>" for content outside git.
	ID string
	// Key is a digest of the content ("sha256:<64 hex>"), usable as an
	// ETag: the same content has the same Key, changed content a new one.
	// Two revisions with equal Keys hold the same policy even when their IDs
	// differ (a commit of what was already served as "+dirty").
	Key string
	// Subject is the first line of the commit message; empty outside git.
	Subject string
	// Author and Committer of the commit; zero outside git.
	Author    Person
	Committer Person
	// CommitTime is the committer's time; zero outside git.
	CommitTime time.Time
	// Parents are the commit's parent hashes, the first parent first.
	Parents []string
	// Signature is the state of the commit's signature.
	Signature Signature
}

// Person is a commit's author or committer.
type Person struct {
	Name  string
	Email string
}

// SignatureStatus is the outcome of checking a commit's signature.
type SignatureStatus string

// Values of SignatureStatus (SPEC 6.1).
const (
	// SignatureGood: signed by a trusted key.
	SignatureGood SignatureStatus = "good"
	// SignatureBad: signed, but not by a trusted key, or the signature does
	// not verify.
	SignatureBad SignatureStatus = "bad"
	// SignatureNone: not signed, not a commit, or the source checks no
	// signatures (it has no trusted keys).
	SignatureNone SignatureStatus = "none"
)

// Signature is the signature status of a revision and who signed it.
type Signature struct {
	Status SignatureStatus
	// Signer names the trusted key that made a good signature.
	Signer string
}
