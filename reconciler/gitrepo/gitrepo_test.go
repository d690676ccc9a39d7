package gitrepo

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/sourcetest"
)

var ctx = context.Background()

func open(t testing.TB, dir string) *Repo {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpen(t *testing.T) {
	plain := t.TempDir()
	if _, err := Open(plain); !errors.Is(err, ErrNotRepository) {
		t.Errorf("Open(a plain directory) = %v, want ErrNotRepository", err)
	}

	repo := t.TempDir()
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "policies/deep/roles.cue", "package p\n")
	gittest.CommitAll(t, repo, "first")
	r := open(t, filepath.Join(repo, "policies", "deep"))
	if got, want := evalSymlinks(t, r.WorkTree()), evalSymlinks(t, repo); got != want {
		t.Errorf("WorkTree() = %s, want %s", got, want)
	}

	bare := filepath.Join(t.TempDir(), "bare.git")
	gittest.Git(t, repo, "clone", "-q", "--bare", repo, bare)
	b := open(t, bare)
	if b.WorkTree() != "" {
		t.Errorf("a bare repository has work tree %q", b.WorkTree())
	}
	if h, err := b.Head(ctx); err != nil || h.Branch != "refs/heads/main" {
		t.Errorf("bare Head() = %+v, %v", h, err)
	}
}

func evalSymlinks(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHeadAndHeadFiles(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	r := open(t, repo)
	h, err := r.Head(ctx)
	if !errors.Is(err, ErrNoCommit) || h.Branch != "refs/heads/main" || h.Hash != "" {
		t.Fatalf("Head() of an empty repository = %+v, %v", h, err)
	}
	first := gittest.CommitAll(t, repo, "first")
	if h, err := r.Head(ctx); err != nil || h != (Head{Hash: first, Branch: "refs/heads/main"}) {
		t.Fatalf("Head() = %+v, %v, want %s on main", h, err, first)
	}
	files, err := r.HeadFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gitDir := filepath.Join(r.WorkTree(), ".git")
	want := HeadFiles{Head: filepath.Join(gitDir, "HEAD"), Ref: filepath.Join(gitDir, "refs", "heads", "main"), PackedRefs: filepath.Join(gitDir, "packed-refs")}
	if files != want {
		t.Errorf("HeadFiles() = %+v, want %+v", files, want)
	}

	gittest.Git(t, repo, "checkout", "-q", "-b", "feature/x")
	if f, _ := r.HeadFiles(ctx); f.Ref != filepath.Join(gitDir, "refs", "heads", "feature", "x") {
		t.Errorf("HeadFiles().Ref on feature/x = %s", f.Ref)
	}
	gittest.Git(t, repo, "checkout", "-q", "--detach")
	if h, err := r.Head(ctx); err != nil || h != (Head{Hash: first}) {
		t.Errorf("detached Head() = %+v, %v", h, err)
	}
	if f, _ := r.HeadFiles(ctx); f.Ref != "" {
		t.Errorf("detached HeadFiles().Ref = %s", f.Ref)
	}

	// A linked work tree has its own HEAD and shares refs with the main one.
	linked := filepath.Join(t.TempDir(), "linked")
	gittest.Git(t, repo, "worktree", "add", "-q", "-b", "side", linked)
	l := open(t, linked)
	if h, err := l.Head(ctx); err != nil || h != (Head{Hash: first, Branch: "refs/heads/side"}) {
		t.Errorf("linked Head() = %+v, %v", h, err)
	}
	lf, err := l.HeadFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lf.Head != filepath.Join(gitDir, "worktrees", "linked", "HEAD") || lf.Ref != filepath.Join(gitDir, "refs", "heads", "side") ||
		lf.PackedRefs != filepath.Join(gitDir, "packed-refs") {
		t.Errorf("linked HeadFiles() = %+v", lf)
	}
	for _, p := range []string{lf.Head, lf.Ref} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("HeadFiles names a file that does not exist: %v", err)
		}
	}
}

