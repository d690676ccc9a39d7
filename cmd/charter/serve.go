package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/engine/api"
	policiesexample "github.com/charter-policy/charter/policies-example"
	"github.com/charter-policy/charter/reconciler"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/dir"
	"github.com/charter-policy/charter/reconciler/source/embedded"
	gitsource "github.com/charter-policy/charter/reconciler/source/git"
	"github.com/charter-policy/charter/reconciler/trust"
	"github.com/charter-policy/charter/schema/cueproc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// drainTimeout bounds how long SIGTERM waits for in-flight requests (SPEC 6).
const drainTimeout = 10 * time.Second

// maxWebhookSecret bounds the size of --webhook-secret-file.
const maxWebhookSecret = 4096

type serveConfig struct {
	source, path, listen, environment string
	logFormat, logLevel               string
	webhookSecretFile                 string
	minRevisionWait, debounce         time.Duration
	interval                          time.Duration
	// cacheDir holds what serve keeps across restarts: the clone of a git
	// source, the last served commit; empty keeps nothing (no git source).
	// The flag defaults to the user's cache directory.
	cacheDir string
	// trustedKeys and trustedSSHSigners are the files of trusted keys;
	// verifyCommits is "tip" or "all" (empty: tip).
	trustedKeys, trustedSSHSigners, verifyCommits string
	noRewind                                      bool
	load                                          *loadOptions
	// The git source's (SPEC 6.1).
	branch       string
	fetchTimeout time.Duration
	credentials  gitsource.Credentials
	// gitHTTPClient, set by tests only, reaches an https remote whose
	// certificate the test made.
	gitHTTPClient *http.Client
}

// defaultInterval is how often --source is fetched besides its own change
// notifications: for a directory, a full rescan that catches whatever
// fsnotify missed; for git, the poll of SPEC 6.1.
const defaultInterval = 30 * time.Second

func runServe(ctx context.Context, env *cliEnv, args []string) (int, error) {
	fs := newFlagSet("serve", "", env.stderr)
	config := serveFlags(fs)
	pos, err := parseFlags(fs, args, env.getenv)
	if err != nil {
		return exitFailure, err
	}
	if len(pos) > 0 {
		return exitFailure, fmt.Errorf("unexpected argument %q (the policy source is given with --source)", pos[0])
	}
	return serve(ctx, env, config(), nil)
}

