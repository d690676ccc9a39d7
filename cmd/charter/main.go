package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/charter-policy/charter/schema/cueproc"

	// The IANA time zone database, embedded (about 450 kB) so that time
	// policies ("timezone": "Europe/Berlin") work in an image without
	// /usr/share/zoneinfo, such as scratch or distroless/static. The
	// system's database is still preferred when there is one.
	_ "time/tzdata"
)

// Exit codes (SPEC section 4).
const (
	exitOK      = 0 // success, allowed
	exitFailed  = 1 // invalid, denied, violations
	exitFailure = 2 // usage or runtime error
)

// command is one subcommand. run returns the exit code; errors that end a
// command early are reported by the dispatcher as exit 2. flags defines the
// command's flags on a flag set (nil: it has none) with the same function
// run uses; TestCLIReferenceFlags checks cmd/charter/README.md against it.
// A hidden command is not listed nor documented: the binary runs it itself.
type command struct {
	summary string
	flags   func(fs *flag.FlagSet)
	run     func(ctx context.Context, env *cliEnv, args []string) (int, error)
	hidden  bool
}

// cliEnv is what a subcommand may touch of the process: its streams and environment.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time // the clock of questions that give no time
}

func commands() map[string]command {
	return map[string]command{
		"validate": {summary: "check a policy repository against the schema and run its tests", flags: flagsOf(validateFlags), run: runValidate},
		"check":    {summary: "answer one authorization question, optionally with its trace", flags: flagsOf(checkFlags), run: runCheck},
		"test":     {summary: "run the policy's tests", flags: flagsOf(testFlags), run: runTest},
		"schema":   {summary: "print the embedded CUE schema", run: runSchema},
		"serve":    {summary: "run the sidecar: answer checks over HTTP from a watched policy source", flags: flagsOf(serveFlags), run: runServe},
		"version":  {summary: "print the version", run: runVersion},
		// The child process that evaluates one directory's CUE files
		// under the limits of the command that started it.
		cueproc.Subcommand: {summary: "evaluate CUE for a parent charter process", run: runCUEChild, hidden: true},
	}
}

// runCUEChild is the child process of a cueproc.Runner.
func runCUEChild(ctx context.Context, env *cliEnv, args []string) (int, error) {
	return cueproc.Child(ctx, args, env.stdin, env.stdout, env.stderr), nil
}

// flagsOf adapts a command's flag-defining function, which returns where the
// values land, to the command table.
func flagsOf[T any](define func(fs *flag.FlagSet) T) func(fs *flag.FlagSet) {
	return func(fs *flag.FlagSet) { define(fs) }
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the process exit code.
func run(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr, cmds)
		if len(args) == 0 {
			return exitFailure
		}
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "charter: unknown command %q (run 'charter help' for the list)\n", args[0])
		return exitFailure
	}
	code, err := cmd.run(ctx, env, args[1:])
	if errors.Is(err, errHelp) {
		return exitOK
	}
	if err != nil {
		if !errors.Is(err, errUsageShown) {
			fmt.Fprintf(env.stderr, "charter %s: %v\n", args[0], err)
		}
		return exitFailure
	}
	return code
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "Usage: charter COMMAND [flags] [args]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for name, cmd := range cmds {
		if !cmd.hidden {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-9s %s\n", name, cmds[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'charter COMMAND -h' for a command's flags. Flags also read CHARTER_<FLAG> variables.")
}
