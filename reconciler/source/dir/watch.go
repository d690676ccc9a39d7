package dir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema"
)

// Watch calls changed after each change to the policy files or to what
// HEAD points at, debounced (see the package documentation), until ctx is
// done. It returns an error only when the watch cannot be set up.
//
// Besides the tree it watches the directories holding the root's path (the
// root's parent, and up to the directory the source was made with), so
// that a root removed and made again, or a symbolic link swapped to another
// directory (git-sync), is noticed. A watched directory removed or renamed
// below the root, a root or a link on its path replaced, or an overflow of
// fsnotify's queue marks the watch stale: before the next report, the root
// is resolved again and the whole tree watched afresh. A watch that cannot
// be made again is logged, counted (Options.WatchErrors) and reported by
// WatchProblem, and tried again after 1 s, doubling to a minute, until it
// is whole again; the reconciler's interval rescans in the meantime.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	newWatcher := fsnotify.NewWatcher
	if s.newWatcher != nil {
		newWatcher = s.newWatcher
	}
	w, err := newWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	defer w.Close()
	s.problem.Store(nil)
	t := &treeWatch{s: s, w: w, tree: map[string]bool{}, path: s.path()}
	tree, anchors := t.resync()
	if tree != nil {
		return fmt.Errorf("watch %s: %w", s.root, tree)
	}
	g, err := s.watchGit(ctx, w, t.realRoot)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	var rep repairs
	defer rep.stop()
	if anchors != nil {
		s.watchError("watch the policy root's parent", anchors)
		t.stale = true
		rep.failed()
	}
	d := debouncer{quiet: s.opts.Debounce, max: s.opts.MaxWait}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if g != nil && g.owns(ev.Name) && !t.onPath(ev.Name) {
				if !g.relevant(ev.Name) {
					continue // the index, logs, locks: nothing that moves HEAD
				}
				if err := g.sync(ctx); err != nil {
					s.watchError("watch git HEAD", err)
					t.stale = true // set up again before the report
				}
			} else if !t.event(ev) {
				continue
			}
			timer.Reset(d.event(time.Now()))
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow lost events; any other error may have lost a
			// watch. Either way: watch the tree afresh, and reload.
			s.log.Warn("watch policy directory: rescanning", "source", s.String(), "err", err)
			t.stale = true
			timer.Reset(d.event(time.Now()))
		case <-timer.C:
			d.fired()
			if t.stale {
				g = s.rewatch(ctx, t, g, &rep)
			}
			changed()
		case <-rep.C():
			rep.fired()
			if !t.stale {
				continue // set up again by a report meanwhile
			}
			// What changed while the watch was down was not seen: report
			// once it is whole again.
			if g = s.rewatch(ctx, t, g, &rep); !t.stale {
				changed()
			}
		}
	}
}

// The delays between attempts to set up again a watch that could not be:
// the first comes minRepairDelay after the failure, each next one after
// twice the delay before, at most maxRepairDelay.
const (
	minRepairDelay = time.Second
	maxRepairDelay = time.Minute
)

// repairs schedules the attempts to set up again a watch that could not be:
// minRepairDelay after the first failure, doubling to maxRepairDelay.
type repairs struct {
	delay time.Duration // of the attempt scheduled last; 0 after a success
	timer *time.Timer   // nil when no attempt is scheduled
}

// failed schedules the next attempt after a failed one.
func (r *repairs) failed() {
	r.stop()
	r.delay = min(max(2*r.delay, minRepairDelay), maxRepairDelay)
	r.timer = time.NewTimer(r.delay)
}

// succeeded cancels the attempts and resets the delay.
func (r *repairs) succeeded() {
	r.stop()
	r.delay = 0
}

// fired records that the scheduled attempt is being made.
func (r *repairs) fired() { r.timer = nil }

// stop cancels the scheduled attempt, if any.
func (r *repairs) stop() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// C returns the channel of the scheduled attempt; nil (never ready) when
// none is scheduled.
func (r *repairs) C() <-chan time.Time {
	if r.timer == nil {
		return nil
	}
	return r.timer.C
}

