// Package engine answers Charter's authorization questions (SPEC section 2)
// from an immutable in-memory snapshot of a validated policy.
//
// A Snapshot is a hashicorp/go-memdb database built once from a
// schema.PolicySet, or derived from the previous Snapshot by applying a
// change.Diff in one write transaction. It is never changed afterwards,
// carries the revision it was built from, and is safe for any number of
// concurrent readers without locks. Objects it returns are read-only.
//
// Questions:
//   - Check: may user U do action A on resource R (both layers, 2.4 and 2.6)?
//   - Roles and Permissions: what U holds on R through the record layer (2.4);
//   - Assignable: may U assign role X on R to others (2.5)?
//   - Resources: which resources at or below a collection U may act on,
//     one bounded page at a time;
//   - Explain: any question with its decision trace.
//
// RunTests runs a policy's tests against a snapshot built from it.
//
// The files, by job:
//
//	question.go     questions, decisions and their errors; Check, Decide, Explain
//	eval.go         the state of answering one question; the choice of layer
//	records.go      the record layer (2.3 to 2.5): grants walked, roles and entries held
//	servers.go      the resource-server layer (2.6)
//	listing.go      the resource listing
//	trace.go        decision traces
//	policytests.go  a policy's tests run against a snapshot
//	snapshot.go     the Snapshot: Build, Apply and the tables derived after a commit
//	plan.go         the rows a diff writes, planned before the write transaction
//	compile.go      roles and resource servers compiled into rows
//	rows.go         the row types of the tables
//	keys.go         the key layout of the tables and reusable key buffers
//	memdb_schema.go the table and index names and their memdb schema
package engine
