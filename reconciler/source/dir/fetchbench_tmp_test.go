package dir

import (
	"testing"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/schema/policygen"
)

func BenchmarkFetchUnchangedTmp(b *testing.B) {
	for _, inGit := range []bool{false, true} {
		name := "plain"
		if inGit {
			name = "git"
		}
		b.Run(name, func(b *testing.B) {
			root := b.TempDir()
			n, err := policygen.Write(root, policygen.Options{})
			if err != nil {
				b.Fatal(err)
			}
			_ = n
			if inGit {
				gittest.Init(b, root)
				gittest.CommitAll(b, root, "gen")
			}
			s, err := New(root, Options{})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, _, err := s.Fetch(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
