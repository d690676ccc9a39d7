package gittest

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Remote is a bare repository (Bare), with branch main, and a work tree
// (Work) that commits and pushes to it with the git command-line tool, as
// a developer would.
type Remote struct {
	Bare string
	Work string
}

// NewRemote makes a bare repository below dir (dir/name.git, so that a git
// daemon or http-backend with dir as its root serves it as /name.git) and a
// work tree that pushes to it.
func NewRemote(t testing.TB, dir, name string) *Remote {
	t.Helper()
	r := &Remote{Bare: filepath.Join(dir, name+".git"), Work: filepath.Join(t.TempDir(), name)}
	Git(t, dir, "init", "-q", "--bare", "-b", "main", r.Bare)
	if err := os.MkdirAll(r.Work, 0o755); err != nil {
		t.Fatal(err)
	}
	Init(t, r.Work)
	Git(t, r.Work, "remote", "add", "origin", r.Bare)
	return r
}

// Set makes the work tree hold exactly files (slash-separated names and
// their content; every other file is removed), commits when that changes
// anything and pushes the branch. It returns the branch's commit.
func (r *Remote) Set(t testing.TB, files map[string]string, msg string) string {
	t.Helper()
	entries, err := os.ReadDir(r.Work)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(r.Work, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		WriteFile(t, r.Work, name, files[name])
	}
	Git(t, r.Work, "add", "-A")
	if Git(t, r.Work, "status", "--porcelain") != "" {
		Git(t, r.Work, "commit", "-q", "-m", msg)
	}
	return r.Push(t)
}

// Push pushes the work tree's branch main, with extra arguments to git push
// ("--force"), and returns its commit.
func (r *Remote) Push(t testing.TB, extra ...string) string {
	t.Helper()
	Git(t, r.Work, append([]string{"push", "-q", "origin", "main"}, extra...)...)
	return Git(t, r.Work, "rev-parse", "HEAD")
}
