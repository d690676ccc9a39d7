package dir

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
)

// Bounds of the watch tests' waits; generous, for a loaded machine under
// -race. No test sleeps for correctness: each waits for a condition.
const (
	noticeTimeout = 5 * time.Second
	quietFor      = 400 * time.Millisecond // longer than the tests' debounce
)

// quiet waits, at most noticeTimeout, until changed has not been called
// for quietFor, so that the next edit starts a burst of its own.
func quiet(t *testing.T, calls *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(noticeTimeout)
	for n := calls.Load(); ; {
		if !waitCalls(calls, n, quietFor) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch never became quiet")
		}
		n = calls.Load()
	}
}

// noticed edits name below root and waits for changed to be called.
func noticed(t *testing.T, calls *atomic.Int64, root, name, what string) {
	t.Helper()
	quiet(t, calls)
	before := calls.Load()
	gittest.WriteFile(t, root, name, "package p\n// "+what+"\n")
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatalf("%s: an edit of %s was not noticed", what, name)
	}
}

// fetched returns the content of the policy file name as s fetches it.
func fetched(t *testing.T, s *Source, name string) string {
	t.Helper()
	_, fsys, err := s.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("fetched files: %v", err)
	}
	return string(data)
}

// TestWatchFollowsSwappedSymlink: git-sync's layout. The source is a
// symbolic link to a work tree, swapped to a new one the way git-sync
// publishes (ln -s .worktrees/B repo.tmp && mv -T repo.tmp repo): the swap
// is reported, a fetch reads the new work tree, and edits in it are
// noticed.
func TestWatchFollowsSwappedSymlink(t *testing.T) {
	top := t.TempDir()
	a, b := filepath.Join(top, ".worktrees", "A"), filepath.Join(top, ".worktrees", "B")
	setFiles(t, a, map[string]string{"roles.cue": "package p\n// A\n"})
	setFiles(t, b, map[string]string{"roles.cue": "package p\n// B\n", "support/x.cue": "package p\n"})
	link := filepath.Join(top, "repo")
	symlink(t, filepath.Join(".worktrees", "A"), link)
	s := newSource(t, link, Options{})
	calls := watch(t, s)
	settle(t, a, "roles.cue", calls)
	quiet(t, calls)

	before := calls.Load()
	symlink(t, filepath.Join(".worktrees", "B"), filepath.Join(top, "repo.tmp"))
	if err := os.Rename(filepath.Join(top, "repo.tmp"), link); err != nil {
		t.Fatal(err)
	}
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatal("the swap of the symbolic link was not reported")
	}
	if got := fetched(t, s, "roles.cue"); got != "package p\n// B\n" {
		t.Fatalf("after the swap, roles.cue = %q, want work tree B's", got)
	}
	noticed(t, calls, b, "support/x.cue", "edit in the new work tree")
	// Work tree A is gone from the watch: git-sync removes it, and edits
	// there are not the source's.
	quiet(t, calls)
	before = calls.Load()
	gittest.WriteFile(t, a, "roles.cue", "package p\n// stale\n")
	if waitCalls(calls, before, quietFor) {
		t.Error("an edit of the old work tree was reported")
	}
}

// TestWatchRootRemovedAndRecreated: rm -rf of the source directory, then
// the directory made again with new content; both are reported, and later
// edits too.
func TestWatchRootRemovedAndRecreated(t *testing.T) {
	root := filepath.Join(t.TempDir(), "policies")
	setFiles(t, root, map[string]string{"roles.cue": "package p\n", "support/x.cue": "package p\n"})
	s := newSource(t, root, Options{})
	calls := watch(t, s)
	settle(t, root, "roles.cue", calls)
	quiet(t, calls)

	before := calls.Load()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	setFiles(t, root, map[string]string{"roles.cue": "package p\n// recreated\n", "support/x.cue": "package p\n"})
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatal("the removal and recreation were not reported")
	}
	noticed(t, calls, root, "roles.cue", "edit in the recreated root")
	noticed(t, calls, root, "support/x.cue", "edit in a directory of the recreated root")
	if got := fetched(t, s, "roles.cue"); !strings.Contains(got, "edit in the recreated root") {
		t.Errorf("roles.cue = %q after the edit", got)
	}
}

// TestWatchDirectoryRenamed: mv support support2, then edits inside
// support2 (and in a directory made below it) are noticed.
func TestWatchDirectoryRenamed(t *testing.T) {
	root := t.TempDir()
	setFiles(t, root, map[string]string{"roles.cue": "package p\n", "support/x.cue": "package p\n", "support/deep/y.cue": "package p\n"})
	s := newSource(t, root, Options{})
	calls := watch(t, s)
	settle(t, root, "roles.cue", calls)
	quiet(t, calls)

	before := calls.Load()
	if err := os.Rename(filepath.Join(root, "support"), filepath.Join(root, "support2")); err != nil {
		t.Fatal(err)
	}
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatal("the rename was not reported")
	}
	noticed(t, calls, root, "support2/x.cue", "edit in the renamed directory")
	noticed(t, calls, root, "support2/deep/y.cue", "edit below the renamed directory")
	noticed(t, calls, root, "support2/new/z.cue", "edit in a directory made in the renamed one")
	// The old name, made again, is watched as a new directory.
	noticed(t, calls, root, "support/x.cue", "edit in a directory made with the old name")
}

