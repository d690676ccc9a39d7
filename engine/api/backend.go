package api

import (
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
	// Reconcile asks for a fetch now (POST /v1/reconcile); it returns at once.
	Reconcile()
}

// Status is the body of GET /v1/status. Every field is always present:
// commitTime and loadedAt are null while unknown (outside git, or before
// the first snapshot).
type Status struct {
	Revision   string
	CommitTime time.Time
	Author     string
	LoadedAt   time.Time
	Source     string
	Counts     map[string]int
	// Error describes the newest revision seen that could not be served;
	// nil once a newer revision is served.
	Error *RevisionError
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
		Revision   string         `json:"revision"`
		CommitTime *time.Time     `json:"commitTime"`
		Author     string         `json:"author"`
		LoadedAt   *time.Time     `json:"loadedAt"`
		Source     string         `json:"source"`
		Counts     map[string]int `json:"counts"`
		Error      *RevisionError `json:"error"`
	}{s.Revision, orNull(s.CommitTime), s.Author, orNull(s.LoadedAt), s.Source, counts, s.Error})
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
