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
// Enumerations, what the questions above ask one at a time, each at the
// cost of its answer, not of the policy (the base of change impact, the
// history, the console and the reverse lookups):
//   - Grants: the statements that apply to a user (directly or through its
//     groups) or to a group;
//   - RoleHolders: the subjects a role is given to, with where;
//   - StatementsCovering and StatementsBelow: the statements whose resource
//     pattern covers a resource, or lies below it;
//   - Users: who has access to a resource (allowed an action, holding a
//     role, or holding any), with how, one page at a time, complete across
//     both layers.
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
//	enumerate.go    grants of a subject, holders of a role, statements by resource
//	who.go          who has access to a resource, and its cursors
//	trace.go        decision traces
//	policytests.go  a policy's tests run against a snapshot
//	snapshot.go     the Snapshot: Build, Apply and the tables derived after a commit
//	plan.go         the rows a diff writes, planned before the write transaction
//	compile.go      roles and resource servers compiled into rows
//	rows.go         the row types of the tables
//	keys.go         the key layout of the tables and reusable key buffers
//	chunks.go       the statement indexes: sorted entries in chunks of rows
//	memdb_schema.go the table and index names and their memdb schema
package engine
