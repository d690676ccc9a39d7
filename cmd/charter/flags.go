package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/cueproc"
)

// errUsageShown reports a usage error whose message the flag set already printed.
var errUsageShown = errors.New("usage error")

// newFlagSet returns a flag set for a subcommand that prints its errors and usage to w.
func newFlagSet(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("charter "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: charter %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args with flags allowed anywhere among the positional
// arguments (as in "charter validate DIR --format json"). A flag that was not
// given on the command line takes its value from CHARTER_<FLAG> when set
// ("--min-revision-wait" reads CHARTER_MIN_REVISION_WAIT). It returns the
// positional arguments.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, errUsageShown
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			positional = append(positional, args[1:]...)
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		key := "CHARTER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %w", v, key, err)
			}
		}
	})
	return positional, envErr
}

// errHelp reports that -h was asked for; the usage is already printed.
var errHelp = errors.New("help requested")

// oneOf returns a flag.Value that accepts only the given choices.
func oneOf(def string, choices ...string) *choiceValue {
	return &choiceValue{value: def, choices: choices}
}

type choiceValue struct {
	value   string
	choices []string
}

func (c *choiceValue) String() string { return c.value }

func (c *choiceValue) Set(s string) error {
	for _, ch := range c.choices {
		if s == ch {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(c.choices, ", "))
}

// optionalDir returns the one optional DIR argument of a command, "." when absent.
func optionalDir(pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return ".", nil
	case 1:
		return pos[0], nil
	}
	return "", fmt.Errorf("want at most one directory, got %d arguments", len(pos))
}

// loadOptions are the limits of loading a policy, flags of every command
// that reads a policy root: the size of each file and of all of them,
// checked before a file is read (schema.SizeLimits), and those of CUE
// evaluation: each directory's CUE files are evaluated in a child process
// that is killed when it exceeds them (package schema/cueproc).
type loadOptions struct {
	maxFileSize, maxTotalSize sizeValue // zero: the defaults
	memoryLimit               sizeValue
	timeout                   time.Duration
}

// loadFlags defines --max-file-size, --max-total-size, --cue-memory-limit
// and --cue-timeout on fs.
func loadFlags(fs *flag.FlagSet) *loadOptions {
	o := &loadOptions{maxFileSize: schema.MaxFileBytes, maxTotalSize: schema.MaxTotalBytes, memoryLimit: cueproc.DefaultMemoryLimit}
	fs.Var(&o.maxFileSize, "max-file-size", "the largest policy file read (`SIZE`: 64KiB, 64MiB, or bytes); a larger one is an error of the policy, never read")
	fs.Var(&o.maxTotalSize, "max-total-size", "the most bytes of policy files read together (`SIZE`: 256MiB, 1GiB, or bytes); the file that would pass it is an error of the policy, never read")
	fs.Var(&o.memoryLimit, "cue-memory-limit", "memory limit of the evaluation of one directory's CUE files (`SIZE`: 512MiB, 1GiB, or bytes); one that exceeds it is an error of that directory")
	fs.DurationVar(&o.timeout, "cue-timeout", cueproc.DefaultTimeout, "time limit of the evaluation of one directory's CUE files; one that exceeds it is an error of that directory")
	return o
}

// loader returns a schema.Loader that evaluates CUE in child processes
// under o's limits, and the runner of those children, to be closed once
// the loader is no longer used.
func (o *loadOptions) loader() (*schema.Loader, *cueproc.Runner, error) {
	if o.timeout <= 0 {
		return nil, nil, fmt.Errorf("--cue-timeout %v: want a positive duration", o.timeout)
	}
	runner, err := cueproc.New(cueproc.Options{
		MemoryLimit: int64(o.memoryLimit), Timeout: o.timeout,
		MemoryLimitName: "--cue-memory-limit", TimeoutName: "--cue-timeout",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("--cue-memory-limit: %w", err)
	}
	l := schema.NewLoader()
	l.CUE = runner
	l.Limits = o.sizeLimits()
	return l, runner, nil
}

// sizeLimits returns the limits on reading that o sets, for the loader and
// the sources alike.
func (o *loadOptions) sizeLimits() schema.SizeLimits {
	return schema.SizeLimits{File: int64(o.maxFileSize), Total: int64(o.maxTotalSize)}
}

// sizeValue is a flag.Value of a number of bytes, written with a binary
// unit (512MiB, 1GiB, 64KiB, 1TiB; a space before the unit is allowed) or
// as a plain number of bytes.
type sizeValue int64

func (s *sizeValue) String() string {
	return strings.ReplaceAll(cueproc.FormatSize(int64(*s)), " ", "")
}

func (s *sizeValue) Set(text string) error {
	units := []struct {
		suffix string
		shift  uint
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"B", 0}}
	number, shift := strings.TrimSpace(text), uint(0)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(number, u.suffix); ok {
			number, shift = strings.TrimSpace(rest), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return fmt.Errorf("want a size such as 512MiB or 1GiB (units B, KiB, MiB, GiB, TiB)")
	}
	*s = sizeValue(n << shift)
	return nil
}
