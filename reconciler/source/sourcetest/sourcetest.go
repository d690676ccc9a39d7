// Package sourcetest is the conformance suite every policy source runs
// (package source): the files a fetch returns, how revisions are named and
// when they change, cancellation, descriptions without credentials, and,
// for the capabilities a source has, watching and ancestry.
//
// A source's test calls Run with a Harness that makes the source over
// given files and, when the source can change, changes them:
//
//	func TestConformance(t *testing.T) {
//		sourcetest.Run(t, sourcetest.Harness{New: func(t *testing.T, files map[string]string) sourcetest.Fixture { ... }})
//	}
package sourcetest

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema"
)

// Harness makes sources for the suite.
type Harness struct {
	// New returns a source over files (slash-separated names relative to
	// the policy root, and their content) in a fresh place.
	New func(t *testing.T, files map[string]string) Fixture
	// IDPattern matches every revision ID the source gives for content
	// that is not a commit. Nil: any non-empty ID.
	IDPattern *regexp.Regexp
	// Secret, when not empty, is a credential New configures every source
	// with; String must never show it.
	Secret string
	// Commits says that the source follows commits only (a branch of a
	// remote): Fixture.Set commits and pushes its change, so every revision
	// ID is a commit, a commit that changes no policy file has a new ID with
	// the same Key, and there is no uncommitted content (Fixture.Commit is
	// nil).
	Commits bool
}

// Fixture is a source made by Harness.New and what the suite may do to it.
type Fixture struct {
	Source source.Source
	// Set replaces the source's content with files, removing the policy
	// files not listed (work tree edits for a git-backed source, not
	// commits; a commit, pushed, when Harness.Commits, and none when
	// nothing changed). Nil: the content cannot change; the tests that
	// change it are skipped.
	Set func(files map[string]string)
	// Commit, when not nil, commits the current content and returns the
	// new commit's ID, which the next fetch must report.
	Commit func() string
}

// Timeouts of the suite; generous, for a loaded machine under -race.
const (
	watchTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// corpus is a policy root with files of every kind the selection rule
// must tell apart.
func corpus() map[string]string {
	return map[string]string{
		"roles.cue":                 "package policies\n\nroles: {}\n",
		"teams/a/records.json":      `{"records": {}}`,
		"teams/b.yaml":              "groups: {}\n",
		"teams/c.yml":               "records: {}\n",
		"README.md":                 "# not policy\n",
		"notes.txt":                 "not policy\n",
		".hidden.cue":               "not policy: hidden file\n",
		".github/workflows/ci.yaml": "not policy: hidden directory\n",
		"teams/.draft/x.cue":        "not policy: hidden directory below\n",
		"cue.mod/module.cue":        "not policy: CUE's module directory\n",
	}
}

// policyOnly returns what a fetch of corpus must hold.
func policyOnly() map[string]string {
	all := corpus()
	out := map[string]string{}
	for _, name := range []string{"roles.cue", "teams/a/records.json", "teams/b.yaml", "teams/c.yml"} {
		out[name] = all[name]
	}
	return out
}

func with(files map[string]string, name, data string) map[string]string {
	out := maps.Clone(files)
	out[name] = data
	return out
}

func without(files map[string]string, name string) map[string]string {
	out := maps.Clone(files)
	delete(out, name)
	return out
}

// Run runs the conformance suite against the sources h makes.
func Run(t *testing.T, h Harness) {
	t.Run("FetchSelectsPolicyFiles", func(t *testing.T) { testSelects(t, h) })
	t.Run("EmptyRoot", func(t *testing.T) { testEmpty(t, h) })
	t.Run("SameContentSameRevision", func(t *testing.T) { testSame(t, h) })
	t.Run("ChangedContentNewKey", func(t *testing.T) { testChanged(t, h) })
	t.Run("FetchedFilesDoNotChange", func(t *testing.T) { testImmutable(t, h) })
	t.Run("FetchHonoursContext", func(t *testing.T) { testCancel(t, h) })
	t.Run("StringHasNoCredentials", func(t *testing.T) { testString(t, h) })
	t.Run("Watcher", func(t *testing.T) { testWatch(t, h) })
	t.Run("Ancestry", func(t *testing.T) { testAncestry(t, h) })
	t.Run("CommitWithoutChange", func(t *testing.T) { testCommitOnly(t, h) })
}

func fetch(t *testing.T, src source.Source) (source.Revision, map[string]string) {
	t.Helper()
	rev, fsys, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return rev, ReadAll(t, fsys)
}

// ReadAll returns every file of fsys, a source's fetched files, by name;
// a file that is not regular fails the test.
func ReadAll(t testing.TB, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			t.Errorf("fetched %s is not a regular file (%s)", name, d.Type())
		}
		data, err := fs.ReadFile(fsys, name)
		out[name] = string(data)
		return err
	})
	if err != nil {
		t.Fatalf("walk fetched files: %v", err)
	}
	return out
}

func checkFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	t.Errorf("fetched files %v\nwant %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	for name, data := range want {
		if g, ok := got[name]; ok && g != data {
			t.Errorf("%s = %q, want %q", name, g, data)
		}
	}
}

func checkID(t *testing.T, h Harness, rev source.Revision) {
	t.Helper()
	if rev.ID == "" || rev.Key == "" {
		t.Fatalf("revision %+v has an empty ID or Key", rev)
	}
	if h.IDPattern != nil && !h.IDPattern.MatchString(rev.ID) {
		t.Errorf("revision ID %q does not match %s", rev.ID, h.IDPattern)
	}
}

func testSelects(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	rev, got := fetch(t, f.Source)
	checkID(t, h, rev)
	checkFiles(t, got, policyOnly())
	_, fsys, err := f.Source.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, "roles.cue", "teams/a/records.json", "teams/b.yaml", "teams/c.yml"); err != nil {
		t.Errorf("fetched files are not a well-behaved fs.FS: %v", err)
	}
}

func testEmpty(t *testing.T, h Harness) {
	f := h.New(t, map[string]string{"README.md": "nothing here yet\n"})
	rev, got := fetch(t, f.Source)
	checkID(t, h, rev)
	checkFiles(t, got, map[string]string{})
}

func testSame(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	first, _ := fetch(t, f.Source)
	second, _ := fetch(t, f.Source)
	if first.ID != second.ID || first.Key != second.Key {
		t.Errorf("two fetches of the same content: %s (%s) and %s (%s)", first.ID, first.Key, second.ID, second.Key)
	}
	if f.Set == nil {
		return
	}
	f.Set(corpus()) // rewritten, byte for byte the same
	again, _ := fetch(t, f.Source)
	if again.ID != first.ID || again.Key != first.Key {
		t.Errorf("rewriting the same content changed the revision: %s → %s", first.ID, again.ID)
	}
	f.Set(with(corpus(), "README.md", "# edited, but not policy\n"))
	other, _ := fetch(t, f.Source)
	switch {
	case other.Key != first.Key:
		t.Errorf("editing a file that is not policy changed the Key: %s → %s", first.Key, other.Key)
	case h.Commits && other.ID == first.ID:
		t.Errorf("a new commit kept the revision ID %s", first.ID)
	case !h.Commits && other.ID != first.ID:
		t.Errorf("editing a file that is not policy changed the revision: %s → %s", first.ID, other.ID)
	}
}

