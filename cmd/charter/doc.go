// Command charter validates, tests, checks and serves Charter policy
// repositories. Each subcommand lives in its own file; main.go dispatches on
// the first argument and maps errors to the exit codes (0 success or
// allowed, 1 invalid or denied, 2 usage or runtime error). The command is
// thin: flags and wiring over the reconciler, the engine and the schema.
package main
