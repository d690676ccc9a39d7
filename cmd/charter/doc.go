// Command charter validates, tests, diffs and serves Charter policy
// repositories. Each subcommand lives in its own file; main.go dispatches on
// the first argument and maps errors to the exit codes of SPEC section 4.
package main
