// Package git is the policy source over a branch of a remote git repository
// (charter serve --source URL, SPEC section 6.1).
//
// The remote is reached with go-git over file://, git://, http(s)://,
// ssh:// or scp-like user@host:path (ParseURL), with the credentials of
// Credentials, read from their files again for every fetch. It is cloned
// once, bare, into the cache directory (Options.CacheDir, a directory per
// remote named by Remote.CacheKey), and the branch tip's policy files are
// read straight from the object store (gitrepo.Repo.Files): there is no work
// tree, and nothing outside Options.Path is ever read.
//
// A fetch reads the remote's ref advertisement; when the branch tip is the
// one held, that is all it costs: no pack, no tree read, and the same
// revision and files as before, so the reconciler does nothing and logs
// nothing. A new tip is downloaded (only the objects the clone lacks) and
// its files read. Fetches are serialized: a caller that arrives while one
// runs shares its outcome. Each fetch is bounded by Options.FetchTimeout.
//
// The revision is the tip commit: its hash as ID, the digest of its policy
// files as Key, its author, committer, time, subject and parents. Signature
// is none: verifying signatures, and the descent from the served commit,
// is the reconciler's verify step's, over the clone (Repository).
//
// Failures: a remote that cannot be reached, a branch that does not exist
// (the error names it and the remote's branches) or refused credentials
// are transient errors, retried by the reconciler with backoff. When the
// remote cannot be reached but the clone holds the branch, Fetch returns
// the clone's tip with a *source.StaleError, so that a restart with the
// remote down serves the cached policy. A clone that is half-written (its
// HEAD names no commit) or whose objects cannot be read is never served:
// it is removed and cloned again. A clone is written under a temporary name
// and renamed into place once whole, and locked against a second process.
//
// No credential, and no userinfo of the URL, appears in String, in a log
// line or in an error: a URL that carries a password or an http(s) user is
// used, with a warning, and shown without it.
package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
)

// DefaultFetchTimeout bounds one fetch when Options.FetchTimeout is zero.
const DefaultFetchTimeout = 60 * time.Second

// Options configure a git source.
type Options struct {
	// Branch is the branch followed. Empty: the remote's HEAD.
	Branch string
	// Path is the policy root inside the repository (slash-separated);
	// empty for the repository's root.
	Path string
	// CacheDir holds the clones, one directory per remote. Empty:
	// DefaultCacheDir.
	CacheDir string
	// FetchTimeout bounds one fetch. Zero: DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Credentials reach the remote.
	Credentials Credentials
	// Limits bound what one fetch reads.
	Limits source.Limits
	// Logger receives the clone, the clone removed as damaged, the
	// submodules ignored, and credentials found in the URL. Nil: none.
	Logger *slog.Logger
	// HTTPClient reaches http(s) remotes. Nil: a client with the default
	// transport's settings that follows no redirect from https to http.
	HTTPClient *http.Client
}

// Source is a branch of a remote git repository.
type Source struct {
	remote *Remote
	opts   Options
	dir    string // the clone
	log    *slog.Logger
	http   *http.Client
	lock   *os.File

	ctx    context.Context // ended by Close; the fetches run under it
	cancel context.CancelFunc
	flight flight

	// rescan keeps the blobs of the last tip read, so that reading the
	// next one reads only the blobs that changed; readMu serializes its use.
	readMu sync.Mutex
	rescan source.Rescan

	mu     sync.Mutex // guards what follows
	repo   *gitrepo.Repo
	branch string
	last   *reading
}

// reading is the outcome of reading one tip: its revision and files, or a
// *source.ContentError.
type reading struct {
	tip   string
	rev   source.Revision
	files fs.FS
	err   error
}

var (
	_ source.Source   = (*Source)(nil)
	_ source.Ancestry = (*Source)(nil)
	_ source.Brancher = (*Source)(nil)
)

