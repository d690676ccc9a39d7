// Package dir is the policy source over a local directory (charter serve
// --source DIR, SPEC section 6).
//
// Fetch reads the policy files below the policy root (DIR joined with
// --path) into memory, as schema.IsPolicyFile selects them. Only regular
// files are read; a symbolic link is followed only when its target lies
// inside the policy root (a symbolic link to a directory is not followed);
// a link out of the root, a FIFO, a device or a socket in a policy file's
// place is a *source.ContentError naming it; sizes are checked before
// reading. A fetch reads only the files whose stat changed since the last
// fetch (source.Rescan, git's racy-index rule included), and keeps the
// last fetch's content for that; a fetch of an unchanged tree costs a stat
// per file.
//
// The revision is, inside a git work tree, the HEAD commit, or
// "<HEAD>+dirty.<12 hex of the content digest>" when the policy files differ
// from HEAD's tree (the index plays no part); outside git, or before the
// first commit, "sha256:<16 hex of the content digest>". Its Key is always
// the content digest.
//
// Watch follows the policy tree with fsnotify (every directory below the
// root, new ones included, hidden ones and cue.mod excepted) and, inside
// git, the files that move HEAD: HEAD itself, the current branch's loose ref
// and packed-refs, so that a commit that changes no file is noticed too.
// It watches the directories on the root's path too (the root's parent, up
// to the parent of DIR), so that a root removed and made again, or a
// symbolic link swapped to another directory the way git-sync publishes a
// new work tree (ln -s .worktrees/B repo.tmp && mv -T repo.tmp repo), is
// noticed; every fetch resolves the root's links again, and opens the git
// repository again when they lead to another directory (git-sync's linked
// work trees each have their own HEAD). When a watched
// directory is removed or renamed, an entry on the root's path replaced, or
// fsnotify's queue overflows, the root is resolved again and the whole tree
// watched afresh before changed is called. A watch that cannot be set up
// again is logged, counted (Options.WatchErrors) and reported by
// WatchProblem until a later attempt (after 1 s, doubling to a minute)
// sets it up whole.
//
// Changes are debounced: changed is called once the tree has been quiet for
// the debounce interval, and at the latest MaxWait after the first change of
// a burst, so a steady stream of writes still reloads. The reconciler also
// fetches at its interval, which rescans the tree whatever fsnotify missed.
package dir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema"
)

// Defaults of Options.
const (
	DefaultDebounce = 200 * time.Millisecond
	DefaultMaxWait  = time.Second
)

// Options configure a directory source.
type Options struct {
	// Path is the policy root inside the directory (slash-separated); empty
	// for the directory itself.
	Path string
	// Debounce is how long the tree must stay quiet before a change is
	// reported. Zero: DefaultDebounce.
	Debounce time.Duration
	// MaxWait bounds how long a burst of changes delays the report. Zero:
	// DefaultMaxWait.
	MaxWait time.Duration
	// Limits bound what one fetch reads.
	Limits source.Limits
	// Logger receives watch problems. Nil: none.
	Logger *slog.Logger
	// WatchErrors, when not nil, counts the watches that could not be set
	// up again (see NewWatchErrors).
	WatchErrors prometheus.Counter
}

// NewWatchErrors registers with reg, and returns, the counter of
// Options.WatchErrors: charter_source_watch_errors_total, the failed
// attempts to set up again a watch of a directory source (the directory or
// a directory on its path gone, the inotify watch limit reached); each
// retry that fails counts.
func NewWatchErrors(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "charter_source_watch_errors_total",
		Help: "Failed attempts to set up again a watch of the policy directory; changes are seen at the reconcile interval until one succeeds.",
	})
	reg.MustRegister(c)
	return c
}

