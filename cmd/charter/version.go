package main

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/charter-policy/charter/schema"
)

func runSchema(_ context.Context, env *cliEnv, args []string) (int, error) {
	fs := newFlagSet("schema", "", env.stderr)
	if _, err := parseFlags(fs, args, env.getenv); err != nil {
		return exitFailure, err
	}
	fmt.Fprint(env.stdout, schema.CUE())
	return exitOK, nil
}

func runVersion(_ context.Context, env *cliEnv, args []string) (int, error) {
	fs := newFlagSet("version", "", env.stderr)
	if _, err := parseFlags(fs, args, env.getenv); err != nil {
		return exitFailure, err
	}
	version := "(devel)"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	fmt.Fprintf(env.stdout, "charter %s\n", version)
	return exitOK, nil
}