// serveFlags defines the flags of charter serve on fs; the function it
// returns gives their values once fs is parsed.
func serveFlags(fs *flag.FlagSet) func() serveConfig {
	var cfg serveConfig
	fs.StringVar(&cfg.source, "source", "", "policy source: a directory (watched for changes) or a git URL (file://, https://, ssh://, git:// or git@host:path; fetched every --interval); empty serves the example policies built into the binary")
	fs.StringVar(&cfg.path, "path", "", "the policy root inside the source (default: the source's root)")
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8181", "address to listen on")
	fs.StringVar(&cfg.environment, "environment", "", "serve only records whose tags.environment is this (or unset)")
	logFormat := oneOf("text", "text", "json")
	fs.Var(logFormat, "log-format", "log format: text or json")
	logLevel := oneOf("info", "debug", "info", "warn", "error")
	fs.Var(logLevel, "log-level", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.webhookSecretFile, "webhook-secret-file", "", "file holding the webhook secret of POST /v1/reconcile (GitHub X-Hub-Signature-256, Gitea X-Gitea-Signature, GitLab X-Gitlab-Token); without it, reconcile is accepted from loopback only")
	fs.DurationVar(&cfg.minRevisionWait, "min-revision-wait", api.DefaultMinRevisionWait, "how long a request with Charter-Min-Revision waits for that revision")
	fs.DurationVar(&cfg.debounce, "debounce", dir.DefaultDebounce, "how long a watched directory must be quiet before a reload (a steady stream of changes still reloads every "+dir.DefaultMaxWait.String()+")")
	fs.DurationVar(&cfg.interval, "interval", defaultInterval, "how often --source is fetched besides its change notifications (a rescan of a directory, a fetch of a git remote), jittered by ±10%")
	fs.StringVar(&cfg.branch, "branch", "", "the branch of a git --source to follow (default: the remote's HEAD)")
	fs.DurationVar(&cfg.fetchTimeout, "fetch-timeout", gitsource.DefaultFetchTimeout, "the longest one fetch of a git --source may take")
	fs.StringVar(&cfg.credentials.SSHKeyFile, "git-ssh-key-file", "", "the private key (a deploy key, unencrypted) for an ssh:// or git@host:path --source; read again on every fetch")
	fs.StringVar(&cfg.credentials.KnownHostsFile, "git-known-hosts-file", "", "the known_hosts file holding the ssh host's key (default: $SSH_KNOWN_HOSTS or ~/.ssh/known_hosts); an unknown host key is refused")
	fs.StringVar(&cfg.credentials.TokenFile, "git-token-file", "", "the file holding a token sent as the password of HTTPS basic auth for an https:// --source; read again on every fetch")
	fs.StringVar(&cfg.credentials.Username, "git-username", gitsource.DefaultUsername, "the user name of HTTPS basic auth with --git-token-file")
	fs.StringVar(&cfg.cacheDir, "cache-dir", "", "directory for what serve keeps across restarts: the bare clone of a git --source (one subdirectory per URL) and the last served commit of each source (default: the user's cache directory, charter below it)")
	fs.StringVar(&cfg.trustedKeys, "trusted-keys", "", "file of armored OpenPGP public keys: a commit must carry a good signature by one of them (or by --trusted-ssh-signers) to be served")
	fs.StringVar(&cfg.trustedSSHSigners, "trusted-ssh-signers", "", "allowed_signers file (git's gpg.ssh.allowedSignersFile format): a commit signed with one of its SSH keys (namespace git) may be served")
	verifyCommits := oneOf(string(trust.Tip), string(trust.Tip), string(trust.All))
	fs.Var(verifyCommits, "verify-commits", "which commits must be signed: tip (the commit served) or all (every commit between the served commit and the new tip)")
	fs.BoolVar(&cfg.noRewind, "no-rewind", false, "reject a commit that does not descend from the served one (a force-push or a reset), also after a restart")
	cfg.load = loadFlags(fs)
	return func() serveConfig {
		cfg.logFormat, cfg.logLevel = logFormat.String(), logLevel.String()
		cfg.verifyCommits = verifyCommits.String()
		if cfg.cacheDir == "" {
			if dir, err := os.UserCacheDir(); err == nil {
				cfg.cacheDir = filepath.Join(dir, "charter")
			}
		}
		return cfg
	}
}

// loadOptions returns the limits of loading set by the flags, the defaults
// when cfg was not made from flags.
func (cfg serveConfig) loadOptions() *loadOptions {
	if cfg.load == nil {
		return &loadOptions{memoryLimit: cueproc.DefaultMemoryLimit, timeout: cueproc.DefaultTimeout}
	}
	return cfg.load
}

// serving is what serve reports once the server accepts connections.
type serving struct {
	addr    net.Addr
	metrics prometheus.Gatherer // the registry GET /metrics serves
}