// Source is a policy root in a local directory.
type Source struct {
	dir  string // absolute directory the source was made with
	root string // absolute policy root, symbolic links not resolved
	opts Options
	log  *slog.Logger
	mu   sync.Mutex
	git  gitState // of the root as last resolved; guarded by mu
	// problem is the watch's unrepaired problem (WatchProblem).
	problem atomic.Pointer[source.WatchProblem]
	// fetchMu serializes Fetch; scan is what the last fetch read, for the
	// next, guarded by fetchMu.
	fetchMu sync.Mutex
	scan    scanState
	// newWatcher makes Watch's fsnotify watcher; nil: fsnotify.NewWatcher.
	// Tests set it to reach the watcher.
	newWatcher func() (*fsnotify.Watcher, error)
}

// scanState is what the last fetch read: the files, kept by a Rescan of
// the root resolved as realRoot, and whether they matched the commit.
type scanState struct {
	realRoot string
	rescan   source.Rescan
	// matched: the files of digest were those of commit's tree, or not.
	commit  string
	digest  source.Digest
	matched bool
}

// gitState is the git repository around a resolved policy root.
type gitState struct {
	realRoot string // the root, symbolic links resolved, it was found for
	// repo is the git repository around the root, or nil outside git.
	// prefix is the root relative to its work tree.
	repo   *gitrepo.Repo
	prefix string
}

var (
	_ source.Source      = (*Source)(nil)
	_ source.Watcher     = (*Source)(nil)
	_ source.WatchHealth = (*Source)(nil)
	_ source.Ancestry    = (*Source)(nil)
)

// New returns a source for the policy root dir/opts.Path, which must be a
// directory. Whether it lies in a git work tree is decided here, and again
// whenever the root, its symbolic links resolved, is another directory (a
// link swapped to another work tree).
func New(dir string, opts Options) (*Source, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("policy source: %w", err)
	}
	root := filepath.Join(absDir, filepath.FromSlash(opts.Path))
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("policy source: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("policy source %s is not a directory", root)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	opts.MaxWait = max(opts.MaxWait, opts.Debounce)
	s := &Source{dir: absDir, root: root, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("policy source: %w", err)
	}
	if _, err := s.gitFor(realRoot); err != nil {
		return nil, fmt.Errorf("policy source: %w", err)
	}
	return s, nil
}

// gitFor returns the git state of the root resolved as realRoot, opening
// the repository again when the root resolved to another directory before.
func (s *Source) gitFor(realRoot string) (gitState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.git.realRoot == realRoot {
		return s.git, nil
	}
	// Opened through the unresolved root, as when the source was made (a
	// link swapped since realRoot was resolved is seen at the next fetch).
	g := gitState{realRoot: realRoot}
	repo, err := gitrepo.Open(s.root)
	switch {
	case errors.Is(err, gitrepo.ErrNotRepository):
	case err != nil:
		return gitState{}, err
	case repo.WorkTree() != "":
		prefix, err := relativeTo(repo.WorkTree(), s.root)
		if err != nil {
			return gitState{}, err
		}
		g.repo, g.prefix = repo, prefix
	}
	s.git = g
	return g, nil
}

// Repository returns the git repository around the policy root as the
// last Fetch resolved it, or nil outside git: where the commit of the
// revision it returned can be read (reconciler.CommitSource).
func (s *Source) Repository() *gitrepo.Repo { return s.repo() }

// repo returns the git repository of the root as last resolved, or nil.
func (s *Source) repo() *gitrepo.Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.git.repo
}

// relativeTo returns path p relative to top, slash-separated, with
// symbolic links resolved on both sides.
func relativeTo(top, p string) (string, error) {
	realTop, err := filepath.EvalSymlinks(top)
	if err != nil {
		return "", err
	}
	realP, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(realTop, realP)
	if err != nil {
		return "", err
	}
	if rel == "." {
		return "", nil
	}
	return filepath.ToSlash(rel), nil
}

// String returns "dir:" and the policy root.
func (s *Source) String() string { return "dir:" + s.root }

