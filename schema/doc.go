// Package schema is the policy language of Charter: the Go model of a
// policy (PolicySet and its entities, each with the position it was
// declared at), the embedded CUE schema (charter.cue) that defines it, and
// the Loader that reads a policy root into it.
//
// Loading follows SPEC section 1: IsPolicyFile and SkipDir decide which
// files are policy, ReadPolicyFile which of them may be read (regular files,
// links inside the root, a size bound); the CUE files of each directory are evaluated as one
// instance unified with #Charter, and each JSON or YAML data file is
// decoded on its own by a Go validator whose field tables are derived from
// the same compiled schema. Validation follows SPEC section 3.1: the
// schema, then the checks it cannot express (Check: IDs, references,
// cycles, URIs and actions, statement subjects), every error at once with
// its file:line:col and field path (Errors). Running a policy's tests
// belongs to the engine.
//
// A Loader evaluates CUE in this process, or, given a CUERunner, elsewhere:
// it sends each directory's files in a small binary format and decodes the
// evaluated tree it gets back (EvalCUERequest is the other side).
//
// Subpackages: match parses and compares actions and resource URIs (SPEC
// 2.1, 2.2); change computes the structural diff between two policy sets
// and applies the change rules of SPEC 3.2; quote cuts the values that
// error messages show (SPEC 1); cueproc runs CUE evaluation in child
// processes under a memory limit and a deadline; policygen writes
// generated repositories for benchmarks. README.md is the language
// reference for users.
package schema