// New returns a source for the repository at rawURL (ParseURL). It makes
// the cache directory and locks the remote's clone in it, but does not
// reach the remote: the first Fetch clones, or opens the clone a previous
// process left. Close releases it.
func New(rawURL string, opts Options) (*Source, error) {
	remote, err := ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	if err := opts.Credentials.check(remote); err != nil {
		return nil, err
	}
	if opts.Branch != "" {
		if err := plumbing.ReferenceName("refs/heads/" + opts.Branch).Validate(); err != nil || strings.HasPrefix(opts.Branch, "refs/") {
			return nil, fmt.Errorf("--branch %q is not a branch name", opts.Branch)
		}
	}
	if _, err := gitrepo.CleanPath(opts.Path); err != nil {
		return nil, fmt.Errorf("--path: %w", err)
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("--cache-dir: %w", err)
	}
	s := &Source{remote: remote, opts: opts, log: opts.Logger, http: opts.HTTPClient}
	s.dir = filepath.Join(opts.CacheDir, remote.CacheKey())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.http == nil {
		s.http = newHTTPClient()
	}
	if s.lock, err = lockClone(s.dir); err != nil {
		return nil, err
	}
	removeLeftovers(s.dir)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if remote.Stripped {
		s.log.Warn("the --source URL carries credentials: they are used but never shown; prefer --git-token-file, since a command line can be read by other processes",
			"source", remote.String())
	}
	return s, nil
}

// Close ends a fetch in progress and releases the clone.
func (s *Source) Close() error {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repo != nil {
		s.repo.Close()
		s.repo = nil
	}
	return s.lock.Close()
}

// String returns the URL without credentials.
func (s *Source) String() string { return s.remote.String() }

// Branch returns the branch followed: Options.Branch, else the remote's
// HEAD as last seen (or, before the remote is reached, the clone's).
func (s *Source) Branch() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.branch
}

// Dir returns the directory of the clone, a bare repository. Whoever
// verifies commits or keeps state beside the clone (the last served
// commit) finds it there.
func (s *Source) Dir() string { return s.dir }

// Repository returns the clone, which holds the commit of the revision the
// last Fetch returned, or nil before the first fetch that found one; it
// changes when a damaged clone is replaced. The reconciler verifies
// signatures and descent there (reconciler.CommitSource).
func (s *Source) Repository() *gitrepo.Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repo
}

// Fetch brings the clone up to date with the branch and returns its tip's
// revision and policy files.
func (s *Source) Fetch(ctx context.Context) (source.Revision, fs.FS, error) {
	if err := ctx.Err(); err != nil {
		return source.Revision{}, nil, err
	}
	tip, err := s.flight.do(ctx, s.ctx, s.update)
	if err != nil {
		if ctx.Err() != nil {
			return source.Revision{}, nil, ctx.Err()
		}
		return s.stale(ctx, err)
	}
	rev, files, err := s.read(ctx, tip)
	if errors.Is(err, errDamaged) {
		s.discard(err)
		if tip, err = s.flight.do(ctx, s.ctx, s.update); err != nil {
			return source.Revision{}, nil, err
		}
		rev, files, err = s.read(ctx, tip)
	}
	return rev, files, err
}

// update fetches the branch into the clone, cloning first when there is
// none, and returns its tip.
func (s *Source) update(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.FetchTimeout)
	defer cancel()
	repo, err := s.open(ctx)
	if err != nil {
		return "", err
	}
	conn, err := s.connect(s.opts.FetchTimeout)
	if err != nil {
		return "", err
	}
	sess, err := gitrepo.Dial(ctx, conn.transport, conn.endpoint, conn.auth)
	if err != nil {
		return "", s.fetchError(ctx, err)
	}
	defer sess.Close()
	branch := s.opts.Branch
	if branch == "" {
		head := sess.Head()
		if !strings.HasPrefix(head, "refs/heads/") {
			return "", fmt.Errorf("fetch %s: the remote does not say which branch its HEAD is: give --branch (its branches: %s)",
				s.remote, strings.Join(sess.BranchNames(), ", "))
		}
		branch = strings.TrimPrefix(head, "refs/heads/")
	}
	ref := "refs/heads/" + branch
	tip, ok := sess.Branches()[ref]
	if !ok {
		return "", fmt.Errorf("fetch %s: branch %q does not exist; the remote's branches: %s",
			s.remote, branch, strings.Join(sess.BranchNames(), ", "))
	}
	s.mu.Lock()
	s.branch = branch
	s.mu.Unlock()
	if repo == nil {
		if err := s.clone(ctx, sess, branch, tip); err != nil {
			return "", s.fetchError(ctx, err)
		}
		return tip, nil
	}
	if held, err := repo.Reference(ctx, ref); err == nil && held == tip {
		return tip, nil // the one ref advertisement is all an unchanged tip costs
	}
	if err := repo.Fetch(ctx, sess, ref, tip); err != nil {
		return "", s.fetchError(ctx, err)
	}
	return tip, nil
}