func TestResolveAndCommit(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	first := gittest.CommitAll(t, repo, "first")
	gittest.WriteFile(t, repo, "a.cue", "package p\n")
	second := gittest.GitEnv(t, repo, []string{
		"GIT_AUTHOR_NAME=Bo Writer", "GIT_AUTHOR_EMAIL=bo@example.com", "GIT_AUTHOR_DATE=2024-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=Cy Merger", "GIT_COMMITTER_EMAIL=cy@example.com", "GIT_COMMITTER_DATE=2024-02-03T04:05:06Z",
	}, "commit-tree", "-p", first, "-m", "Add roles\n\nBecause.", gittest.Git(t, repo, "write-tree"))
	gittest.Git(t, repo, "add", "-A")
	gittest.Git(t, repo, "update-ref", "refs/heads/main", second)
	gittest.Git(t, repo, "tag", "v1", first)
	r := open(t, repo)

	tests := []struct {
		rev, want string
	}{
		{"HEAD", second},
		{"main", second},
		{"HEAD~1", first},
		{"v1", first},
		{second, second},
		{second[:10], second},
	}
	for _, tt := range tests {
		if got, err := r.Resolve(ctx, tt.rev); err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %q, %v, want %q", tt.rev, got, err, tt.want)
		}
	}
	for _, rev := range []string{"nope", "0123456789abcdef0123456789abcdef01234567", "HEAD~5"} {
		if _, err := r.Resolve(ctx, rev); !errors.Is(err, ErrUnknownRevision) {
			t.Errorf("Resolve(%q) = %v, want ErrUnknownRevision", rev, err)
		}
	}

	c, err := r.Commit(ctx, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	want := &Commit{
		Hash:      second,
		Author:    Person{Name: "Bo Writer", Email: "bo@example.com", When: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		Committer: Person{Name: "Cy Merger", Email: "cy@example.com", When: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)},
		Subject:   "Add roles",
		Message:   "Add roles\n\nBecause.\n",
		Parents:   []string{first},
	}
	if !c.Author.When.Equal(want.Author.When) || !c.Committer.When.Equal(want.Committer.When) {
		t.Errorf("times %v %v", c.Author.When, c.Committer.When)
	}
	c.Author.When, c.Committer.When = want.Author.When, want.Committer.When
	if c.Hash != want.Hash || c.Author != want.Author || c.Committer != want.Committer || c.Subject != want.Subject ||
		c.Message != want.Message || !slices.Equal(c.Parents, want.Parents) || c.Signed {
		t.Errorf("Commit() = %+v\nwant       %+v", c, want)
	}
	if root, err := r.Commit(ctx, first); err != nil || len(root.Parents) != 0 {
		t.Errorf("root commit %+v, %v", root, err)
	}
}

