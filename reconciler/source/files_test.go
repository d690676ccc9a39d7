package source

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// rescan scans root with r and returns the files and the content of name.
func rescan(t *testing.T, r *Rescan, root, name string) (*Files, string) {
	t.Helper()
	files, err := r.ReadFS(context.Background(), os.DirFS(root), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(files.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return files, string(data)
}

// TestRescanSeesEditsInTheSameTick: a file rewritten again and again with
// content of the same size, its modification time set back each time, and
// scanned after each write, on a file system whose clock ticks once a
// second (simulated: Linux's multigrain timestamps give ext4 a distinct
// change time for each observed write, older kernels and other file systems
// do not). Size and times then stay as they were for a whole second: only
// the racy window (a file changed less than RacyWindow before the scan
// began is read again) makes the scan see the write. Every scan must see the
// last write; without the racy window, most would not.
func TestRescanSeesEditsInTheSameTick(t *testing.T) {
	for _, tick := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprint("tick ", tick), func(t *testing.T) {
			root := t.TempDir()
			file := filepath.Join(root, "roles.json")
			mtime := time.Now().Add(-time.Hour)
			r := Rescan{tick: tick}
			for i := range 300 {
				want := fmt.Sprintf(`{"n": %06d}`, i)
				if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(file, mtime, mtime); err != nil {
					t.Fatal(err)
				}
				if _, got := rescan(t, &r, root, "roles.json"); got != want {
					t.Fatalf("scan %d read %s, want %s: an edit in the same tick was missed", i, got, want)
				}
			}
		})
	}
}

// TestRescanKeepsWhatIsUnchanged: files last changed more than RacyWindow
// before a scan are kept by the next scans while their stat is the same
// (the same Files is returned), and read again when it is not: an edit in
// place of the same size with the modification time set back (touch -d) is
// seen by the change time; a file replaced by a rename, a new file and a
// removed file are seen too.
func TestRescanKeepsWhatIsUnchanged(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a Rescan keeps content only on Linux")
	}
	root := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.json", `{"v": 1}`)
	write("b.json", `{"w": 1}`)
	time.Sleep(RacyWindow + 100*time.Millisecond) // the files' stat can now be trusted
	var r Rescan
	first, _ := rescan(t, &r, root, "a.json")
	if again, _ := rescan(t, &r, root, "a.json"); again != first {
		t.Fatal("an unchanged tree was read again: not the same Files")
	}

	info, err := os.Stat(filepath.Join(root, "a.json"))
	if err != nil {
		t.Fatal(err)
	}
	write("a.json", `{"v": 2}`) // the same size
	if err := os.Chtimes(filepath.Join(root, "a.json"), info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	files, got := rescan(t, &r, root, "a.json")
	if got != `{"v": 2}` || files == first || files.Digest() == first.Digest() {
		t.Fatalf("an edit with its modification time set back: read %s, same Files %v", got, files == first)
	}

	steps := []struct {
		name string
		do   func()
		file string // whose content is checked
		want string // "" for a file that must be gone
	}{
		{"replaced by a rename", func() {
			write("b.tmp", `{"w": 2}`)
			if err := os.Rename(filepath.Join(root, "b.tmp"), filepath.Join(root, "b.json")); err != nil {
				t.Fatal(err)
			}
		}, "b.json", `{"w": 2}`},
		{"a new file", func() { write("c.json", `{}`) }, "c.json", `{}`},
		{"a removed file", func() {
			if err := os.Remove(filepath.Join(root, "c.json")); err != nil {
				t.Fatal(err)
			}
		}, "c.json", ""},
	}
	for _, st := range steps {
		before, _ := rescan(t, &r, root, "a.json")
		st.do()
		files, err := r.ReadFS(context.Background(), os.DirFS(root), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := fs.ReadFile(files.FS(), st.file)
		if st.want == "" && err == nil || st.want != "" && string(data) != st.want || files == before {
			t.Errorf("%s: %s is %q (%v), want %q, in new Files", st.name, st.file, data, err, st.want)
		}
	}
}