func testChanged(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	if f.Set == nil {
		t.Skip("the source's content cannot change")
	}
	first, _ := fetch(t, f.Source)
	steps := []struct {
		name  string
		files map[string]string
	}{
		{"edit", with(corpus(), "teams/b.yaml", "groups: {g: {name: \"G\", users: []}}\n")},
		{"add", with(corpus(), "teams/new.cue", "package policies\n")},
		{"remove", without(corpus(), "teams/c.yml")},
		{"rename", without(with(corpus(), "teams/d.yml", corpus()["teams/c.yml"]), "teams/c.yml")},
	}
	seen := map[string]string{first.Key: "the first content"}
	for _, st := range steps {
		f.Set(st.files)
		rev, got := fetch(t, f.Source)
		checkID(t, h, rev)
		if rev.ID == first.ID {
			t.Errorf("%s: the revision ID stayed %s", st.name, rev.ID)
		}
		if prev, dup := seen[rev.Key]; dup {
			t.Errorf("%s: Key %s is the same as for %s", st.name, rev.Key, prev)
		}
		seen[rev.Key] = st.name
		want := map[string]string{}
		for name, data := range st.files {
			if schema.IsPolicyFile(name) {
				want[name] = data
			}
		}
		checkFiles(t, got, want)
	}
	// Back to the first content: the Key is the content's (and, outside
	// commits, so is the ID).
	f.Set(corpus())
	back, _ := fetch(t, f.Source)
	if back.Key != first.Key || back.ID != first.ID && !h.Commits || back.ID == first.ID && h.Commits {
		t.Errorf("back to the first content: %s (%s), first %s (%s)", back.ID, back.Key, first.ID, first.Key)
	}
}

func testImmutable(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	_, fsys, err := f.Source.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := ReadAll(t, fsys)
	if f.Set != nil {
		f.Set(with(without(corpus(), "roles.cue"), "teams/b.yaml", "groups: {}\n# changed\n"))
		if _, _, err := f.Source.Fetch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	checkFiles(t, ReadAll(t, fsys), before)
}

func testCancel(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := f.Source.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch with a cancelled context = %v, want context.Canceled", err)
	}
}

// userinfo matches credentials in a URL ("https://user:token@host").
var userinfo = regexp.MustCompile(`://[^/@\s]+:[^/@\s]+@`)

func testString(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	s := f.Source.String()
	if s == "" {
		t.Error("String() is empty")
	}
	if h.Secret != "" && strings.Contains(s, h.Secret) {
		t.Errorf("String() = %q shows the secret", s)
	}
	if userinfo.MatchString(s) {
		t.Errorf("String() = %q shows URL credentials", s)
	}
}

func testWatch(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	w, ok := f.Source.(source.Watcher)
	if !ok {
		t.Skip("the source is not a source.Watcher")
	}
	if f.Set == nil {
		t.Fatal("a source.Watcher whose content cannot change")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int64
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, func() { calls.Add(1) }) }()

	// The watch may not be set up yet when the first edit lands: edit
	// again until it is noticed.
	deadline := time.Now().Add(watchTimeout)
	for i := 0; calls.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("changed was not called after edits")
		}
		f.Set(with(corpus(), "teams/b.yaml", "groups: {}\n# edit "+strings.Repeat("x", i)+"\n"))
		wait(&calls, 0, 500*time.Millisecond)
	}
	// An edit in a directory made after the watch started is noticed too.
	n := calls.Load()
	deadline = time.Now().Add(watchTimeout)
	for i := 0; calls.Load() == n; i++ {
		if time.Now().After(deadline) {
			t.Fatal("changed was not called after an edit in a new directory")
		}
		f.Set(with(corpus(), "teams/new/deep/x.json", `{"n": `+strings.Repeat("1", i+1)+`}`))
		wait(&calls, n, 500*time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v after its context ended, want nil", err)
		}
	case <-time.After(stopTimeout):
		t.Fatal("Watch did not return after its context ended")
	}
}

// wait polls until calls exceeds n or d passes.
func wait(calls *atomic.Int64, n int64, d time.Duration) {
	for end := time.Now().Add(d); calls.Load() == n && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
}

const unknownCommit = "0123456789abcdef0123456789abcdef01234567"