func TestFilesAndMatches(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	policy := map[string]string{
		"policies/roles.cue":        "package p\nroles: {}\n",
		"policies/teams/a.json":     `{"records": {}}`,
		"policies/teams/b.yaml":     "records: {}\n",
		"policies/teams/c.yml":      "groups: {}\n",
		"policies/run.cue":          "package p\n", // made executable below
		"policies/README.md":        "not policy",
		"policies/.github/ci.yaml":  "not policy",
		"policies/.hidden.cue":      "not policy",
		"policies/cue.mod/mod.cue":  "not policy",
		"policies/deep/.git/x.json": "not policy",
		"outside.cue":               "not below the policy root",
	}
	for name, data := range policy {
		gittest.WriteFile(t, repo, name, data)
	}
	if err := os.Chmod(filepath.Join(repo, "policies/run.cue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("teams/a.json", filepath.Join(repo, "policies/link.json")); err != nil {
		t.Fatal(err)
	}
	head := gittest.CommitAll(t, repo, "policies")
	r := open(t, repo)

	content, err := r.Files(ctx, head, "policies", source.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := content.Files.FS()
	want := map[string]string{
		"roles.cue": policy["policies/roles.cue"], "run.cue": policy["policies/run.cue"],
		"teams/a.json": policy["policies/teams/a.json"], "teams/b.yaml": policy["policies/teams/b.yaml"],
		"teams/c.yml": policy["policies/teams/c.yml"], "link.json": policy["policies/teams/a.json"],
	}
	if got := sourcetest.ReadAll(t, files); !sameMap(got, want) {
		t.Errorf("Files() = %v\nwant %v", got, want)
	}
	if err := fstest.TestFS(files, "roles.cue", "teams/a.json"); err != nil {
		t.Errorf("Files() is not a well-behaved fs.FS: %v", err)
	}
	if _, err := r.Files(ctx, head, "nowhere", source.Limits{}, nil); !errors.Is(err, ErrPathNotFound) {
		t.Errorf("Files(missing path) = %v, want ErrPathNotFound", err)
	}
	if _, err := r.Files(ctx, head, "../x", source.Limits{}, nil); err == nil {
		t.Error("Files(../x) was accepted")
	}
	var ce *source.ContentError
	if _, err := r.Files(ctx, head, "policies", source.Limits{File: 10}, nil); !errors.As(err, &ce) || ce.Path != "link.json" || !strings.Contains(err.Error(), "15 bytes") {
		t.Errorf("Files() over the size limit = %v, want a ContentError naming link.json", err)
	}
	if _, err := r.Files(ctx, head, "policies", source.Limits{Total: 30}, nil); !errors.As(err, &ce) || !strings.Contains(err.Error(), "exceed 30 bytes together") {
		t.Errorf("Files() over the total limit = %v, want a ContentError", err)
	}

	// Matches compares names and content, as IsPolicyFile selects them.
	same := fstest.MapFS{}
	for name, data := range want {
		same[name] = &fstest.MapFile{Data: []byte(data)}
	}
	same["NOTES.txt"] = &fstest.MapFile{Data: []byte("ignored")}
	edited, added, removed := clone(same), clone(same), clone(same)
	edited["teams/b.yaml"] = &fstest.MapFile{Data: []byte("records: {x: {}}\n")}
	added["new.cue"] = &fstest.MapFile{Data: []byte("package p\n")}
	delete(removed, "teams/c.yml")
	for _, tt := range []struct {
		name  string
		files fs.FS
		want  bool
	}{
		{"same", same, true}, {"edited", edited, false}, {"added", added, false}, {"removed", removed, false},
	} {
		if got, err := r.Matches(ctx, head, "policies", tt.files); err != nil || got != tt.want {
			t.Errorf("Matches(%s) = %v, %v, want %v", tt.name, got, err, tt.want)
		}
	}
	if got, err := r.Matches(ctx, head, "nowhere", fstest.MapFS{}); err != nil || !got {
		t.Errorf("Matches(no files, missing path) = %v, %v, want true", got, err)
	}
}

func TestFilesSymlinks(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "secret.cue", "package p\n")
	gittest.WriteFile(t, repo, "policies/roles.cue", "package p\n")
	gittest.WriteFile(t, repo, "policies/teams/a.cue", "package p\n// a\n")
	link := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(repo, name)); err != nil {
			t.Fatal(err)
		}
	}
	link("../secret.cue", "policies/escape.cue")
	head := gittest.CommitAll(t, repo, "escape")
	r := open(t, repo)

	// The same rule and the same positioned error as a directory's files.
	_, err := r.Files(ctx, head, "policies", source.Limits{}, nil)
	var ce *source.ContentError
	if !errors.As(err, &ce) || ce.Path != "escape.cue" || !strings.Contains(err.Error(), "leads outside the policy root") {
		t.Errorf("Files() with a symlink out of the root = %v, want a ContentError naming escape.cue", err)
	}
	dirFiles, dirErr := source.ReadFS(ctx, os.DirFS(filepath.Join(repo, "policies")), source.Limits{})
	if dirFiles != nil || dirErr == nil || dirErr.Error() != err.Error() {
		t.Errorf("the directory's error %v differs from the commit's %v", dirErr, err)
	}
	if same, err := r.Matches(ctx, head, "policies", fstest.MapFS{"roles.cue": {Data: []byte("package p\n")}}); err != nil || same {
		t.Errorf("Matches() of a commit whose files are refused = %v, %v, want false", same, err)
	}
	// From the repository root the same link stays inside.
	if content, err := r.Files(ctx, head, "", source.Limits{}, nil); err != nil || sourcetest.ReadAll(t, content.Files.FS())["policies/escape.cue"] != "package p\n" {
		t.Errorf("Files(root) = %v", err)
	}

	// Links inside the root are followed, through linked directories too;
	// a link to nothing, a loop and an absolute link are named.
	for _, tt := range []struct {
		target, name string
		want         string // content, or the start of the error
	}{
		{"teams/a.cue", "policies/inside.cue", "package p\n// a\n"},
		{"teams", "policies/alias", ""},                          // a link to a directory is not walked
		{"alias/a.cue", "policies/via.cue", "package p\n// a\n"}, // with alias → teams below
		{"/etc/passwd", "policies/abs.cue", "error: symbolic link to \"/etc/passwd\" leads outside"},
		{"loop.cue", "policies/loop.cue", "error: more than 40 symbolic links"},
		{"nothing.cue", "policies/dangling.cue", "error: dangling.cue: symbolic link to nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			gittest.Git(t, repo, "clone", "-q", repo, dir)
			if err := os.Symlink(tt.target, filepath.Join(dir, tt.name)); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, "policies/escape.cue"))
			if tt.name == "policies/via.cue" {
				if err := os.Symlink("teams", filepath.Join(dir, "policies/alias")); err != nil {
					t.Fatal(err)
				}
			}
			rev := gittest.CommitAll(t, dir, "link")
			content, err := open(t, dir).Files(ctx, rev, "policies", source.Limits{}, nil)
			name := strings.TrimPrefix(tt.name, "policies/")
			switch {
			case strings.HasPrefix(tt.want, "error: "):
				if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tt.want, "error: ")) {
					t.Errorf("Files() = %v, want an error %q", err, tt.want)
				}
			case err != nil:
				t.Errorf("Files() = %v", err)
			case tt.want == "":
				if _, ok := sourcetest.ReadAll(t, content.Files.FS())[name+"/a.cue"]; ok {
					t.Errorf("a linked directory was walked")
				}
			default:
				if got := sourcetest.ReadAll(t, content.Files.FS())[name]; got != tt.want {
					t.Errorf("%s = %q, want %q", name, got, tt.want)
				}
			}
		})
	}
}

