package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"regexp"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/schema"
)

func runTest(ctx context.Context, env *cliEnv, args []string) (int, error) {
	fs := newFlagSet("test", "[DIR] [--run REGEX]", env.stderr)
	opts := testFlags(fs)
	pos, err := parseFlags(fs, args, env.getenv)
	if err != nil {
		return exitFailure, err
	}
	dir, err := optionalDir(pos)
	if err != nil {
		return exitFailure, err
	}
	var filter *regexp.Regexp
	if opts.run != "" {
		if filter, err = regexp.Compile(opts.run); err != nil {
			return exitFailure, fmt.Errorf("bad --run: %w", err)
		}
	}
	p, err := loadDir(ctx, dir, opts.load)
	var errs schema.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(env.stdout, e.Error())
		}
		fmt.Fprintf(env.stdout, "%s: invalid, %d %s; no test ran\n", dir, len(errs), plural(len(errs), "error", "errors"))
		return exitFailed, nil
	}
	if err != nil {
		return exitFailure, err
	}
	rep, err := engine.RunTests(p, filter, env.now())
	if err != nil {
		return exitFailure, err
	}
	if opts.format.String() == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(env.stdout)
	}
	if err != nil {
		return exitFailure, err
	}
	if !rep.OK() {
		return exitFailed, nil
	}
	return exitOK, nil
}

// testOptions are the flags of charter test.
type testOptions struct {
	run    string
	format *choiceValue
	load   *loadOptions
}

// testFlags defines the flags of charter test on fs.
func testFlags(fs *flag.FlagSet) *testOptions {
	o := &testOptions{format: oneOf("text", "text", "json")}
	fs.StringVar(&o.run, "run", "", "run only the tests whose names match `REGEX`")
	fs.Var(o.format, "format", "output format: text or json")
	o.load = loadFlags(fs)
	return o
}
