// Package reconciler keeps a served snapshot current with a policy source.
// A Source says what revision it holds and hands over its policy files; the
// Reconciler loads, validates and diffs each new revision, applies the diff
// to the served go-memdb snapshot and swaps it in atomically, keeping the
// last good snapshot whenever a revision is rejected.
package reconciler
