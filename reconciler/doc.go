// Package reconciler keeps a served policy snapshot current with a policy
// source (SPEC section 6).
//
// One goroutine, Run's loop, reconciles; nothing else does. A reconcile is a
// list of ordered steps of one type, each a function of a per-reconcile
// state (run), run in order and stopped at the first error:
//
//	fetch  → the source's revision and files (source.Source); a revision
//	         already handled (same ID and content Key) stops here, no work
//	verify → the commit against Options.Trust (package trust): its
//	         signature, and those of the commits below it, by trusted keys;
//	         its descent from the served commit (a force-push is logged,
//	         or rejected under NoRewind)
//	load   → parse and validate the files (SPEC 3.1, without tests)
//	check  → diff against the served policy and apply the change rules (3.2)
//	build  → apply the diff to the served snapshot (a full build the first
//	         time, and after an internal error)
//	swap   → publish the new snapshot with one atomic pointer store
//
// One deferred block per reconcile publishes the outcome: a new immutable
// Status (read lock-free by Status, which never waits for a reconcile), the
// metrics of SPEC section 7, and one log line. A revision whose content
// equals the served one under a new ID (a commit of what was served as
// "+dirty") is relabelled without loading.
//
// Errors carry intent and are told apart with errors.As:
//
//   - *InvalidError: the revision does not validate, or its content is
//     unusable (a symbolic link out of the root, a file too large). The
//     served snapshot stays; the revision is not tried again until the
//     source's revision changes. Result label "invalid".
//   - *RejectedError: the revision validates but may not be served: the
//     change rules, its signature, or its ancestry. Handled like an invalid
//     one, except that a revision rejected by the trusted keys is judged
//     again when the keys' files change. Result label "rejected".
//   - *TransientError: the source could not be fetched. Retried with
//     exponential backoff (1 s doubling to 5 minutes, jittered, reset by a
//     successful fetch). Result label "fetch_error". A source that could
//     not be brought up to date but offers the revision it held before
//     (source.StaleError: a git remote down at a restart) has that revision
//     reconciled as usual, and the failed fetch reported and retried the
//     same way.
//   - *InternalError: the snapshot could not be built from a valid
//     revision, a fault of Charter rather than of the revision. It is
//     retried with the same backoff, and the retry builds the snapshot from
//     scratch instead of applying a diff, so a fault in the incremental path
//     cannot wedge the sidecar. Result label "internal" (not in SPEC 7's
//     list; it keeps a bug from being counted as a rejected revision).
//
// Between reconciles the loop waits for a change reported by the source
// (source.Watcher), a request (Reconcile, Request, ReconcileNow), the
// jittered interval after a success, or the backoff delay after a failure.
// A request or a reported change does not wait for the backoff. Each swap
// of the served snapshot closes the channel ServedChanged returned before
// it, so that a caller can wait for a new snapshot without polling.
//
// Each newly served commit is recorded in Options.State, so that after a
// restart the checks of Options.Trust compare a new tip with the commit
// served before it (Options.LastServed).
//
// Data flows one way: cmd → reconciler → engine → schema. The reconciler
// knows nothing of the HTTP API; charter serve adapts Status for it.
package reconciler