func testAncestry(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	a, ok := f.Source.(source.Ancestry)
	if !ok {
		t.Skip("the source is not a source.Ancestry")
	}
	ctx := context.Background()
	includes := func(served, min string, want bool) {
		t.Helper()
		if got, err := a.Includes(ctx, served, min); err != nil || got != want {
			t.Errorf("Includes(%s, %s) = %v, %v, want %v", served, min, got, err, want)
		}
	}
	rev, _ := fetch(t, f.Source)
	includes(rev.ID, rev.ID, true)
	includes(rev.ID, unknownCommit, false)
	if h.Commits {
		f.Set(with(corpus(), "teams/b.yaml", "groups: {}\n# one\n"))
		c1, _ := fetch(t, f.Source)
		f.Set(with(corpus(), "teams/b.yaml", "groups: {}\n# two\n"))
		c2, _ := fetch(t, f.Source)
		if len(c2.Parents) == 0 || c2.Parents[0] != c1.ID {
			t.Errorf("the second commit's parents are %v, want %s first", c2.Parents, c1.ID)
		}
		includes(c2.ID, c1.ID, true)
		includes(c2.ID, c1.ID[:12], true)
		includes(c2.ID, rev.ID, true)
		includes(c1.ID, c2.ID, false)
		includes(c2.ID, "main", false) // a branch name is not a revision
		return
	}
	if f.Commit == nil {
		return
	}
	f.Set(with(corpus(), "teams/b.yaml", "groups: {}\n# one\n"))
	c1 := f.Commit()
	f.Set(with(corpus(), "teams/b.yaml", "groups: {}\n# two\n"))
	c2 := f.Commit()
	if rev, _ := fetch(t, f.Source); rev.ID != c2 {
		t.Fatalf("after a commit the revision is %s, want %s", rev.ID, c2)
	}
	includes(c2, c1, true)
	includes(c1, c2, false)
	f.Set(with(corpus(), "teams/b.yaml", "groups: {}\n# three, not committed\n"))
	dirty, _ := fetch(t, f.Source)
	if !strings.HasPrefix(dirty.ID, c2+"+dirty.") {
		t.Fatalf("an uncommitted edit: revision %s, want %s+dirty.…", dirty.ID, c2)
	}
	includes(dirty.ID, c1, true)
	includes(dirty.ID, c2, true)
	includes(c2, dirty.ID, false)
}

func testCommitOnly(t *testing.T, h Harness) {
	f := h.New(t, corpus())
	if h.Commits {
		first, _ := fetch(t, f.Source)
		f.Set(with(corpus(), "notes.txt", "a commit that changes no policy file\n"))
		rev, _ := fetch(t, f.Source)
		if rev.ID == first.ID || rev.Key != first.Key {
			t.Errorf("a commit that changes no policy file: revision %s (%s), want a new ID with Key %s", rev.ID, rev.Key, first.Key)
		}
		if rev.CommitTime.IsZero() || rev.Author.Name == "" || rev.Subject == "" || len(rev.Parents) == 0 || rev.Parents[0] != first.ID {
			t.Errorf("a commit's revision lacks metadata: %+v", rev)
		}
		return
	}
	if f.Commit == nil {
		t.Skip("the source has no commits")
	}
	f.Set(with(corpus(), "roles.cue", "package policies\n\nroles: {} // edited\n"))
	dirty, _ := fetch(t, f.Source)
	c := f.Commit()
	rev, _ := fetch(t, f.Source)
	if rev.ID != c || rev.Key != dirty.Key {
		t.Errorf("commit of the served edit: revision %s (%s), want %s with the same Key %s", rev.ID, rev.Key, c, dirty.Key)
	}
	if rev.CommitTime.IsZero() || rev.Author.Name == "" || rev.Subject == "" || len(rev.Parents) == 0 {
		t.Errorf("a commit's revision lacks metadata: %+v", rev)
	}
}