// rewatch resolves the root again and watches the anchors, the tree and
// git's HEAD afresh, and returns git's new watch. When a part cannot be
// watched, the problem is reported (watchError), the watch stays stale and
// another attempt is scheduled; when every part is watched, a problem
// reported before is cleared.
func (s *Source) rewatch(ctx context.Context, t *treeWatch, g *gitWatch, rep *repairs) *gitWatch {
	// The root may be another directory now, in another work tree: git's
	// watch is made again after the tree's.
	g.stop()
	whole := true
	tree, anchors := t.resync()
	if tree != nil {
		s.watchError("watch policy directory", tree)
		whole = false
	}
	if anchors != nil {
		s.watchError("watch the policy root's parent", anchors)
		whole = false
	}
	g, err := s.watchGit(ctx, t.w, t.realRoot)
	if err != nil {
		s.watchError("watch git HEAD", err)
		whole = false
	}
	if !whole {
		t.stale = true
		rep.failed()
		return g
	}
	rep.succeeded()
	if s.problem.Swap(nil) != nil {
		s.log.Info("watch of the policy directory set up again", "source", s.String())
	}
	return g
}

// watchGit returns a watch of what moves HEAD in the git work tree around
// the root resolved as realRoot, or nil outside git.
func (s *Source) watchGit(ctx context.Context, w *fsnotify.Watcher, realRoot string) (*gitWatch, error) {
	gs, err := s.gitFor(realRoot)
	if err != nil || gs.repo == nil {
		return nil, err
	}
	g := &gitWatch{repo: gs.repo, w: w, dirs: map[string]bool{}}
	return g, g.sync(ctx)
}

// watchError logs err at warn, counts it in Options.WatchErrors and keeps
// it as the WatchProblem: a watch could not be set up again, changes may be
// missed until it can.
func (s *Source) watchError(msg string, err error) {
	s.log.Warn(msg, "source", s.String(), "err", err)
	if s.opts.WatchErrors != nil {
		s.opts.WatchErrors.Inc()
	}
	s.problem.Store(&source.WatchProblem{At: time.Now().UTC(), Message: msg + ": " + err.Error()})
}

// WatchProblem returns the problem of a watch that could not be set up
// again, until it is whole again; nil while Watch is not running or its
// watch is whole.
func (s *Source) WatchProblem() *source.WatchProblem { return s.problem.Load() }

// path returns the lexical paths from the root up to the directory the
// source was made with, the root first: the names whose replacement
// changes what the root is.
func (s *Source) path() []string {
	out := []string{s.root}
	if rel, err := filepath.Rel(s.dir, s.root); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return out // --path leads out of the directory: the root alone
	}
	for p := s.root; p != s.dir; {
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
		out = append(out, p)
	}
	return out
}

// treeWatch is the part of a watch that follows the policy tree and the
// root's identity. Only Watch's goroutine uses it.
type treeWatch struct {
	s *Source
	w *fsnotify.Watcher
	// path is Source.path; its parents are watched (anchors), so that an
	// entry on the path replaced is seen. anchored are those watched.
	path     []string
	anchored []string
	// realRoot is the root with symbolic links resolved when last watched;
	// tree the directories watched below it (realRoot included).
	realRoot string
	tree     map[string]bool
	// stale says that watches may have been lost: resync before the next
	// report.
	stale bool
}

// event takes an event that is not git's and tells whether it may change
// the policy: an event in an anchor directory only when it names an entry
// of the root's path.
func (t *treeWatch) event(ev fsnotify.Event) bool {
	if t.onPath(ev.Name) {
		t.stale = true // the root, or a link or directory on its way, replaced
		return true
	}
	if slices.Contains(t.anchored, filepath.Dir(ev.Name)) && !t.under(ev.Name) {
		return false // a sibling of an entry of the root's path
	}
	switch {
	case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
		if t.tree[ev.Name] {
			// A watched directory removed or moved: its watch, and its
			// subdirectories', are gone or hold a stale name (inotify keeps
			// a moved directory's watch under its old name).
			t.stale = true
		}
	case ev.Has(fsnotify.Create):
		if info, err := os.Stat(ev.Name); err == nil && info.IsDir() && t.under(ev.Name) {
			if err := t.addTree(ev.Name); err != nil {
				t.s.watchError("watch new directory", err)
				t.stale = true // set up again before the report
			}
		}
	}
	return true
}

// onPath reports whether name is the root or an entry on its path (which an
// anchor directory, git's own included, may report).
func (t *treeWatch) onPath(name string) bool { return slices.Contains(t.path, name) }

// under reports whether p is the resolved root or below it.
func (t *treeWatch) under(p string) bool {
	return p == t.realRoot || strings.HasPrefix(p, t.realRoot+string(filepath.Separator))
}

