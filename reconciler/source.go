package reconciler

import (
	"context"
	"io/fs"
	"time"
)

// Revision identifies the content a source holds.
type Revision struct {
	// ID is what users see: a commit hash, a commit hash with "+dirty", or
	// "sha256:<hash>" of the content outside git.
	ID string
	// Key changes whenever the content does, even when ID does not (two
	// successive uncommitted edits are both "<hash>+dirty").
	Key        string
	CommitTime time.Time // zero outside git
	Author     string    // commit author, empty outside git
}

// Source is where policies come from.
type Source interface {
	// Fetch brings the source up to date and returns its revision and the
	// policy root's files. The files must not change afterwards.
	Fetch(ctx context.Context) (Revision, fs.FS, error)
	// String describes the source for status and logs, without credentials.
	String() string
}

// Watcher is a Source that notices changes by itself; Watch calls changed
// (debounced) after each change until ctx is done.
type Watcher interface {
	Watch(ctx context.Context, changed func()) error
}
