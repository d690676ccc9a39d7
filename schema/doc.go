// Package schema reads a Charter policy repository: the embedded CUE schema,
// the loader that evaluates each directory's CUE files and decodes JSON and
// YAML data files into plain Go types with source positions, and the
// cross-reference checks that the schema cannot express.
package schema
