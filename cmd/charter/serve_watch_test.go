package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServeFollowsGitSyncSwap: --source is a symbolic link that git-sync
// swaps to a new work tree (ln -s .worktrees/B repo.tmp && mv -T repo.tmp
// repo). Without an interval, the watcher alone must notice the swap and
// serve work tree B, and then notice edits inside B (issue 8).
func TestServeFollowsGitSyncSwap(t *testing.T) {
	top := t.TempDir()
	a, b := filepath.Join(top, ".worktrees", "A"), filepath.Join(top, ".worktrees", "B")
	writePolicyFile(t, a, "roles.cue", serveRoles)
	writePolicyFile(t, a, "records.cue", versionRecords(1))
	writePolicyFile(t, b, "roles.cue", serveRoles)
	writePolicyFile(t, b, "records.cue", versionRecords(2))
	link := filepath.Join(top, "repo")
	if err := os.Symlink(filepath.Join(".worktrees", "A"), link); err != nil {
		t.Fatal(err)
	}
	s := launchServer(t, serveConfig{source: link, debounce: 50 * time.Millisecond})
	s.waitFor(t, func() bool { return s.status(t).Revision != "" })
	allowed := func(k int) func() bool {
		return func() bool {
			ok, _, err := s.check("ann", fmt.Sprintf("documents/d%d", k), "documents:read")
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
	}
	s.waitFor(t, allowed(1))

	if err := os.Symlink(filepath.Join(".worktrees", "B"), filepath.Join(top, "repo.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(top, "repo.tmp"), link); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, allowed(2))
	writePolicyFile(t, b, "records.cue", versionRecords(3))
	s.waitFor(t, allowed(3))
}
