package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// watchRow is a row of issue 8's table about the watcher: something done to
// the policy tree that once left the sidecar deaf.
type watchRow struct {
	name string
	// layout makes the policy tree below top, with roles.cue and
	// versionRecords(1), and returns --source and the records file.
	layout func(t *testing.T, top string) (source, records string)
	// change does what the row is about and ends with versionRecords(2)
	// saved; it returns the records file from then on.
	change func(t *testing.T, s *server, top, records string) string
}

// plainTree is the layout of most rows: top/policy with
// support/records.cue.
func plainTree(t *testing.T, top string) (string, string) {
	root := filepath.Join(top, "policy")
	writePolicyFile(t, root, "roles.cue", serveRoles)
	writePolicyFile(t, root, "support/records.cue", versionRecords(1))
	return root, filepath.Join(root, "support", "records.cue")
}

var watchRows = []watchRow{
	{
		// git-sync publishes a commit by swapping a symbolic link to a new
		// work tree: ln -s .worktrees/B repo.tmp && mv -T repo.tmp repo.
		name: "git-sync swaps the source symlink",
		layout: func(t *testing.T, top string) (string, string) {
			a := filepath.Join(top, ".worktrees", "A")
			writePolicyFile(t, a, "roles.cue", serveRoles)
			writePolicyFile(t, a, "records.cue", versionRecords(1))
			link := filepath.Join(top, "repo")
			symlinkTo(t, filepath.Join(".worktrees", "A"), link)
			return link, filepath.Join(a, "records.cue")
		},
		change: func(t *testing.T, _ *server, top, _ string) string {
			b := filepath.Join(top, ".worktrees", "B")
			writePolicyFile(t, b, "roles.cue", serveRoles)
			writePolicyFile(t, b, "records.cue", versionRecords(2))
			symlinkTo(t, filepath.Join(".worktrees", "B"), filepath.Join(top, "repo.tmp"))
			if err := os.Rename(filepath.Join(top, "repo.tmp"), filepath.Join(top, "repo")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(b, "records.cue")
		},
	},
	{
		name:   "rm -rf of the source directory, then made again",
		layout: plainTree,
		change: func(t *testing.T, _ *server, top, records string) string {
			root := filepath.Join(top, "policy")
			if err := os.RemoveAll(root); err != nil {
				t.Fatal(err)
			}
			writePolicyFile(t, root, "roles.cue", serveRoles)
			writePolicyFile(t, root, "support/records.cue", versionRecords(2))
			return records
		},
	},
	{
		name:   "mv of a directory, then an edit inside it",
		layout: plainTree,
		change: func(t *testing.T, _ *server, top, _ string) string {
			root := filepath.Join(top, "policy")
			if err := os.Rename(filepath.Join(root, "support"), filepath.Join(root, "support2")); err != nil {
				t.Fatal(err)
			}
			writePolicyFile(t, root, "support2/records.cue", versionRecords(2))
			return filepath.Join(root, "support2", "records.cue")
		},
	},
	{
		// Nothing watched sees the tree come back (the parent's watch went
		// with it): the watch is set up again by a later attempt, and until
		// then /v1/status shows watchError.
		name:   "the source directory and its parent removed, then made again",
		layout: func(t *testing.T, top string) (string, string) { return plainTree(t, filepath.Join(top, "parent")) },
		change: func(t *testing.T, s *server, top, records string) string {
			if err := os.RemoveAll(filepath.Join(top, "parent")); err != nil {
				t.Fatal(err)
			}
			s.waitFor(t, func() bool { return s.status(t).WatchError != nil })
			if w := s.status(t).WatchError; !strings.Contains(w.Message, "no such file or directory") || w.At.IsZero() {
				t.Errorf("watchError while the directory is gone: %+v", w)
			}
			root := filepath.Join(top, "parent", "policy")
			writePolicyFile(t, root, "roles.cue", serveRoles)
			writePolicyFile(t, root, "support/records.cue", versionRecords(2))
			s.waitFor(t, func() bool { return s.status(t).WatchError == nil })
			return records
		},
	},
	{
		// 20 writes a second for 3 s: the debounce's maximum wait (1 s)
		// still reloads while they go on (the issue saw 2 reloads in 30 s).
		name:   "20 writes a second to one file",
		layout: plainTree,
		change: func(t *testing.T, s *server, _, records string) string {
			seen := map[string]bool{s.status(t).Revision: true}
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i, stop := 0, time.Now().Add(3*time.Second); time.Now().Before(stop); i++ {
				writePolicyFile(t, filepath.Dir(records), filepath.Base(records), versionRecords(100+i))
				seen[s.status(t).Revision] = true
				<-tick.C
			}
			if len(seen) < 3 {
				t.Errorf("%d revisions served during 3 s of 20 writes a second, want the first and at least 2 more", len(seen))
			}
			writePolicyFile(t, filepath.Dir(records), filepath.Base(records), versionRecords(2))
			return records
		},
	},
}

// TestServeWatchSurvives runs charter serve without --interval, so that its
// watcher alone reloads, through each watchRow: after the row's change the
// edit it ends with is served, with no error and no watch problem in
// /v1/status, and a further edit is served too: the watch is not deaf.
func TestServeWatchSurvives(t *testing.T) {
	for _, tt := range watchRows {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			src, records := tt.layout(t, top)
			s := launchServer(t, serveConfig{source: src, debounce: 50 * time.Millisecond})
			allowed := func(k int) func() bool {
				return func() bool {
					ok, _, err := s.check("ann", fmt.Sprintf("documents/d%d", k), "documents:read")
					if err != nil {
						t.Fatal(err)
					}
					return ok
				}
			}
			s.waitFor(t, func() bool { return s.status(t).Revision != "" })
			s.waitFor(t, allowed(1))

			records = tt.change(t, s, top, records)
			s.waitFor(t, allowed(2))
			if st := s.status(t); st.Error != nil || st.WatchError != nil {
				t.Errorf("status once the change is served: error %+v, watchError %+v", st.Error, st.WatchError)
			}
			writePolicyFile(t, filepath.Dir(records), filepath.Base(records), versionRecords(3))
			s.waitFor(t, allowed(3))
		})
	}
}