// serve runs the sidecar until ctx is done. When ready is not nil, it
// receives the listener's address and the metrics registry once the server
// accepts connections.
func serve(ctx context.Context, env *cliEnv, cfg serveConfig, ready chan<- serving) (int, error) {
	log := newLogger(env.stderr, cfg.logFormat, cfg.logLevel)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	src, err := newSource(cfg, log, reg)
	if err != nil {
		return exitFailure, err
	}
	if c, ok := src.(io.Closer); ok {
		defer c.Close()
	}
	var secret []byte
	if cfg.webhookSecretFile != "" {
		if secret, err = readSecret(cfg.webhookSecretFile); err != nil {
			return exitFailure, err
		}
	}

	loader, runner, err := cfg.loadOptions().loader()
	if err != nil {
		return exitFailure, err
	}
	defer runner.Close()

	interval := cfg.interval
	if cfg.source == "" {
		interval = 0 // the embedded example never changes
	}
	opts := reconciler.Options{Logger: log, Metrics: reconciler.NewMetrics(reg), Interval: interval, Loader: loader}
	if err := commitChecks(cfg, src, log, &opts); err != nil {
		return exitFailure, err
	}
	rec := reconciler.New(src, opts)
	// The API bounds each ancestry question by the request and
	// --min-revision-wait; the source caches the answers (gitrepo).
	var includes func(ctx context.Context, served, min string) (bool, error)
	if a, ok := src.(source.Ancestry); ok {
		includes = a.Includes
	}
	// A webhook's push to another branch than the git source's fetches nothing.
	var branch func() string
	if b, ok := src.(source.Brancher); ok {
		branch = b.Branch
	}
	handler := api.NewHandler(backend{rec}, api.Options{
		RevisionIncludes: includes,
		Environment:      cfg.environment,
		WebhookSecret:    secret,
		Branch:           branch,
		Registerer:       reg,
		Gatherer:         reg,
		Logger:           log,
		MinRevisionWait:  cfg.minRevisionWait,
	})

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return exitFailure, fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	runCtx, stopReconciler := context.WithCancel(context.Background())
	defer stopReconciler()
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(runCtx) }()

	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()
	log.Info("charter is serving", "listen", ln.Addr().String(), "source", src.String(), "environment", cfg.environment)
	if ready != nil {
		ready <- serving{addr: ln.Addr(), metrics: reg}
	}

	select {
	case err := <-srvDone:
		stopReconciler()
		<-recDone
		return exitFailure, fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", drainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err = srv.Shutdown(drainCtx)
	stopReconciler()
	// The reconciler stops between steps, and within a load by killing the
	// child that evaluates CUE; serve still waits for it only until the
	// drain bound, then exits without it.
	select {
	case <-recDone:
	case <-drainCtx.Done():
		log.Warn("the reconciler did not stop within the drain timeout; exiting without it", "timeout", drainTimeout)
	}
	if err != nil {
		return exitFailure, fmt.Errorf("drain: %w", err)
	}
	log.Info("stopped")
	return exitOK, nil
}

// The git source gives the reconciler its clone, where commits are verified.
var _ reconciler.CommitSource = (*gitsource.Source)(nil)

// newSource returns the policy source cfg names, or the embedded example.
// A directory source's metrics are registered with reg.
func newSource(cfg serveConfig, log *slog.Logger, reg prometheus.Registerer) (source.Source, error) {
	if cfg.interval < 0 {
		return nil, fmt.Errorf("--interval %v is negative", cfg.interval)
	}
	switch {
	case cfg.source == "":
		if cfg.path != "" {
			return nil, errors.New("--path needs --source")
		}
		log.Info("no --source given: serving the example policies embedded in the binary (policies-example)")
		return embedded.New(policiesexample.FS(), "embedded:policies-example"), nil
	case gitsource.IsURL(cfg.source):
		return gitsource.New(cfg.source, gitsource.Options{
			Branch:       cfg.branch,
			Path:         cfg.path,
			CacheDir:     cfg.cacheDir,
			FetchTimeout: cfg.fetchTimeout,
			Credentials:  cfg.credentials,
			Logger:       log,
			HTTPClient:   cfg.gitHTTPClient,
			Limits:       cfg.loadOptions().sizeLimits(),
		})
	}
	for _, f := range []struct {
		flag string
		set  bool
	}{
		{"--branch", cfg.branch != ""},
		{"--git-ssh-key-file", cfg.credentials.SSHKeyFile != ""}, {"--git-known-hosts-file", cfg.credentials.KnownHostsFile != ""},
		{"--git-token-file", cfg.credentials.TokenFile != ""},
	} {
		if f.set {
			return nil, fmt.Errorf("%s is for a git URL --source, not the directory %s", f.flag, cfg.source)
		}
	}
	return dir.New(cfg.source, dir.Options{Path: cfg.path, Debounce: cfg.debounce, Logger: log, WatchErrors: dir.NewWatchErrors(reg), Limits: cfg.loadOptions().sizeLimits()})
}

