package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/schema"
)

func runValidate(ctx context.Context, env *cliEnv, args []string) (int, error) {
	fs := newFlagSet("validate", "[DIR]", env.stderr)
	opts := validateFlags(fs)
	pos, err := parseFlags(fs, args, env.getenv)
	if err != nil {
		return exitFailure, err
	}
	dir, err := optionalDir(pos)
	if err != nil {
		return exitFailure, err
	}
	policy, loadErr := loadDir(ctx, dir, opts.load)
	var report validateReport
	report.Dir = dir
	var errs schema.Errors
	switch {
	case errors.As(loadErr, &errs):
		report.Errors = errs
	case loadErr != nil:
		return exitFailure, loadErr
	default:
		report.Valid = true
		report.Counts = countsOf(policy)
		if !opts.noTests && len(policy.Tests) > 0 {
			tests, err := engine.RunTests(policy, nil, env.now())
			if err != nil {
				return exitFailure, err
			}
			report.Tests = tests
			report.Valid = tests.OK()
		}
	}
	switch opts.format.String() {
	case "json":
		err = report.writeJSON(env.stdout)
	case "github":
		report.writeGitHub(env.stdout)
	default:
		err = report.writeText(env.stdout)
	}
	if err != nil {
		return exitFailure, err
	}
	if !report.Valid {
		return exitFailed, nil
	}
	return exitOK, nil
}

// validateOptions are the flags of charter validate.
type validateOptions struct {
	format  *choiceValue
	noTests bool
	load    *loadOptions
}

// validateFlags defines the flags of charter validate on fs.
func validateFlags(fs *flag.FlagSet) *validateOptions {
	o := &validateOptions{format: oneOf("text", "text", "json", "github")}
	fs.Var(o.format, "format", "output format: text, json or github (workflow annotations)")
	fs.BoolVar(&o.noTests, "no-tests", false, "do not run the policy's tests")
	o.load = loadFlags(fs)
	return o
}

// loadDir loads the policy root dir under the limits load sets, with
// errors for a missing or empty root that name it.
func loadDir(ctx context.Context, dir string, load *loadOptions) (*schema.PolicySet, error) {
	info, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("policy directory %s does not exist", dir)
		}
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	loader, runner, err := load.loader()
	if err != nil {
		return nil, err
	}
	defer runner.Close()
	// Through an os.Root, whose files are opened without blocking
	// (schema.RootFS): a named pipe swapped in is refused, not waited on.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// The loader stops when ctx ends, killing the children that evaluate CUE.
	p, err := loader.Load(ctx, schema.RootFS(root))
	if err != nil && ctx.Err() != nil {
		return nil, errInterrupted
	}
	if errors.Is(err, schema.ErrNoPolicy) {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return p, err
}

// errInterrupted ends a command whose context ended (SIGINT or SIGTERM)
// before its policy was loaded; it exits 2.
var errInterrupted = errors.New("interrupted")

type validateReport struct {
	Dir    string
	Valid  bool
	Errors schema.Errors
	Counts map[string]int
	Tests  *engine.TestReport // nil when no test ran (none declared, or --no-tests)
}

func countsOf(p *schema.PolicySet) map[string]int {
	return map[string]int{
		"roles":           len(p.Roles),
		"groups":          len(p.Groups),
		"records":         len(p.Records),
		"resourceServers": len(p.ResourceServers),
		"tests":           len(p.Tests),
	}
}

func (r *validateReport) writeText(w io.Writer) error {
	if r.Tests != nil && !r.Tests.OK() {
		if err := r.Tests.WriteText(w); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "%s: invalid, %d %s failed\n", r.Dir, r.Tests.Failed, plural(r.Tests.Failed, "test", "tests"))
		return err
	}
	if r.Valid {
		c := r.Counts
		_, err := fmt.Fprintf(w, "%s: valid (%d roles, %d groups, %d records, %d resource servers, %s)\n",
			r.Dir, c["roles"], c["groups"], c["records"], c["resourceServers"], r.testSummary())
		return err
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, e.Error())
	}
	_, err := fmt.Fprintf(w, "%s: invalid, %d %s\n", r.Dir, len(r.Errors), plural(len(r.Errors), "error", "errors"))
	return err
}

// testSummary says how the tests of a valid policy fared: "N of M tests
// passed", or, when they were not run (--no-tests), "M tests not run".
func (r *validateReport) testSummary() string {
	total := r.Counts["tests"]
	if r.Tests == nil && total > 0 {
		return fmt.Sprintf("%d %s not run", total, plural(total, "test", "tests"))
	}
	passed := 0
	if r.Tests != nil {
		passed = r.Tests.Passed
	}
	return fmt.Sprintf("%d of %d tests passed", passed, total)
}

type jsonError struct {
	Position string `json:"position"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
}

func (r *validateReport) writeJSON(w io.Writer) error {
	out := struct {
		Valid  bool               `json:"valid"`
		Errors []jsonError        `json:"errors"`
		Counts map[string]int     `json:"counts,omitempty"`
		Tests  *engine.TestReport `json:"tests,omitempty"`
	}{Valid: r.Valid, Errors: []jsonError{}, Counts: r.Counts, Tests: r.Tests}
	for _, e := range r.Errors {
		out.Errors = append(out.Errors, jsonError{Position: e.Pos.String(), File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Path: e.Path, Message: e.Message})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeGitHub prints workflow commands that annotate the pull request's files.
func (r *validateReport) writeGitHub(w io.Writer) {
	for _, e := range r.Errors {
		msg := e.Message
		if e.Path != "" {
			msg = e.Path + ": " + msg
		}
		col := "" // a whole-file error (a refused file) has no column
		if e.Pos.Col > 0 {
			col = fmt.Sprintf(",col=%d", e.Pos.Col)
		}
		fmt.Fprintf(w, "::error file=%s,line=%d%s::%s\n", escapeProperty(e.Pos.File), e.Pos.Line, col, escapeData(msg))
	}
	if r.Tests != nil {
		for _, t := range r.Tests.Failures() {
			file, line, _ := strings.Cut(t.Source, ":")
			msg := fmt.Sprintf("test %q: expected %s, got %s", t.Name, t.Expect, t.Got)
			if t.Error != "" {
				msg += ": " + t.Error
			}
			fmt.Fprintf(w, "::error file=%s,line=%s::%s\n", escapeProperty(file), escapeProperty(line), escapeData(msg))
		}
	}
	if r.Valid {
		fmt.Fprintf(w, "::notice::%s is valid\n", escapeData(r.Dir))
	}
}

// escapeData and escapeProperty escape workflow command values as the runner expects.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
