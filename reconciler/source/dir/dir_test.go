package dir

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/sourcetest"
)

var ctx = context.Background()

// setFiles makes the policy root hold exactly files: it writes them and
// removes every other file below root, except inside .git.
func setFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return fs.SkipDir
		}
		rel, _ := filepath.Rel(root, p)
		if _, keep := files[filepath.ToSlash(rel)]; !d.IsDir() && !keep {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if old, err := os.ReadFile(p); err == nil && string(old) == data {
			continue
		}
		gittest.WriteFile(t, root, name, data)
	}
}

func newSource(t *testing.T, dir string, opts Options) *Source {
	t.Helper()
	opts.Debounce = max(opts.Debounce, 20*time.Millisecond)
	s, err := New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformancePlainDirectory(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T, files map[string]string) sourcetest.Fixture {
			root := t.TempDir()
			setFiles(t, root, files)
			return sourcetest.Fixture{
				Source: newSource(t, root, Options{}),
				Set:    func(files map[string]string) { setFiles(t, root, files) },
			}
		},
		IDPattern: regexp.MustCompile(`^sha256:[0-9a-f]{16}$`),
	})
}

// TestConformanceGitWorkTree runs the suite on a policy root below the top
// of a git work tree.
func TestConformanceGitWorkTree(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T, files map[string]string) sourcetest.Fixture {
			repo := t.TempDir()
			gittest.Init(t, repo)
			gittest.WriteFile(t, repo, "README.md", "# the repository\n")
			root := filepath.Join(repo, "policies")
			setFiles(t, root, files)
			gittest.CommitAll(t, repo, "initial policies")
			return sourcetest.Fixture{
				Source: newSource(t, repo, Options{Path: "policies"}),
				Set:    func(files map[string]string) { setFiles(t, root, files) },
				Commit: func() string { return gittest.CommitAll(t, repo, "change policies") },
			}
		},
		IDPattern: regexp.MustCompile(`^[0-9a-f]{40}(\+dirty\.[0-9a-f]{12})?$`),
	})
}

func TestRevisionInGit(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	src := newSource(t, repo, Options{})
	// Before the first commit: the content hash.
	gittest.WriteFile(t, repo, "roles.cue", "package p\n")
	if rev, _, err := src.Fetch(ctx); err != nil || !regexp.MustCompile(`^sha256:[0-9a-f]{16}$`).MatchString(rev.ID) {
		t.Fatalf("revision before the first commit = %+v, %v", rev, err)
	}
	head := gittest.CommitAll(t, repo, "Add roles\n\nThe body.")
	rev, _, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev.ID != head || rev.Subject != "Add roles" || rev.Author != (source.Person{Name: "Ada Author", Email: "ada@example.com"}) ||
		rev.Committer.Name != "Ada Author" || rev.CommitTime.IsZero() || rev.CommitTime.Location() != time.UTC ||
		rev.Signature.Status != source.SignatureNone || len(rev.Parents) != 0 {
		t.Errorf("revision of a clean work tree = %+v", rev)
	}
	// The dirty suffix is the start of the Key's hex.
	gittest.WriteFile(t, repo, "roles.cue", "package p\n// edited\n")
	dirty, _, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := head + "+dirty." + strings.TrimPrefix(dirty.Key, "sha256:")[:12]; dirty.ID != want {
		t.Errorf("dirty revision %s, want %s", dirty.ID, want)
	}
	// Staging changes nothing: the revision compares with HEAD's tree.
	gittest.Git(t, repo, "add", "roles.cue")
	if staged, _, _ := src.Fetch(ctx); staged.ID != dirty.ID {
		t.Errorf("staged edit: revision %s, want %s", staged.ID, dirty.ID)
	}
	// Another uncommitted content is another revision (issue 8: two
	// contents answered with the same Charter-Revision "<commit>+dirty").
	gittest.WriteFile(t, repo, "roles.cue", "package p\n// edited again\n")
	if other, _, err := src.Fetch(ctx); err != nil || other.ID == dirty.ID || !strings.HasPrefix(other.ID, head+"+dirty.") {
		t.Errorf("a second uncommitted edit: revision %s, %v; want %s+dirty.<another hash> than %s", other.ID, err, head, dirty.ID)
	}
}