// commitChecks sets the trust policy and the state file of opts from the
// flags: the trusted keys (read and parsed now, so that a mistake stops
// serve), --verify-commits, --no-rewind, and the last served commit of the
// source from --cache-dir.
func commitChecks(cfg serveConfig, src source.Source, log *slog.Logger, opts *reconciler.Options) error {
	mode := trust.Mode(cmp.Or(cfg.verifyCommits, string(trust.Tip)))
	signed := cfg.trustedKeys != "" || cfg.trustedSSHSigners != ""
	switch {
	case cfg.source == "" && (signed || cfg.noRewind):
		return errors.New("--trusted-keys, --trusted-ssh-signers and --no-rewind need a --source in git: the embedded example policies are not a commit")
	case mode == trust.All && !signed:
		return errors.New("--verify-commits all needs --trusted-keys or --trusted-ssh-signers")
	case cfg.source == "":
		return nil
	}
	policy := &trust.Policy{Mode: mode, NoRewind: cfg.noRewind}
	if signed {
		keys, err := trust.Load(trust.Files{OpenPGP: cfg.trustedKeys, SSH: cfg.trustedSSHSigners})
		if err != nil {
			return err
		}
		policy.Keys = keys
	}
	opts.Trust = policy
	if cfg.cacheDir == "" {
		if cfg.noRewind || mode == trust.All {
			return errors.New("--no-rewind and --verify-commits all keep the served commit across restarts in --cache-dir: give one")
		}
		return nil
	}
	state := trust.NewState(trust.StatePath(cfg.cacheDir, src.String()), src.String())
	last, err := state.Load()
	if err != nil {
		return err
	}
	if cfg.noRewind || mode == trust.All {
		if err := state.CheckWritable(); err != nil {
			return fmt.Errorf("--cache-dir must be writable to keep the served commit across restarts (--no-rewind, --verify-commits all): %w", err)
		}
	}
	opts.State, opts.LastServed = state, last
	if signed || cfg.noRewind {
		log.Info("verifying commits", "trusted_keys", cfg.trustedKeys, "trusted_ssh_signers", cfg.trustedSSHSigners,
			"verify_commits", string(mode), "no_rewind", cfg.noRewind, "state", state.Path(), "last_served", last)
	}
	return nil
}

func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxWebhookSecret+1))
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(data)))
	if len(secret) == 0 || len(data) > maxWebhookSecret {
		return nil, fmt.Errorf("webhook secret file %s must hold 1 to %d bytes", path, maxWebhookSecret)
	}
	return secret, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// backend adapts the reconciler to what the HTTP API serves from. Every
// method but ReconcileWait returns at once: Status reads the reconciler's
// published status.
type backend struct{ rec *reconciler.Reconciler }

func (b backend) Snapshot() *engine.Snapshot { return b.rec.Snapshot() }
func (b backend) Reconcile() bool            { return b.rec.TryReconcile() }

// ReconcileWait asks for a reconcile and waits for its outcome, or for ctx.
func (b backend) ReconcileWait(ctx context.Context) error { return b.rec.ReconcileNow(ctx) }

// SnapshotChanged is closed when the reconciler swaps in a new snapshot.
func (b backend) SnapshotChanged() <-chan struct{} { return b.rec.ServedChanged() }

// Status maps the reconciler's status to GET /v1/status: what is served
// (with its commit and signature), what was fetched last and whether that
// failed, and the newest revision that could not be served; Branch is the
// git source's.
func (b backend) Status() api.Status {
	st := b.rec.Status()
	out := api.Status{Source: st.Source, Branch: st.Branch, Counts: map[string]int{}, LastFetch: st.LastFetch}
	if s := st.Served; s != nil {
		c := s.Snapshot.Counts()
		rev := s.Revision
		out.Revision, out.CommitTime, out.LoadedAt = rev.ID, rev.CommitTime, s.LoadedAt
		out.Author, out.Committer, out.Subject = rev.Author.Name, rev.Committer.Name, rev.Subject
		out.Counts = map[string]int{"roles": c.Roles, "groups": c.Groups, "records": c.Records, "resourceServers": c.ResourceServers}
		sig := api.Signature{Status: string(rev.Signature.Status), Signer: rev.Signature.Signer}
		if sig.Status == "" {
			sig.Status = string(source.SignatureNone)
		}
		out.Signature = &sig
	}
	if f := st.Fetched; f != nil {
		out.FetchedRevision = f.ID
	}
	if f := st.FetchError; f != nil {
		out.LastFetchError = f.Message
	}
	if w := st.WatchProblem; w != nil {
		out.WatchError = &api.WatchError{Message: w.Message, At: w.At}
	}
	if r := st.Rejected; r != nil {
		re := &api.RevisionError{Revision: r.Revision, Errors: []api.PositionedError{}}
		for _, e := range r.Errors {
			pos := ""
			if e.Pos.File != "" {
				pos = e.Pos.String()
			}
			msg := e.Message
			if e.Path != "" {
				msg = e.Path + ": " + msg
			}
			re.Errors = append(re.Errors, api.PositionedError{Position: pos, Message: msg})
		}
		out.Error = re
	}
	return out
}