// TestWatchSteadyWritesDefaults: 20 writes a second to one file for 3 s,
// with the default debounce and maximum wait, reload at least twice while
// the writes go on (the issue saw 2 reloads in 30 s).
func TestWatchSteadyWritesDefaults(t *testing.T) {
	root := t.TempDir()
	s := newSource(t, root, Options{Debounce: DefaultDebounce})
	calls := watch(t, s)
	settle(t, root, "roles.cue", calls)
	quiet(t, calls)
	before := calls.Load()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	stop := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(stop); i++ {
		gittest.WriteFile(t, root, "roles.cue", "package p\n// "+strings.Repeat("x", i%50)+"\n")
		<-tick.C
	}
	if n := calls.Load() - before; n < 2 {
		t.Errorf("%d reloads during 3 s of 20 writes a second, want at least 2 (max wait %v)", n, DefaultMaxWait)
	}
}

// TestWatchErrorsCounted: a root removed for good cannot be watched again;
// that is counted and reported by WatchProblem, and the watch keeps running
// (the parent is watched) and recovers when the root comes back, which
// clears the problem.
func TestWatchErrorsCounted(t *testing.T) {
	root := filepath.Join(t.TempDir(), "policies")
	setFiles(t, root, map[string]string{"roles.cue": "package p\n"})
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_watch_errors_total", Help: "test"})
	s := newSource(t, root, Options{WatchErrors: errs})
	calls := watch(t, s)
	settle(t, root, "roles.cue", calls)
	quiet(t, calls)
	if n, p := testutil.ToFloat64(errs), s.WatchProblem(); n != 0 || p != nil {
		t.Fatalf("%v watch errors, problem %+v, while the root is there", n, p)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(noticeTimeout); testutil.ToFloat64(errs) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the lost watch of the removed root was not counted")
		}
		waitCalls(calls, calls.Load(), 50*time.Millisecond)
	}
	p := s.WatchProblem()
	if p == nil || !strings.Contains(p.Message, "watch policy directory") || !strings.Contains(p.Message, "no such file or directory") || p.At.IsZero() {
		t.Fatalf("WatchProblem after the root was removed: %+v, want the tree's watch and why it failed", p)
	}
	setFiles(t, root, map[string]string{"roles.cue": "package p\n// back\n"})
	noticed(t, calls, root, "roles.cue", "edit after the root came back")
	if p := s.WatchProblem(); p != nil {
		t.Errorf("WatchProblem once the root came back and is watched: %+v, want nil", p)
	}
}

// TestWatchRepairedByRetry: the root and its parent (the watched anchor)
// removed: nothing watched sees them come back, so the watch is set up
// again by a later attempt (minRepairDelay, doubling), which clears the
// problem and reports a change; edits are noticed again.
func TestWatchRepairedByRetry(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "parent")
	root := filepath.Join(parent, "policies")
	setFiles(t, root, map[string]string{"roles.cue": "package p\n"})
	s := newSource(t, root, Options{})
	calls := watch(t, s)
	settle(t, root, "roles.cue", calls)
	quiet(t, calls)
	if err := os.RemoveAll(parent); err != nil {
		t.Fatal(err)
	}
	waitProblem(t, s, true)
	before := calls.Load()
	setFiles(t, root, map[string]string{"roles.cue": "package p\n// back\n"})
	waitProblem(t, s, false)
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatal("the watch set up again reported no change: what changed while it was down is not fetched")
	}
	noticed(t, calls, root, "roles.cue", "edit after the watch was set up again")
}

// waitProblem waits until s reports a watch problem (want true) or none,
// for longer than the first repair attempts take.
func waitProblem(t *testing.T, s *Source, want bool) {
	t.Helper()
	for deadline := time.Now().Add(4*minRepairDelay + noticeTimeout); (s.WatchProblem() != nil) != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("WatchProblem = %+v, want a problem: %v", s.WatchProblem(), want)
		}
	}
}