func TestTreeFSReadsOnlyWhatIsRead(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "policies/roles.cue", "package p\n")
	gittest.WriteFile(t, repo, "policies/notes.bin", "not policy\n")
	gittest.WriteFile(t, repo, "other/big.cue", strings.Repeat("x", 1<<20))
	head := gittest.CommitAll(t, repo, "big")
	bare := filepath.Join(t.TempDir(), "bare.git")
	gittest.Git(t, repo, "clone", "-q", "--bare", repo, bare)
	// Remove every object but those of the commit, its root tree, the
	// policies tree and roles.cue: reading anything else would fail.
	keep := map[string]bool{head: true}
	for _, spec := range []string{head + "^{tree}", head + ":policies", head + ":policies/roles.cue"} {
		keep[gittest.Git(t, bare, "rev-parse", spec)] = true
	}
	removeObjectsBut(t, bare, keep)
	r := open(t, bare)
	content, err := r.Files(ctx, head, "policies", source.Limits{}, nil)
	if err != nil {
		t.Fatalf("Files() read more than the policy files: %v", err)
	}
	if got := sourcetest.ReadAll(t, content.Files.FS()); !sameMap(got, map[string]string{"roles.cue": "package p\n"}) {
		t.Errorf("Files() = %v", got)
	}
	tree, err := r.TreeFS(ctx, head, "policies")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(tree, "roles.cue"); err == nil {
		t.Error("reading every file of the tree succeeded with notes.bin's blob removed: the check proves nothing")
	}
}

