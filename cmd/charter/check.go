package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/schema"
)

// localRevision is the revision reported for decisions made from a policy
// directory read by the CLI rather than from a commit.
const localRevision = "worktree"

func runCheck(ctx context.Context, env *cliEnv, args []string) (int, error) {
	fs := newFlagSet("check", "[--dir DIR] USER RESOURCE ACTION\n       charter check [--dir DIR] --role ROLE | --assign ROLE USER RESOURCE", env.stderr)
	o := checkFlags(fs)
	pos, err := parseFlags(fs, args, env.getenv)
	if err != nil {
		return exitFailure, err
	}
	if o.role != "" && o.assign != "" {
		return exitFailure, errors.New("--role and --assign exclude each other")
	}
	q := engine.Question{Environment: o.environment, Time: env.now()}
	switch {
	case o.role != "" || o.assign != "":
		if len(pos) != 2 {
			return exitFailure, fmt.Errorf("want USER RESOURCE with --role or --assign, got %d arguments", len(pos))
		}
		q.User, q.Resource, q.Role, q.Assign = pos[0], pos[1], o.role, o.assign
	default:
		if len(pos) != 3 {
			return exitFailure, fmt.Errorf("want USER RESOURCE ACTION, got %d arguments", len(pos))
		}
		q.User, q.Resource, q.Action = pos[0], pos[1], pos[2]
	}
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return exitFailure, fmt.Errorf("--time %q is not an RFC 3339 time such as 2026-03-02T10:30:00Z", o.at)
		}
		q.Time = t
	}
	if q.User == "" {
		return exitFailure, errors.New("USER is empty")
	}

	snap, err := loadSnapshot(ctx, o.dir, o.load)
	if err != nil {
		return exitFailure, err
	}
	var d engine.Decision
	if o.explain {
		d, err = snap.Explain(q)
	} else {
		d, err = snap.Decide(q)
	}
	if err != nil {
		return exitFailure, questionArgError(err)
	}
	if o.format.String() == "json" {
		err = writeDecisionJSON(env.stdout, q, d)
	} else {
		err = writeDecisionText(env.stdout, q, d)
	}
	if err != nil {
		return exitFailure, err
	}
	if !d.Allowed {
		return exitFailed, nil
	}
	return exitOK, nil
}

// checkOptions are the flags of charter check.
type checkOptions struct {
	dir, role, assign, at, environment string
	explain                            bool
	format                             *choiceValue
	load                               *loadOptions
}

// checkFlags defines the flags of charter check on fs.
func checkFlags(fs *flag.FlagSet) *checkOptions {
	o := &checkOptions{format: oneOf("text", "text", "json")}
	fs.StringVar(&o.dir, "dir", ".", "policy root `directory`")
	fs.StringVar(&o.role, "role", "", "ask whether USER holds `ROLE` on RESOURCE (instead of ACTION)")
	fs.StringVar(&o.assign, "assign", "", "ask whether USER may assign `ROLE` on RESOURCE to others (instead of ACTION)")
	fs.BoolVar(&o.explain, "explain", false, "print the decision trace")
	fs.StringVar(&o.at, "time", "", "the time of the question, RFC 3339 (default now)")
	fs.StringVar(&o.environment, "environment", "", "exclude records tagged with another environment `NAME`")
	fs.Var(o.format, "format", "output format: text or json")
	o.load = loadFlags(fs)
	return o
}

// loadSnapshot loads and validates the policy in dir and builds its snapshot.
func loadSnapshot(ctx context.Context, dir string, load *loadOptions) (*engine.Snapshot, error) {
	p, err := loadDir(ctx, dir, load)
	var errs schema.Errors
	if errors.As(err, &errs) {
		return nil, fmt.Errorf("the policy in %s is invalid (%d %s, the first: %v); run charter validate %s",
			dir, len(errs), plural(len(errs), "error", "errors"), errs[0], dir)
	}
	if err != nil {
		return nil, err
	}
	return engine.Build(p, localRevision)
}

// questionArgError renames a question error after the command-line argument at fault.
func questionArgError(err error) error {
	var qe *engine.QuestionError
	if !errors.As(err, &qe) {
		return err
	}
	arg := map[string]string{"resource": "RESOURCE", "action": "ACTION", "role": "--role", "assign": "--assign"}[qe.Arg]
	if arg == "" {
		arg = qe.Arg
	}
	return fmt.Errorf("bad %s: %w", arg, qe.Err)
}

func writeDecisionText(w io.Writer, q engine.Question, d engine.Decision) error {
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	if _, err := fmt.Fprintf(w, "%s: %s (decided by the %s layer, revision %s)\n", verdict, q, layerName(d.Layer), d.Revision); err != nil {
		return err
	}
	if d.Trace != nil {
		return engine.WriteTrace(w, "  ", d.Trace)
	}
	return nil
}

func layerName(layer string) string {
	if layer == engine.LayerResourceServer {
		return "resource-server"
	}
	return "record"
}

func writeDecisionJSON(w io.Writer, q engine.Question, d engine.Decision) error {
	out := struct {
		engine.Decision
		Question engine.Question `json:"question"`
	}{d, q}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