// fetchError names the remote and the timeout in err.
func (s *Source) fetchError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("fetch %s: no answer within --fetch-timeout %s", s.remote, s.opts.FetchTimeout)
	}
	return fmt.Errorf("fetch %s: %s", s.remote, redact(err.Error(), s.remote))
}

// redact removes the URL's userinfo from a message of go-git's, which may
// quote the endpoint it was given (that has none, but be sure).
func redact(msg string, r *Remote) string {
	if r.urlPassword != "" {
		msg = strings.ReplaceAll(msg, r.urlPassword, "***")
	}
	if r.urlUser != "" {
		msg = strings.ReplaceAll(msg, r.urlUser+"@", "")
	}
	return msg
}

// open returns the clone, opening the one in the cache directory the first
// time; nil when there is none. A damaged one is removed.
func (s *Source) open(ctx context.Context) (*gitrepo.Repo, error) {
	s.mu.Lock()
	repo := s.repo
	s.mu.Unlock()
	if repo != nil {
		return repo, nil
	}
	repo, err := openCache(ctx, s.dir)
	if errors.Is(err, errDamaged) {
		s.discard(err)
		return nil, nil
	}
	if err != nil || repo == nil {
		return nil, err
	}
	head, err := repo.Head(ctx)
	if err != nil {
		repo.Close()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo = repo
	if s.opts.Branch != "" {
		s.branch = s.opts.Branch
	} else if s.branch == "" {
		s.branch = strings.TrimPrefix(head.Branch, "refs/heads/")
	}
	return repo, nil
}

// clone makes the clone from sess under a temporary name, and renames it
// into place once it holds the branch's tip.
func (s *Source) clone(ctx context.Context, sess *gitrepo.Session, branch, tip string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(s.dir), filepath.Base(s.dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	defer os.RemoveAll(tmp) // nothing left once renamed
	repo, err := gitrepo.InitBare(tmp)
	if err != nil {
		return err
	}
	err = repo.Fetch(ctx, sess, "refs/heads/"+branch, tip)
	repo.Close()
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	if err := os.Rename(tmp, s.dir); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	if repo, err = gitrepo.Open(s.dir); err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	s.mu.Lock()
	s.repo = repo
	s.mu.Unlock()
	s.log.Info("cloned the policy repository", "source", s.remote.String(), "branch", branch, "commit", tip, "dir", s.dir)
	return nil
}

// discard removes a damaged clone, so that the next fetch clones again.
func (s *Source) discard(why error) {
	s.mu.Lock()
	repo := s.repo
	s.repo, s.last = nil, nil
	s.mu.Unlock()
	if repo != nil {
		repo.Close()
	}
	s.log.Warn("removing the cached clone: it cannot be used, and is cloned again", "source", s.remote.String(), "dir", s.dir, "err", why)
	if err := removeClone(s.dir); err != nil {
		s.log.Error("the damaged clone could not be removed", "dir", s.dir, "err", err)
	}
}

// stale returns the clone's tip with a *source.StaleError wrapping
// fetchErr, when the clone holds the branch; else fetchErr.
func (s *Source) stale(ctx context.Context, fetchErr error) (source.Revision, fs.FS, error) {
	s.mu.Lock()
	repo, branch := s.repo, s.branch
	s.mu.Unlock()
	if repo == nil || branch == "" {
		return source.Revision{}, nil, fetchErr
	}
	tip, err := repo.Reference(ctx, "refs/heads/"+branch)
	if err != nil {
		return source.Revision{}, nil, fetchErr
	}
	rev, files, err := s.read(ctx, tip)
	if errors.Is(err, errDamaged) {
		s.discard(err)
	}
	if err != nil {
		return source.Revision{}, nil, fetchErr
	}
	return rev, files, &source.StaleError{Err: fetchErr}
}

// read returns the revision and policy files of the commit tip, read once
// per tip: reading the same tip again returns what the first read did.
func (s *Source) read(ctx context.Context, tip string) (source.Revision, fs.FS, error) {
	s.mu.Lock()
	repo, last := s.repo, s.last
	s.mu.Unlock()
	if last != nil && last.tip == tip {
		return last.rev, last.files, last.err
	}
	if repo == nil {
		return source.Revision{}, nil, fmt.Errorf("%w: no clone", errDamaged)
	}
	c, err := repo.Commit(ctx, tip)
	if err != nil {
		if ctx.Err() != nil {
			return source.Revision{}, nil, ctx.Err()
		}
		return source.Revision{}, nil, fmt.Errorf("%w: read commit %s: %v", errDamaged, tip, err)
	}
	r := &reading{tip: tip, rev: source.Revision{
		ID:         c.Hash,
		Subject:    c.Subject,
		Author:     source.Person{Name: c.Author.Name, Email: c.Author.Email},
		Committer:  source.Person{Name: c.Committer.Name, Email: c.Committer.Email},
		CommitTime: c.Committer.When.UTC(),
		Parents:    c.Parents,
		Signature:  source.Signature{Status: source.SignatureNone},
	}}
	s.readMu.Lock()
	content, err := repo.Files(ctx, tip, s.opts.Path, s.opts.Limits, &s.rescan)
	s.readMu.Unlock()
	var ce *source.ContentError
	switch {
	case err == nil:
		r.rev.Key = content.Files.Digest().String()
		r.files = content.Files.FS()
		for _, sub := range content.Submodules {
			s.log.Info("submodule ignored: its content lives in another repository and is not read",
				"path", sub, "revision", tip, "source", s.remote.String())
		}
	case ctx.Err() != nil:
		return source.Revision{}, nil, ctx.Err()
	case errors.Is(err, gitrepo.ErrPathNotFound):
		r.err = &source.ContentError{Path: s.opts.Path, Err: fmt.Errorf("--path is not a directory in commit %s", tip)}
	case errors.As(err, &ce):
		r.err = err
	default:
		return source.Revision{}, nil, fmt.Errorf("%w: read commit %s: %v", errDamaged, tip, err)
	}
	s.mu.Lock()
	if s.repo == repo {
		s.last = r
	}
	s.mu.Unlock()
	return r.rev, r.files, r.err
}

// Includes reports whether served is min or descends from it in the
// clone (gitrepo.Repo.Includes): min may be abbreviated; a min the clone
// does not hold (not fetched yet, or no commit at all) is false.
func (s *Source) Includes(ctx context.Context, served, min string) (bool, error) {
	if served == min {
		return true, nil
	}
	repo := s.Repository()
	if repo == nil {
		return false, nil
	}
	return repo.Includes(ctx, served, min)
}

// flight runs one fetch at a time; callers that arrive while it runs share
// its outcome.
type flight struct {
	mu   sync.Mutex
	call *flightCall
}

type flightCall struct {
	done chan struct{}
	tip  string
	err  error
}

// do runs fn, or joins the run in progress, and returns its outcome, or
// ctx's error when ctx ends first. fn runs under base, not under the first
// caller's ctx, so that a caller that goes away does not cancel it for the
// others.
func (f *flight) do(ctx, base context.Context, fn func(context.Context) (string, error)) (string, error) {
	f.mu.Lock()
	c := f.call
	if c == nil {
		c = &flightCall{done: make(chan struct{})}
		f.call = c
		go func() {
			c.tip, c.err = fn(base)
			f.mu.Lock()
			f.call = nil
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.tip, c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