// removeObjectsBut unpacks the bare repository's objects and removes every
// loose object whose hash keep does not hold.
func removeObjectsBut(t *testing.T, bare string, keep map[string]bool) {
	t.Helper()
	gittest.Unpack(t, bare)
	dirs, _ := filepath.Glob(filepath.Join(bare, "objects/??"))
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if h := filepath.Base(d) + e.Name(); !keep[h] {
				if err := os.Remove(gittest.ObjectFile(bare, h)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestFilesSubmodule(t *testing.T) {
	sub := t.TempDir()
	gittest.Init(t, sub)
	gittest.WriteFile(t, sub, "inner.cue", "package p\n")
	gittest.CommitAll(t, sub, "sub")
	repo := t.TempDir()
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "policies/roles.cue", "package p\n")
	gittest.Git(t, repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub, "policies/vendor")
	head := gittest.CommitAll(t, repo, "with a submodule")
	content, err := open(t, repo).Files(ctx, head, "policies", source.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sourcetest.ReadAll(t, content.Files.FS()); !sameMap(got, map[string]string{"roles.cue": "package p\n"}) {
		t.Errorf("Files() = %v", got)
	}
	if !slices.Equal(content.Submodules, []string{"vendor"}) {
		t.Errorf("Submodules = %v, want [vendor]", content.Submodules)
	}
}

// history makes main: c0 ← c1 ← m(c1, s1) ← c3, with the side branch
// s1 off c0, and returns the hashes by name.
func history(t *testing.T, repo string) map[string]string {
	t.Helper()
	gittest.Init(t, repo)
	h := map[string]string{}
	h["c0"] = gittest.CommitAll(t, repo, "c0")
	gittest.Git(t, repo, "checkout", "-q", "-b", "side")
	gittest.WriteFile(t, repo, "side.cue", "package p\n")
	h["s1"] = gittest.CommitAll(t, repo, "s1")
	gittest.Git(t, repo, "checkout", "-q", "main")
	gittest.WriteFile(t, repo, "main.cue", "package p\n")
	h["c1"] = gittest.CommitAll(t, repo, "c1")
	gittest.Git(t, repo, "merge", "-q", "--no-ff", "-m", "merge side", "side")
	h["m"] = gittest.Git(t, repo, "rev-parse", "HEAD")
	h["c3"] = gittest.CommitAll(t, repo, "c3")
	return h
}

func TestIsAncestor(t *testing.T) {
	repo := t.TempDir()
	h := history(t, repo)
	r := open(t, repo)
	tests := []struct {
		a, b string
		want bool
	}{
		{"c0", "c3", true},
		{"s1", "c3", true}, // through the merge's second parent
		{"c1", "m", true},
		{"c3", "c3", true},
		{"c3", "c0", false},
		{"s1", "c1", false},
		{"c1", "s1", false},
	}
	for _, tt := range tests {
		for range 2 { // the second answer comes from the cache
			if got, err := r.IsAncestor(ctx, h[tt.a], h[tt.b]); err != nil || got != tt.want {
				t.Errorf("IsAncestor(%s, %s) = %v, %v, want %v", tt.a, tt.b, got, err, tt.want)
			}
		}
	}
	if n := r.ancestry.len(); n != len(tests)-1 { // the same commit is not cached
		t.Errorf("cache holds %d answers, want %d", n, len(tests)-1)
	}
	if _, err := r.IsAncestor(ctx, "0123456789abcdef0123456789abcdef01234567", h["c3"]); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("IsAncestor(unknown) = %v, want ErrUnknownRevision", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.IsAncestor(cancelled, h["c0"], h["c3"]); !errors.Is(err, context.Canceled) {
		t.Errorf("IsAncestor with a cancelled context = %v", err)
	}
}

func TestLRUIsBounded(t *testing.T) {
	c := newLRU[int, int](3)
	for i := range 10 {
		c.put(i, i*i)
		if c.len() > 3 {
			t.Fatalf("len %d after %d puts", c.len(), i+1)
		}
	}
	if _, ok := c.get(6); ok {
		t.Error("the least recently used entry was kept")
	}
	c.get(7) // 7 is now the most recent
	c.put(10, 100)
	if v, ok := c.get(7); !ok || v != 49 {
		t.Errorf("get(7) = %v, %v after a use", v, ok)
	}
	if _, ok := c.get(8); ok {
		t.Error("8 should have been evicted")
	}
}

func TestFirstParents(t *testing.T) {
	repo := t.TempDir()
	h := history(t, repo)
	r := open(t, repo)
	walk := func(limit int) ([]string, error) {
		var got []string
		for c, err := range r.FirstParents(ctx, "HEAD", limit) {
			if err != nil {
				return got, err
			}
			got = append(got, c.Subject)
		}
		return got, nil
	}
	if got, err := walk(10); err != nil || !slices.Equal(got, []string{"c3", "merge side", "c1", "c0"}) {
		t.Errorf("first-parent history = %v, %v", got, err)
	}
	if got, err := walk(2); !errors.Is(err, ErrLimitReached) || !slices.Equal(got, []string{"c3", "merge side"}) {
		t.Errorf("bounded walk = %v, %v, want two commits and ErrLimitReached", got, err)
	}
	if got, err := walk(4); err != nil || len(got) != 4 {
		t.Errorf("walk bounded at exactly its length = %v, %v", got, err)
	}
	if _, err := walk(0); err == nil {
		t.Error("a walk without a bound was accepted")
	}
	n := 0
	for range r.FirstParents(ctx, h["c3"], 10) {
		if n++; n == 2 {
			break // stopping early is fine
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, err := range r.FirstParents(cancelled, "HEAD", 10) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("walk with a cancelled context yields %v", err)
		}
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func clone(m fstest.MapFS) fstest.MapFS {
	out := fstest.MapFS{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestRange(t *testing.T) {
	repo := t.TempDir()
	h := history(t, repo)
	r := open(t, repo)
	tests := []struct {
		base, tip string
		want      []string
	}{
		{"c1", "c3", []string{"c3", "m", "s1"}}, // the merged-in commit too
		{"c0", "s1", []string{"s1"}},
		{"s1", "c1", []string{"c1"}}, // not a descendant: what the tip adds
		{"", "c1", []string{"c1", "c0"}},
		{"c3", "c3", nil},
		{"c3", "c1", nil}, // an ancestor adds nothing
		{"m", "c3", []string{"c3"}},
	}
	for _, tt := range tests {
		got, err := r.Range(ctx, h[tt.base], h[tt.tip], 100)
		if err != nil {
			t.Errorf("Range(%s, %s): %v", tt.base, tt.tip, err)
			continue
		}
		var want []string
		for _, name := range tt.want {
			want = append(want, h[name])
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Range(%s, %s) = %v, want %v (%v)", tt.base, tt.tip, got, want, tt.want)
		}
	}
	if _, err := r.Range(ctx, "", h["c3"], 3); !errors.Is(err, ErrLimitReached) {
		t.Errorf("Range over 5 commits with limit 3 = %v, want ErrLimitReached", err)
	}
	if _, err := r.Range(ctx, "0123456789abcdef0123456789abcdef01234567", h["c3"], 100); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("Range from an unknown base = %v, want ErrUnknownRevision", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Range(cancelled, h["c0"], h["c3"], 100); !errors.Is(err, context.Canceled) {
		t.Errorf("Range with a cancelled context = %v", err)
	}
}

// TestRangeClockSkew: committer times that disagree with the graph never
// make Range miss a commit of the range.
func TestRangeClockSkew(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	at := func(date string) []string { return []string{"GIT_COMMITTER_DATE=" + date, "GIT_AUTHOR_DATE=" + date} }
	commit := func(msg, date string) string {
		gittest.Git(t, repo, "add", "-A")
		gittest.GitEnv(t, repo, at(date), "commit", "-q", "--allow-empty", "-m", msg)
		return gittest.Git(t, repo, "rev-parse", "HEAD")
	}
	c0 := commit("c0", "2020-01-01T00:00:00Z")
	gittest.Git(t, repo, "checkout", "-q", "-b", "side")
	base := commit("base, dated in the future", "2030-01-01T00:00:00Z")
	gittest.Git(t, repo, "checkout", "-q", "main")
	old := commit("old-dated", "2010-01-01T00:00:00Z")
	mid := commit("mid", "2021-01-01T00:00:00Z")
	gittest.GitEnv(t, repo, at("2022-01-01T00:00:00Z"), "merge", "-q", "--no-ff", "-m", "merge", "side")
	tip := gittest.Git(t, repo, "rev-parse", "HEAD")
	got, err := open(t, repo).Range(ctx, base, tip, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{tip, mid, old}
	if !slices.Equal(got, want) {
		t.Errorf("Range(base, tip) = %v, want %v (tip, mid, old; not c0 %s)", got, want, c0)
	}
}

func TestSigned(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "roles.cue", "package p\n")
	plain := gittest.CommitAll(t, repo, "plain")
	key := gittest.NewSSHKey(t, "ada@example.com")
	signed := gittest.CommitSigned(t, repo, "signed\n\nwith a body", key.Signer())
	r := open(t, repo)

	c, err := r.Signed(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if raw := gittest.Git(t, repo, "cat-file", "commit", plain); len(c.Signature) != 0 || c.Signed || strings.TrimSpace(string(c.Payload)) != raw {
		t.Errorf("unsigned commit: signature %q, payload %q, want none and %q", c.Signature, c.Payload, raw)
	}

	c, err = r.Signed(ctx, signed)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Signed || !strings.HasPrefix(string(c.Signature), "-----BEGIN SSH SIGNATURE-----\n") || c.Subject != "signed" || c.Parents[0] != plain {
		t.Errorf("signed commit: %+v, signature %q", c.Commit, c.Signature)
	}
	// The payload is what ssh-keygen signed: ssh-keygen -Y verify agrees.
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	payload, sig := write("payload", string(c.Payload)), write("sig", string(c.Signature))
	allowed := write("allowed", key.AllowedSigner("ada@example.com", "")+"\n")
	in, err := os.Open(payload)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", "ada@example.com", "-n", "git", "-s", sig)
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ssh-keygen -Y verify of the payload: %v\n%s", err, out)
	}
	if strings.Contains(string(c.Payload), "gpgsig") {
		t.Errorf("payload keeps the signature header:\n%s", c.Payload)
	}
	if _, err := r.Signed(ctx, "0123456789abcdef0123456789abcdef01234567"); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("Signed(unknown) = %v, want ErrUnknownRevision", err)
	}
}

// BenchmarkRange measures base..tip over a history of 2,000 first-parent
// commits with a 100-commit branch merged in every 200 commits: the walk
// of --verify-commits all after 20 new commits, after 204 with one merge
// (304 in all), and after 1,000 with five (1,500).
func BenchmarkRange(b *testing.B) {
	repo := b.TempDir()
	gittest.Init(b, repo)
	var script strings.Builder
	mark := 0
	commit := func(branch string, parents ...int) int {
		mark++
		fmt.Fprintf(&script, "commit refs/heads/%s\nmark :%d\ncommitter A <a@example.com> %d +0000\ndata 2\nc\n", branch, mark, 1700000000+mark)
		for i, p := range parents {
			if i == 0 {
				fmt.Fprintf(&script, "from :%d\n", p)
			} else {
				fmt.Fprintf(&script, "merge :%d\n", p)
			}
		}
		script.WriteString("\n")
		return mark
	}
	main := commit("main")
	marks := []int{main}
	for i := 1; i < 2000; i++ {
		if i%200 == 0 {
			side := main
			for range 100 {
				side = commit("side", side)
			}
			main = commit("main", main, side)
		} else {
			main = commit("main", main)
		}
		marks = append(marks, main)
	}
	for _, i := range []int{1979, 1795, 999, 1999} {
		fmt.Fprintf(&script, "get-mark :%d\n", marks[i])
	}
	cmd := exec.Command("git", "fast-import", "--quiet", "--cat-blob-fd=1")
	cmd.Dir = repo
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("git fast-import: %v", err)
	}
	hashes := strings.Fields(string(out))
	r := open(b, repo)
	for _, bm := range []struct {
		name      string
		base, tip string
		want      int
	}{
		{"20-new", hashes[0], hashes[3], 20},
		{"204-new-1-merge", hashes[1], hashes[3], 304},
		{"1000-new-5-merges", hashes[2], hashes[3], 1500},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := r.Range(ctx, bm.base, bm.tip, 10000)
				if err != nil || len(got) != bm.want {
					b.Fatalf("%d commits, %v; want %d", len(got), err, bm.want)
				}
			}
		})
	}
}

// TestFilesRescanReadsOnlyChangedBlobs: reading a second commit with the
// Rescan of the first reads only the blobs whose hash changed. Between the
// reads, the loose object of the unchanged file is replaced by one of the
// same size with other bytes (go-git does not check a hash on reading): a
// read without the rescan returns the forged bytes, proving the check can
// fail; the read with the rescan returns the bytes read the first time.
func TestFilesRescanReadsOnlyChangedBlobs(t *testing.T) {
	dir := t.TempDir()
	gittest.Init(t, dir)
	const roles = "package p\nroles: {}\n"
	gittest.WriteFile(t, dir, "policies/roles.cue", roles)
	gittest.WriteFile(t, dir, "policies/records.json", `{"records": {}}`)
	first := gittest.CommitAll(t, dir, "first")
	gittest.WriteFile(t, dir, "policies/records.json", `{"records": {"r": {}}}`)
	second := gittest.CommitAll(t, dir, "second")
	unchanged := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", second+":policies/roles.cue"))

	var rescan source.Rescan
	if _, err := open(t, dir).Files(ctx, first, "policies", source.Limits{}, &rescan); err != nil {
		t.Fatal(err)
	}
	gitDir := filepath.Join(dir, ".git")
	gittest.Unpack(t, gitDir)
	forged := strings.Repeat("#", len(roles))
	var loose bytes.Buffer
	zw := zlib.NewWriter(&loose)
	fmt.Fprintf(zw, "blob %d\x00%s", len(forged), forged)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	object := gittest.ObjectFile(gitDir, unchanged)
	if err := os.Remove(object); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(object, loose.Bytes(), 0o444); err != nil {
		t.Fatal(err)
	}
	read := func(rescan *source.Rescan) map[string]string {
		t.Helper()
		content, err := open(t, dir).Files(ctx, second, "policies", source.Limits{}, rescan)
		if err != nil {
			t.Fatal(err)
		}
		return sourcetest.ReadAll(t, content.Files.FS())
	}
	if got := read(nil)["roles.cue"]; got != forged {
		t.Fatalf("without the rescan roles.cue reads %q, not the forged blob: the check proves nothing", got)
	}
	want := map[string]string{"roles.cue": roles, "records.json": `{"records": {"r": {}}}`}
	if got := read(&rescan); !sameMap(got, want) {
		t.Errorf("with the rescan, Files() = %q, want %q (the unchanged blob was read again)", got, want)
	}
}
