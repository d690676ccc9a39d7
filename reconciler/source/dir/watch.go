package dir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/schema"
)

// Watch calls changed after each change to the policy files or to what
// HEAD points at, debounced (see the package documentation), until ctx is
// done. It returns an error only when the watch cannot be set up.
func (s *Source) Watch(ctx context.Context, changed func()) error {
	realRoot, err := filepath.EvalSymlinks(s.root)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.root, err)
	}
	defer w.Close()
	if err := addTree(w, realRoot, realRoot); err != nil {
		return err
	}
	var g *gitWatch
	if s.repo != nil {
		g = &gitWatch{repo: s.repo, w: w, dirs: map[string]bool{}}
		if err := g.sync(ctx); err != nil {
			return fmt.Errorf("watch %s: %w", s.root, err)
		}
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
			if g != nil && g.owns(ev.Name) {
				if !g.relevant(ev.Name) {
					continue // the index, logs, locks: nothing that moves HEAD
				}
				if err := g.sync(ctx); err != nil {
					s.log.Warn("watch git HEAD", "source", s.String(), "err", err)
				}
			} else if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					if err := addTree(w, realRoot, ev.Name); err != nil {
						s.log.Warn("watch new directory", "dir", ev.Name, "err", err)
					}
				}
			}
			timer.Reset(d.event(time.Now()))
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			s.log.Warn("watch policy directory", "source", s.String(), "err", err)
			timer.Reset(d.event(time.Now())) // events may be lost: reload to be safe
		case <-timer.C:
			d.fired()
			changed()
		}
	}
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

// addTree adds dir and every directory below it to the watcher, except
// those skipped relative to the policy root.
func addTree(w *fsnotify.Watcher, root, dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if !e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fs.SkipDir
		}
		if schema.SkipDir(filepath.ToSlash(rel)) {
			return fs.SkipDir
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
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
