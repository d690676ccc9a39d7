// Package match parses and compares the two hierarchical names of Charter:
// actions ("documents:read", SPEC 2.1) and resource URIs ("documents/d1",
// SPEC 2.2). Parsing normalizes a name once so that matching is a string
// comparison that does not allocate.
package match
