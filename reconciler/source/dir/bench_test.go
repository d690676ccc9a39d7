package dir

import (
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema/policygen"
)

// BenchmarkFetchUnchanged measures a fetch of the 100,000-record policy
// when nothing changed, as the --interval rescan, POST /v1/reconcile and
// Charter-Min-Revision run it: in a plain directory and in a git work tree
// (where the files are also compared with HEAD's tree). The files are older
// than source.RacyWindow, as a tree that is not being edited is, so that
// their stat is trusted. -short: 10,000 documents.
//
//	go test ./reconciler/source/dir -run '^$' -bench FetchUnchanged -benchmem -count 5
func BenchmarkFetchUnchanged(b *testing.B) {
	for _, inGit := range []bool{false, true} {
		name := "plain"
		if inGit {
			name = "git"
		}
		b.Run(name, func(b *testing.B) {
			root := b.TempDir()
			o := policygen.Options{}
			if testing.Short() {
				o.Documents, o.Users = 10_000, 1000
			}
			if _, err := policygen.Write(root, o); err != nil {
				b.Fatal(err)
			}
			if inGit {
				gittest.Init(b, root)
				gittest.CommitAll(b, root, "policies")
			}
			s, err := New(root, Options{})
			if err != nil {
				b.Fatal(err)
			}
			time.Sleep(source.RacyWindow + 100*time.Millisecond)
			first, _, err := s.Fetch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				rev, _, err := s.Fetch(ctx)
				if err != nil || rev.ID != first.ID {
					b.Fatalf("fetch: %s, %v; want %s", rev.ID, err, first.ID)
				}
			}
		})
	}
}