// resync resolves the root again and watches the anchors and the whole
// tree afresh. The report that follows it fetches everything, so what
// changes while the watches are down is not missed. It returns the tree's
// error, which leaves the tree unwatched, and apart the anchors' (those
// that could not be watched), which the tree's watch works without.
func (t *treeWatch) resync() (tree, anchors error) {
	t.stale = false
	for _, a := range t.anchored {
		_ = t.w.Remove(a) // re-added below: it may lead through a swapped link
	}
	t.anchored = t.anchored[:0]
	var failed []error
	for _, p := range t.path {
		a := filepath.Dir(p)
		if a == p {
			continue
		}
		if err := t.w.Add(a); err != nil {
			failed = append(failed, fmt.Errorf("watch %s: %w", a, err))
			continue
		}
		t.anchored = append(t.anchored, a)
	}
	anchors = errors.Join(failed...)
	// Remove every watch before adding again: a moved directory's inode
	// may be watched under its old name, and removing that name after the
	// new one is added would drop the new watch.
	for d := range t.tree {
		_ = t.w.Remove(d) // it may be gone already
	}
	clear(t.tree)
	realRoot, err := filepath.EvalSymlinks(t.s.root)
	if err != nil {
		return err, anchors
	}
	t.realRoot = realRoot
	return t.addTree(realRoot), anchors
}

// debouncer tells how long to wait after an event: the quiet interval, but
// never past max after the first event of a burst.
type debouncer struct {
	quiet, max time.Duration
	first      time.Time // of the pending burst; zero when none is pending
}

// event records an event at now and returns the delay until the report.
func (d *debouncer) event(now time.Time) time.Duration {
	if d.first.IsZero() {
		d.first = now
	}
	return max(0, min(d.quiet, d.max-now.Sub(d.first)))
}

// fired records that the pending burst was reported.
func (d *debouncer) fired() { d.first = time.Time{} }

// addTree watches dir and every directory below it, except those skipped
// relative to the resolved root. A directory removed meanwhile is skipped:
// its removal is an event of its parent.
func (t *treeWatch) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != t.realRoot {
				return nil // removed while we walked
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(t.realRoot, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fs.SkipDir
		}
		if schema.SkipDir(filepath.ToSlash(rel)) {
			return fs.SkipDir
		}
		if err := t.w.Add(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != t.realRoot {
				return fs.SkipDir
			}
			return fmt.Errorf("watch %s: %w", p, err)
		}
		t.tree[p] = true
		return nil
	})
}

// gitWatch watches the directories holding the files that move HEAD. Git
// replaces those files by renaming a new one over them, so their
// directories are watched, not the files.
type gitWatch struct {
	repo  *gitrepo.Repo
	w     *fsnotify.Watcher
	files gitrepo.HeadFiles
	dirs  map[string]bool // watched
}

// sync re-reads what HEAD points at and watches the directories that now
// matter: HEAD's, packed-refs', and the branch ref's (or, while that does
// not exist, its nearest existing parent, to see it appear).
func (g *gitWatch) sync(ctx context.Context) error {
	files, err := g.repo.HeadFiles(ctx)
	if err != nil {
		return err
	}
	g.files = files
	want := map[string]bool{filepath.Dir(files.Head): true, filepath.Dir(files.PackedRefs): true}
	if files.Ref != "" {
		d := filepath.Dir(files.Ref)
		for {
			if info, err := os.Stat(d); err == nil && info.IsDir() {
				break
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
		want[d] = true
	}
	for d := range g.dirs {
		if !want[d] {
			_ = g.w.Remove(d) // it may be gone already
			delete(g.dirs, d)
		}
	}
	for d := range want {
		// Add again even when watched: a directory that git removed (an
		// empty refs/heads/feature after pack-refs) lost its watch.
		if err := g.w.Add(d); err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
		g.dirs[d] = true
	}
	return nil
}

// stop removes g's watches; g may be nil.
func (g *gitWatch) stop() {
	if g == nil {
		return
	}
	for d := range g.dirs {
		_ = g.w.Remove(d) // it may be gone already
	}
	clear(g.dirs)
}

// owns reports whether an event at name comes from a git directory or is
// about one.
func (g *gitWatch) owns(name string) bool { return g.dirs[filepath.Dir(name)] || g.dirs[name] }

// relevant reports whether an event at name may have moved HEAD: it names
// HEAD, packed-refs, the branch ref, or a directory on the way to it.
func (g *gitWatch) relevant(name string) bool {
	switch name {
	case g.files.Head, g.files.PackedRefs, g.files.Ref:
		return true
	}
	return g.files.Ref != "" && strings.HasPrefix(g.files.Ref, name+string(filepath.Separator))
}
