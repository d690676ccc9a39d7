package source_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/charter-policy/charter/reconciler/source"
)

// TestReadFSLinkOutOfRootOverLimit: a link out of the root to a file over
// the size limit is refused as a link out of the root. ReadFS looked at
// the target's size first (fs.Stat follows the link), so the refusal named
// a size limit and told the size of a file outside the root.
func TestReadFSLinkOutOfRootOverLimit(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, dir := range []string{root, outside} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "big.json"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/big.json", filepath.Join(root, "big.json")); err != nil {
		t.Fatal(err)
	}
	_, err := source.ReadFS(context.Background(), os.DirFS(root), source.Limits{File: 100})
	var ce *source.ContentError
	if !errors.As(err, &ce) || ce.Path != "big.json" || !strings.Contains(ce.Err.Error(), "leads outside the policy root") || strings.Contains(err.Error(), "1000") {
		t.Fatalf("err = %v, want big.json refused as a link out of the root, its target's size untold", err)
	}
}

// BenchmarkReadFS reads a policy root of 2,000 small files in 20
// directories, as the directory source does on every fetch.
func BenchmarkReadFS(b *testing.B) {
	root := b.TempDir()
	for d := range 20 {
		dir := filepath.Join(root, "d"+strconv.Itoa(d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(f)+".json"), []byte(`{"groups": {}}`), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	fsys := os.DirFS(root)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := source.ReadFS(context.Background(), fsys, source.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
