package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"

	"github.com/charter-policy/charter/schema"
	"github.com/fsnotify/fsnotify"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// DefaultDebounce is how long a directory must stay quiet before a reload.
const DefaultDebounce = 200 * time.Millisecond

// maxPolicyBytes bounds what a directory source reads in one fetch.
const maxPolicyBytes = 1 << 30

// DirSource is a policy root in a local directory, watched with fsnotify.
type DirSource struct {
	dir      string // the policy root: --source joined with --path
	debounce time.Duration
	log      *slog.Logger
}

// NewDirSource returns a source for the policy root dir/subpath.
func NewDirSource(dir, subpath string, debounce time.Duration, log *slog.Logger) (*DirSource, error) {
	root := filepath.Join(dir, filepath.FromSlash(subpath))
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("policy source: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("policy source %s is not a directory", root)
	}
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DirSource{dir: root, debounce: debounce, log: log}, nil
}

func (d *DirSource) String() string { return "dir:" + d.dir }

// Fetch reads the policy files into memory and names their revision: the
// HEAD commit of the enclosing git work tree, with "+dirty" when a policy
// file differs from that commit, else a hash of the content.
func (d *DirSource) Fetch(ctx context.Context) (Revision, fs.FS, error) {
	files, hash, err := readPolicyFiles(ctx, os.DirFS(d.dir))
	if err != nil {
		return Revision{}, nil, fmt.Errorf("read %s: %w", d.dir, err)
	}
	rev, err := gitRevision(d.dir, files)
	switch {
	case err != nil:
		return Revision{}, nil, err
	case rev.ID == "":
		rev.ID = "sha256:" + hash[:16]
		rev.Key = rev.ID
	case strings.HasSuffix(rev.ID, "+dirty"):
		rev.Key = rev.ID + "@" + hash
	default:
		rev.Key = rev.ID
	}
	return rev, files, nil
}

// readPolicyFiles reads every policy file of root into memory and hashes them.
func readPolicyFiles(ctx context.Context, root fs.FS) (fstest.MapFS, string, error) {
	files := fstest.MapFS{}
	h := sha256.New()
	total := 0
	err := fs.WalkDir(root, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			if schema.SkipDir(name) {
				return fs.SkipDir
			}
			return nil
		}
		if !schema.IsPolicyFile(name) {
			return nil
		}
		data, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		if total += len(data); total > maxPolicyBytes {
			return fmt.Errorf("policy files exceed %d bytes", maxPolicyBytes)
		}
		files[name] = &fstest.MapFile{Data: data, Mode: 0o444}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// gitRevision returns the revision of the git work tree around dir, or a
// zero Revision when dir is not in one.
func gitRevision(dir string, files fstest.MapFS) (Revision, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return Revision{}, nil
	}
	if err != nil {
		return Revision{}, fmt.Errorf("open git repository around %s: %w", dir, err)
	}
	head, err := repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Revision{}, nil // no commit yet: content hash
	}
	if err != nil {
		return Revision{}, fmt.Errorf("git HEAD of %s: %w", dir, err)
	}
	commit, err := repo.CommitObject(head.Hash())
	if err != nil {
		return Revision{}, fmt.Errorf("git commit %s: %w", head.Hash(), err)
	}
	rev := Revision{ID: head.Hash().String(), CommitTime: commit.Committer.When.UTC(), Author: commit.Author.Name}
	wt, err := repo.Worktree()
	if err != nil {
		return Revision{}, fmt.Errorf("git work tree of %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Revision{}, err
	}
	top, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return Revision{}, err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	rel, err := filepath.Rel(top, abs)
	if err != nil {
		return Revision{}, err
	}
	tree, err := commit.Tree()
	if err != nil {
		return Revision{}, fmt.Errorf("git tree of %s: %w", head.Hash(), err)
	}
	dirty, err := differsFromTree(tree, filepath.ToSlash(rel), files)
	if err != nil {
		return Revision{}, err
	}
	if dirty {
		rev.ID += "+dirty"
	}
	return rev, nil
}

// differsFromTree reports whether the policy files differ from those under
// prefix in the commit's tree: a changed, added or removed policy file.
func differsFromTree(tree *object.Tree, prefix string, files fstest.MapFS) (bool, error) {
	if prefix == "." {
		prefix = ""
	}
	sub := tree
	if prefix != "" {
		t, err := tree.Tree(prefix)
		if errors.Is(err, object.ErrDirectoryNotFound) {
			return len(files) > 0, nil
		}
		if err != nil {
			return false, fmt.Errorf("git tree %s: %w", prefix, err)
		}
		sub = t
	}
	seen := 0
	walker := object.NewTreeWalker(sub, true, nil)
	defer walker.Close()
	for {
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("walk git tree: %w", err)
		}
		if !entry.Mode.IsFile() || !schema.IsPolicyFile(name) {
			continue
		}
		f, ok := files[name]
		if !ok {
			return true, nil // deleted in the work tree
		}
		if plumbing.ComputeHash(plumbing.BlobObject, f.Data) != entry.Hash {
			return true, nil
		}
		seen++
	}
	return seen != len(files), nil // an added file
}

// Watch watches the policy root and every directory below it (fsnotify does
// not recurse; new directories are added as they appear) and calls changed
// once the tree has been quiet for the debounce interval.
func (d *DirSource) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", d.dir, err)
	}
	defer w.Close()
	if err := d.addTree(w, d.dir); err != nil {
		return err
	}
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
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() && !strings.HasPrefix(filepath.Base(ev.Name), ".") {
					if err := d.addTree(w, ev.Name); err != nil {
						d.log.Warn("watch new directory", "dir", ev.Name, "err", err)
					}
				}
			}
			timer.Reset(d.debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			d.log.Warn("watch policy directory", "err", err)
			timer.Reset(d.debounce) // events may be lost: reload to be safe
		case <-timer.C:
			changed()
		}
	}
}

// addTree adds dir and every non-hidden directory below it to the watcher.
func (d *DirSource) addTree(w *fsnotify.Watcher, dir string) error {
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
		if rel, err := filepath.Rel(d.dir, p); err == nil && schema.SkipDir(filepath.ToSlash(rel)) {
			return fs.SkipDir
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

// Includes reports whether the served revision is min or a descendant of it
// in the git repository around the directory (for Charter-Min-Revision).
// A "+dirty" revision includes what its commit includes.
func (d *DirSource) Includes(served, min string) bool {
	served = strings.TrimSuffix(served, "+dirty")
	if served == min {
		return true
	}
	if !plumbing.IsHash(served) || !plumbing.IsHash(min) {
		return false
	}
	repo, err := git.PlainOpenWithOptions(d.dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return false
	}
	head, err := repo.CommitObject(plumbing.NewHash(served))
	if err != nil {
		return false
	}
	base, err := repo.CommitObject(plumbing.NewHash(min))
	if err != nil {
		return false
	}
	ok, err := base.IsAncestor(head)
	return err == nil && ok
}
