package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// config is everything the flags set.
type config struct {
	addr        string
	allowRemote bool
	target      string
	conns       int
	dur         time.Duration
	warmup      time.Duration
	rate        float64
	maxInflight int
	lateAfter   time.Duration
	timeout     time.Duration
	batch       int
	users       int
	docs        int
	userFormat  string
	docFormat   string
	actions     string
	seed        uint64
	pool        int
	questions   string
	noBaseline  bool
	json        bool
}

func defaultConfig() config {
	return config{
		addr:        "127.0.0.1:8181",
		target:      targetCheck,
		conns:       32,
		dur:         10 * time.Second,
		warmup:      2 * time.Second,
		maxInflight: 2048,
		lateAfter:   time.Millisecond,
		timeout:     5 * time.Second,
		batch:       100,
		users:       10000,
		docs:        100000,
		userFormat:  "user-%d",
		docFormat:   "documents/d%d",
		actions:     "documents:read,documents:update,documents:delete",
		seed:        1,
		pool:        100000,
	}
}

// parseFlags parses the command line into a config; usage goes to stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("charter-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: charter-load [flags]\n\nMeasures a Charter sidecar on this machine; see go doc ./cmd/charter-load.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", c.addr, "sidecar address, host:port or http://host:port (loopback only)")
	fs.BoolVar(&c.allowRemote, "allow-remote", c.allowRemote, "allow an -addr that is not loopback")
	fs.StringVar(&c.target, "target", c.target, "what to load: check (single check), batch (POST /v1/check) or healthz")
	fs.IntVar(&c.conns, "c", c.conns, "closed loop: concurrent connections")
	fs.DurationVar(&c.dur, "d", c.dur, "measured duration of each phase")
	fs.DurationVar(&c.warmup, "warmup", c.warmup, "warm-up before each phase, sent but not counted")
	fs.Float64Var(&c.rate, "rate", c.rate, "open loop: requests per second (0 = closed loop)")
	fs.IntVar(&c.maxInflight, "max-inflight", c.maxInflight, "open loop: most requests in flight at once")
	fs.DurationVar(&c.lateAfter, "late", c.lateAfter, "open loop: a send this far behind its intended time counts as late")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "timeout of one request (and of connecting)")
	fs.IntVar(&c.batch, "batch", c.batch, "batch: checks per request (at most 1000)")
	fs.IntVar(&c.users, "users", c.users, "generated mix: number of users")
	fs.IntVar(&c.docs, "docs", c.docs, "generated mix: number of documents")
	fs.StringVar(&c.userFormat, "user-format", c.userFormat, "generated mix: user ID for a number (fmt verb)")
	fs.StringVar(&c.docFormat, "doc-format", c.docFormat, "generated mix: resource URI for a number (fmt verb)")
	fs.StringVar(&c.actions, "actions", c.actions, "generated mix: comma-separated actions")
	fs.Uint64Var(&c.seed, "seed", c.seed, "generated mix: RNG seed")
	fs.IntVar(&c.pool, "pool", c.pool, "generated mix: distinct questions generated, cycled through")
	fs.StringVar(&c.questions, "questions", c.questions, "file with one \"user resource action\" per line, instead of a generated mix")
	fs.BoolVar(&c.noBaseline, "no-baseline", c.noBaseline, "skip the /healthz baseline phase")
	fs.BoolVar(&c.json, "json", c.json, "print a JSON report instead of the summary")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return c, c.validate()
}

func (c *config) validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(c.conns >= 1, "-c must be at least 1")
	check(c.dur > 0, "-d must be positive")
	check(c.warmup >= 0, "-warmup must not be negative")
	check(c.rate >= 0, "-rate must not be negative")
	check(c.maxInflight >= 1, "-max-inflight must be at least 1")
	check(c.timeout > 0, "-timeout must be positive")
	check(c.batch >= 1 && c.batch <= 1000, "-batch must be 1..1000")
	if c.questions == "" {
		check(c.users >= 1, "-users must be at least 1")
		check(c.docs >= 1, "-docs must be at least 1")
		check(c.pool >= 1, "-pool must be at least 1")
		check(len(c.actionList()) > 0, "-actions must name at least one action")
	}
	switch c.target {
	case targetCheck, targetBatch, targetHealthz:
	default:
		errs = append(errs, fmt.Errorf("-target %q: want check, batch or healthz", c.target))
	}
	return errors.Join(errs...)
}

func (c *config) actionList() []string {
	var out []string
	for a := range strings.SplitSeq(c.actions, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// openLoop reports whether the run keeps a fixed rate.
func (c *config) openLoop() bool { return c.rate > 0 }

// loadQuestions returns the questions of the run: the -questions file, or
// the generated mix.
func (c *config) loadQuestions() ([]question, error) {
	if c.target == targetHealthz {
		return nil, nil
	}
	if c.questions != "" {
		return readQuestionsFile(c.questions)
	}
	return mix{users: c.users, docs: c.docs, userFormat: c.userFormat, docFormat: c.docFormat,
		actions: c.actionList(), seed: c.seed, size: c.pool}.generate(), nil
}
