package reconciler

import (
	"errors"
	"fmt"

	"github.com/charter-policy/charter/schema"
)

// InvalidError is a revision that does not validate (SPEC 3.1) or whose
// content cannot be read as policy. Wait for a new revision.
type InvalidError struct {
	Revision string // empty when the content could not be named
	Errors   schema.Errors
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("revision %s is invalid: %d errors, first: %v", e.Revision, len(e.Errors), first(e.Errors))
}

// Unwrap returns the errors, so that errors.As finds schema.Errors.
func (e *InvalidError) Unwrap() error { return e.Errors }

// RejectedError is a valid revision that may not be served: it breaks the
// change rules (SPEC 3.2) or lacks a good signature. Wait for a new revision.
type RejectedError struct {
	Revision string
	Errors   schema.Errors
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("revision %s is rejected: %d errors, first: %v", e.Revision, len(e.Errors), first(e.Errors))
}

// Unwrap returns the errors, so that errors.As finds schema.Errors.
func (e *RejectedError) Unwrap() error { return e.Errors }

// TransientError is a failed fetch. Retry with backoff.
type TransientError struct {
	Err error
}

func (e *TransientError) Error() string { return "fetch: " + e.Err.Error() }

// Unwrap returns the fetch error.
func (e *TransientError) Unwrap() error { return e.Err }

// InternalError is a valid revision whose snapshot could not be built: a
// fault of Charter, not of the revision. Retry with backoff, building the
// snapshot from scratch.
type InternalError struct {
	Revision string
	Err      error
}

func (e *InternalError) Error() string {
	return fmt.Sprintf("internal error serving revision %s: %v", e.Revision, e.Err)
}

// Unwrap returns the underlying error.
func (e *InternalError) Unwrap() error { return e.Err }

// errUnchanged stops a reconcile whose revision was handled already.
var errUnchanged = errors.New("revision unchanged")

// ErrStopped is what a request gets when the loop has stopped.
var ErrStopped = errors.New("reconciler stopped")

// resultOf returns the result label of a reconcile's error: ResultSuccess
// for nil, "" for no reconcile (unchanged, or stopped by its context).
func resultOf(err error) string {
	var (
		invalid   *InvalidError
		rejected  *RejectedError
		transient *TransientError
		internal  *InternalError
	)
	switch {
	case err == nil:
		return ResultSuccess
	case errors.As(err, &invalid):
		return ResultInvalid
	case errors.As(err, &rejected):
		return ResultRejected
	case errors.As(err, &transient):
		return ResultFetchError
	case errors.As(err, &internal):
		return ResultInternal
	}
	return ""
}

// retries reports whether a reconcile that failed with err is retried with
// backoff (rather than waiting for a new revision).
func retries(err error) bool {
	r := resultOf(err)
	return r == ResultFetchError || r == ResultInternal
}

func first(errs schema.Errors) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}