func TestContentErrors(t *testing.T) {
	outside := t.TempDir()
	gittest.WriteFile(t, outside, "secret.cue", "package p\n")
	tests := []struct {
		name  string
		setup func(t *testing.T, root string)
		opts  Options
		path  string // named by the error; empty: no error
	}{
		{"symlink inside", func(t *testing.T, root string) {
			gittest.WriteFile(t, root, "real/roles.cue", "package p\n")
			symlink(t, "real/roles.cue", filepath.Join(root, "alias.cue"))
		}, Options{}, ""},
		{"symlink outside", func(t *testing.T, root string) {
			symlink(t, filepath.Join(outside, "secret.cue"), filepath.Join(root, "escape.cue"))
		}, Options{}, "escape.cue"},
		{"relative symlink outside", func(t *testing.T, root string) {
			gittest.WriteFile(t, root, "sub/ok.cue", "package p\n")
			symlink(t, "../../"+filepath.Base(outside)+"/secret.cue", filepath.Join(root, "sub/escape.cue"))
		}, Options{}, "sub/escape.cue"},
		{"dangling symlink", func(t *testing.T, root string) {
			symlink(t, "nowhere.cue", filepath.Join(root, "dangling.cue"))
		}, Options{}, "dangling.cue"},
		{"symlink to a directory", func(t *testing.T, root string) {
			if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, "d", filepath.Join(root, "d.cue"))
		}, Options{}, "d.cue"},
		{"fifo", func(t *testing.T, root string) {
			if err := syscall.Mkfifo(filepath.Join(root, "pipe.json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, Options{}, "pipe.json"},
		{"fifo that is not a policy file", func(t *testing.T, root string) {
			if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, Options{}, ""},
		{"too large", func(t *testing.T, root string) {
			gittest.WriteFile(t, root, "big.json", strings.Repeat(" ", 101))
		}, Options{Limits: source.Limits{File: 100}}, "big.json"},
		{"too large together", func(t *testing.T, root string) {
			gittest.WriteFile(t, root, "a.json", strings.Repeat(" ", 60))
			gittest.WriteFile(t, root, "b.json", strings.Repeat(" ", 60))
		}, Options{Limits: source.Limits{Total: 100}}, "b.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(filepath.Dir(outside), "root-"+strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(root) })
			tt.setup(t, root)
			done := make(chan error, 1)
			go func() { _, _, err := newSource(t, root, tt.opts).Fetch(ctx); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Fetch blocked")
			}
			var ce *source.ContentError
			switch {
			case tt.path == "" && err != nil:
				t.Errorf("Fetch = %v, want no error", err)
			case tt.path != "" && (!errors.As(err, &ce) || ce.Path != tt.path):
				t.Errorf("Fetch = %v, want a ContentError naming %s", err, tt.path)
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestDebouncer(t *testing.T) {
	const ms = time.Millisecond
	d := debouncer{quiet: 200 * ms, max: 500 * ms}
	t0 := time.Unix(0, 0)
	tests := []struct {
		at   time.Duration // since t0
		want time.Duration
	}{
		{0, 200 * ms},
		{100 * ms, 200 * ms},
		{250 * ms, 200 * ms},
		{400 * ms, 100 * ms}, // the burst started at 0: report by 500
		{499 * ms, 1 * ms},
		{600 * ms, 0}, // late: report at once
	}
	for _, tt := range tests {
		if got := d.event(t0.Add(tt.at)); got != tt.want {
			t.Errorf("event at %v: wait %v, want %v", tt.at, got, tt.want)
		}
	}
	d.fired()
	if got := d.event(t0.Add(time.Second)); got != 200*ms {
		t.Errorf("first event of a new burst: wait %v, want 200ms", got)
	}
}

// watch runs s.Watch until the test ends and counts the calls of changed.
func watch(t *testing.T, s *Source) *atomic.Int64 {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	var calls atomic.Int64
	done := make(chan error, 1)
	go func() { done <- s.Watch(wctx, func() { calls.Add(1) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return &calls
}

// settle waits until the watch has reported an edit of name, editing it
// again while it has not (the watch starts asynchronously).
func settle(t *testing.T, root, name string, calls *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; calls.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the watch never reported an edit")
		}
		gittest.WriteFile(t, root, name, "package p\n// settle "+strings.Repeat(".", i)+"\n")
		waitCalls(calls, 0, 300*time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the burst end
}

func waitCalls(calls *atomic.Int64, n int64, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if calls.Load() > n {
			return true
		}
	}
	return calls.Load() > n
}

// TestWatchMaxWait: a steady stream of writes, closer together than the
// debounce interval, is still reported about every MaxWait.
func TestWatchMaxWait(t *testing.T) {
	root := t.TempDir()
	s := newSource(t, root, Options{Debounce: 150 * time.Millisecond, MaxWait: 300 * time.Millisecond})
	calls := watch(t, s)
	settle(t, root, "roles.cue", calls)
	before := calls.Load()
	stop := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(stop); i++ {
		gittest.WriteFile(t, root, "roles.cue", "package p\n// "+strings.Repeat("x", i%50)+"\n")
		time.Sleep(20 * time.Millisecond)
	}
	if n := calls.Load() - before; n < 2 {
		t.Errorf("%d reports during 1.5s of writes every 20ms, want several (max wait 300ms)", n)
	}
}

// TestWatchNoticesCommits: a commit, a branch switch and a ref packed away
// move HEAD without changing a policy file; each is reported.
func TestWatchNoticesCommits(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "policies/roles.cue", "package p\n")
	gittest.CommitAll(t, repo, "first")
	s := newSource(t, repo, Options{Path: "policies"})
	calls := watch(t, s)
	settle(t, repo, "policies/roles.cue", calls)

	steps := []struct {
		name string
		do   func()
	}{
		{"commit of the edited file", func() { gittest.Git(t, repo, "commit", "-q", "-am", "second") }},
		{"empty commit", func() { gittest.Git(t, repo, "commit", "-q", "--allow-empty", "-m", "third") }},
		{"checkout of a new branch, then a commit on it", func() {
			gittest.Git(t, repo, "checkout", "-q", "-b", "feature/x")
			waitCalls(calls, calls.Load(), 2*time.Second) // HEAD moved; the watch now follows feature/x
			gittest.Git(t, repo, "commit", "-q", "--allow-empty", "-m", "on feature")
		}},
		{"pack-refs", func() { gittest.Git(t, repo, "pack-refs", "--all") }},
		{"commit after the refs were packed", func() {
			gittest.Git(t, repo, "commit", "-q", "--allow-empty", "-m", "after pack-refs")
		}},
		{"reset to an earlier commit", func() { gittest.Git(t, repo, "reset", "-q", "--hard", "HEAD~2") }},
	}
	for _, st := range steps {
		time.Sleep(100 * time.Millisecond) // a burst of its own
		before := calls.Load()
		st.do()
		if !waitCalls(calls, before, 5*time.Second) {
			t.Errorf("%s: not reported", st.name)
		}
	}
	// What git does to its index alone moves nothing.
	time.Sleep(300 * time.Millisecond)
	before := calls.Load()
	gittest.Git(t, repo, "update-index", "--refresh")
	gittest.Git(t, repo, "status", "--porcelain")
	if waitCalls(calls, before, 500*time.Millisecond) {
		t.Errorf("git status was reported as a change")
	}
}