// TestGitSyncRevision: in git-sync's layout each work tree is a linked git
// work tree at its commit; after the swap the revision is the new work
// tree's commit, not the old one's with "+dirty", and the watch follows the
// new work tree's HEAD.
func TestGitSyncRevision(t *testing.T) {
	top := t.TempDir()
	repo := filepath.Join(top, "repo.git")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	gittest.Init(t, repo)
	gittest.WriteFile(t, repo, "policies/roles.cue", "package p\n// A\n")
	commitA := gittest.CommitAll(t, repo, "A")
	gittest.WriteFile(t, repo, "policies/roles.cue", "package p\n// B\n")
	commitB := gittest.CommitAll(t, repo, "B")
	gittest.Git(t, repo, "worktree", "add", "-q", "--detach", filepath.Join(top, ".worktrees", "A"), commitA)
	gittest.Git(t, repo, "worktree", "add", "-q", "--detach", filepath.Join(top, ".worktrees", "B"), commitB)
	link := filepath.Join(top, "link")
	symlink(t, filepath.Join(".worktrees", "A"), link)
	s := newSource(t, link, Options{Path: "policies"})
	if rev, _, err := s.Fetch(ctx); err != nil || rev.ID != commitA {
		t.Fatalf("before the swap: revision %q, %v; want %s", rev.ID, err, commitA)
	}
	calls := watch(t, s)
	settle(t, filepath.Join(top, ".worktrees", "A"), "policies/settle.cue", calls)
	if err := os.Remove(filepath.Join(top, ".worktrees", "A", "policies", "settle.cue")); err != nil {
		t.Fatal(err)
	}
	quiet(t, calls)

	before := calls.Load()
	symlink(t, filepath.Join(".worktrees", "B"), filepath.Join(top, "link.tmp"))
	if err := os.Rename(filepath.Join(top, "link.tmp"), link); err != nil {
		t.Fatal(err)
	}
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatal("the swap was not reported")
	}
	rev, _, err := s.Fetch(ctx)
	if err != nil || rev.ID != commitB {
		t.Fatalf("after the swap: revision %q, %v; want %s", rev.ID, err, commitB)
	}
	if ok, err := s.Includes(ctx, rev.ID, commitA); err != nil || !ok {
		t.Errorf("Includes(B, A) = %v, %v; want true", ok, err)
	}
	// A commit in the new work tree moves its HEAD: reported.
	quiet(t, calls)
	before = calls.Load()
	gittest.Git(t, filepath.Join(top, ".worktrees", "B"), "commit", "-q", "--allow-empty", "-m", "C")
	if !waitCalls(calls, before, noticeTimeout) {
		t.Error("a commit in the new work tree was not reported")
	}
}

// TestWatchOverflowRescans: after fsnotify reports an overflow the whole
// tree is watched afresh and a change reported, so a watch lost with the
// dropped events (removed here behind the watch's back) works again.
func TestWatchOverflowRescans(t *testing.T) {
	root := t.TempDir()
	setFiles(t, root, map[string]string{"roles.cue": "package p\n", "support/x.cue": "package p\n"})
	s := newSource(t, root, Options{})
	made := make(chan *fsnotify.Watcher, 1)
	s.newWatcher = func() (*fsnotify.Watcher, error) {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			made <- w
		}
		return w, err
	}
	calls := watch(t, s)
	w := <-made
	settle(t, root, "roles.cue", calls)
	quiet(t, calls)

	if err := w.Remove(filepath.Join(root, "support")); err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	select {
	case w.Errors <- fsnotify.ErrEventOverflow:
	case <-time.After(noticeTimeout):
		t.Fatal("the watch does not read fsnotify's errors")
	}
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatal("the overflow was not reported as a change")
	}
	noticed(t, calls, root, "support/x.cue", "edit in a directory whose watch was lost")
}

// TestWatchConfigMapLayout: a Kubernetes ConfigMap volume. Each policy file
// is a symbolic link through the hidden "..data", itself a link to a hidden
// timestamped directory; an update writes a new directory and swaps "..data"
// with a rename. The files are read through the links (they stay inside the
// root), the swap is reported, and a fetch reads the new content.
func TestWatchConfigMapLayout(t *testing.T) {
	root := t.TempDir()
	setFiles(t, filepath.Join(root, "..2026_a"), map[string]string{"roles.cue": "package p\n// A\n"})
	symlink(t, "..2026_a", filepath.Join(root, "..data"))
	symlink(t, filepath.Join("..data", "roles.cue"), filepath.Join(root, "roles.cue"))
	s := newSource(t, root, Options{})
	calls := watch(t, s)
	if got := fetched(t, s, "roles.cue"); got != "package p\n// A\n" {
		t.Fatalf("roles.cue = %q, want the first version", got)
	}
	quiet(t, calls)

	before := calls.Load()
	setFiles(t, filepath.Join(root, "..2026_b"), map[string]string{"roles.cue": "package p\n// B\n"})
	symlink(t, "..2026_b", filepath.Join(root, "..data_tmp"))
	if err := os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	if !waitCalls(calls, before, noticeTimeout) {
		t.Fatal("the swap of ..data was not reported")
	}
	if got := fetched(t, s, "roles.cue"); got != "package p\n// B\n" {
		t.Fatalf("after the swap, roles.cue = %q, want the second version", got)
	}
}
