// Package engine answers Charter's authorization questions (SPEC section 2)
// from an immutable in-memory snapshot of a validated policy.
//
// A Snapshot is a hashicorp/go-memdb database built once from a
// schema.Policy, or derived from the previous Snapshot by applying a
// schema.Diff in one write transaction. It is never changed afterwards,
// carries the revision it was built from, and is safe for any number of
// concurrent readers without locks. Objects it returns are read-only.
//
// Questions:
//   - Check: may user U do action A on resource R (both layers, 2.4 and 2.6)?
//   - Roles and Permissions: what U holds on R through the record layer (2.4);
//   - Assignable: may U assign role X on R to others (2.5)?
//   - Resources: which resources under a collection U may act on;
//   - Explain: any question with its decision trace.
//
// RunTests runs a policy's tests against a snapshot built from it.
package engine