// Fetch reads the policy files and names their revision.
func (s *Source) Fetch(ctx context.Context) (source.Revision, fs.FS, error) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	realRoot, err := filepath.EvalSymlinks(s.root)
	if err != nil {
		return source.Revision{}, nil, fmt.Errorf("read %s: %w", s.root, err)
	}
	g, err := s.gitFor(realRoot)
	if err != nil {
		return source.Revision{}, nil, fmt.Errorf("%s: %w", s.root, err)
	}
	files, err := s.read(ctx, realRoot)
	if err != nil {
		return source.Revision{}, nil, err
	}
	d := files.Digest()
	rev := source.Revision{ID: d.ID(), Key: d.String(), Signature: source.Signature{Status: source.SignatureNone}}
	if g.repo == nil {
		return rev, files.FS(), nil
	}
	head, err := g.repo.Head(ctx)
	if errors.Is(err, gitrepo.ErrNoCommit) {
		return rev, files.FS(), nil
	}
	if err != nil {
		return source.Revision{}, nil, fmt.Errorf("%s: %w", s.root, err)
	}
	c, err := g.repo.Commit(ctx, head.Hash)
	if err != nil {
		return source.Revision{}, nil, fmt.Errorf("%s: %w", s.root, err)
	}
	rev.ID = c.Hash
	rev.Subject = c.Subject
	rev.Author = source.Person{Name: c.Author.Name, Email: c.Author.Email}
	rev.Committer = source.Person{Name: c.Committer.Name, Email: c.Committer.Email}
	rev.CommitTime = c.Committer.When.UTC()
	rev.Parents = c.Parents
	same, err := s.matches(ctx, g, c.Hash, files, d)
	if err != nil {
		return source.Revision{}, nil, fmt.Errorf("%s: %w", s.root, err)
	}
	if !same {
		rev.ID += "+dirty." + d.Short()
	}
	return rev, files.FS(), nil
}

// matches reports whether files, of digest d, are those of commit's tree
// below the root, remembering the answer for the same commit and content:
// a commit's tree never changes.
func (s *Source) matches(ctx context.Context, g gitState, commit string, files *source.Files, d source.Digest) (bool, error) {
	if s.scan.commit == commit && s.scan.digest == d {
		return s.scan.matched, nil
	}
	same, err := g.repo.Matches(ctx, commit, g.prefix, files.FS())
	if err != nil {
		return false, err
	}
	s.scan.commit, s.scan.digest, s.scan.matched = commit, d, same
	return same, nil
}

// read collects the policy files below the root, resolved as realRoot,
// reading only those that changed since the last fetch of the same
// directory (source.Rescan).
func (s *Source) read(ctx context.Context, realRoot string) (*source.Files, error) {
	if s.scan.realRoot != realRoot {
		s.scan = scanState{realRoot: realRoot} // another directory, maybe another work tree
	}
	// Through an os.Root, opened without blocking (schema.RootFS): the rule
	// of what may be read resolves every symbolic link itself, and the Root
	// keeps a link made between that and the open from leading out of the
	// root.
	root, err := os.OpenRoot(realRoot)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.root, err)
	}
	defer root.Close()
	files, err := s.scan.rescan.ReadFS(ctx, schema.RootFS(root), s.opts.Limits)
	if err != nil {
		var ce *source.ContentError
		if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", s.root, err)
	}
	// Files that vanish during the walk are skipped as removed; the root
	// vanishing is a failed fetch, not an empty policy.
	if _, err := os.Stat(realRoot); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.root, err)
	}
	return files, nil
}

// Includes reports whether served is min or descends from it in the
// repository around the directory (gitrepo.Repo.Includes). A "+dirty."
// revision includes what its commit includes. Outside git only the same
// revision includes min.
func (s *Source) Includes(ctx context.Context, served, min string) (bool, error) {
	base, _, _ := strings.Cut(served, "+dirty")
	if served == min || base == min {
		return true, nil
	}
	repo := s.repo()
	if repo == nil {
		return false, nil
	}
	return repo.Includes(ctx, base, min)
}
