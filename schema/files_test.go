package schema

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

// TestReadPolicyFile: SPEC section 1 reads regular files only, and follows
// a symbolic link only to a regular file inside the policy root; anything
// else is an error naming the path, and is never read.
func TestReadPolicyFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links and named pipes")
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.json"), []byte(`{"groups": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	const group = `{"groups": {"g": {"name": "G"}}}`
	files := map[string]string{"a.json": group, "sub/b.json": group, "sub/deep/x": "", ".git/config": group, "..data/c.json": group}
	links := map[string]string{
		"in.json":         "a.json",
		"sub/up.json":     "../a.json",
		"sub/chain.json":  "../in.json",
		"out.json":        "../" + filepath.Base(outside) + "/secret.json",
		"abs.json":        filepath.Join(outside, "secret.json"),
		"outdir":          outside,
		"loop1.json":      "loop2.json",
		"loop2.json":      "loop1.json",
		"dir.json":        "sub",
		"sub/dotdot.json": "../../x.json",
		// ".." after a link leaves the link's target, as the system has it
		"deeplink":             "sub/deep",
		"afterlink.json":       "deeplink/../b.json",
		"outlink":              "../" + filepath.Base(outside),
		"afteroutlink.json":    "outlink/../" + filepath.Base(outside) + "/secret.json",
		"dangling.json":        "nowhere.json",
		"throughfile.json":     "a.json/b.json",
		"missingparent.json":   "nowhere/..",
		"git.json":             ".git/config",
		"gitthrough.json":      "sub/../.git/config",
		"configmap.json":       "..data/c.json",
		"sub/rootlink.json":    "..",
		"selfloop":             "selfloop/x",
		"throughselfloop.json": "selfloop/a.json",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The root as the tests see it: a sibling of outside, so that
	// "../outside/secret.json" really exists. Read through os.DirFS and
	// through an os.Root that opens without blocking, with the same rule.
	opened, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	tests := []struct {
		name    string
		wantErr string // "" when the file is read
	}{
		{"a.json", ""},
		{"sub/b.json", ""},
		{"in.json", ""},
		{"sub/up.json", ""},
		{"sub/chain.json", ""},
		{"out.json", "leads outside the policy root"},
		{"abs.json", "leads outside the policy root"},
		{"outdir/secret.json", "leads outside the policy root"},
		{"loop1.json", "symbolic links to follow (a loop?)"},
		{"dir.json", "not a regular file (a directory)"},
		{"sub/dotdot.json", "leads outside the policy root"},
		{"pipe.json", "not a regular file (a named pipe)"},
		{"afterlink.json", ""}, // sub/deep/.. is sub: sub/b.json, not b.json
		{"afteroutlink.json", "leads outside the policy root"},
		{"dangling.json", "symbolic link to nothing"},
		{"throughfile.json", "symbolic link to nothing"},
		{"missingparent.json", "symbolic link to nothing"},
		{"git.json", "leads into .git"},
		{"gitthrough.json", "leads into .git"},
		{"configmap.json", ""},
		{"sub/rootlink.json", "not a regular file (a directory)"},
		{"throughselfloop.json", "symbolic links to follow (a loop?)"},
	}
	for fsName, fsys := range map[string]fs.FS{"os.DirFS": os.DirFS(root), "RootFS": RootFS(opened)} {
		for _, tc := range tests {
			data, err := ReadPolicyFile(fsys, tc.name)
			if tc.wantErr == "" {
				if err != nil || string(data) != group {
					t.Errorf("%s: %s: %q, %v; want the group file", fsName, tc.name, data, err)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, tc.wantErr) || e.Pos.File != tc.name {
				t.Errorf("%s: %s: err = %v, want a policy error naming it: %s", fsName, tc.name, err, tc.wantErr)
			}
		}
	}
}

// TestReadPolicyFileSwappedForPipe: a regular file swapped for a named pipe
// between the check and the open is refused at once, with an error placed
// at the file, when the file system opens without blocking (RootFS); the
// open would otherwise wait for a writer forever.
func TestReadPolicyFileSwappedForPipe(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("named pipes")
	}
	root := t.TempDir()
	name := filepath.Join(root, "a.json")
	if err := os.WriteFile(name, []byte(`{"groups": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	opened, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	fsys := RootFS(opened)
	resolved, info, err := StatPolicyFile(fsys, "a.json")
	if err != nil {
		t.Fatal(err)
	}
	// The swap, between StatPolicyFile and the open of ReadPolicyFile.
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(name, 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, _, _, err := readChecked(fsys, "a.json", resolved, info, MaxFileBytes)
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		var e *Error
		if !errors.As(r.err, &e) || e.Pos != (Pos{File: "a.json", Line: 1}) || !strings.Contains(e.Message, "changed to a named pipe") || r.data != nil {
			t.Errorf("read a named pipe swapped in: %q, %v; want a policy error at a.json:1 saying so", r.data, r.err)
		}
	case <-time.After(10 * time.Second):
		// Free the blocked open, so that the test ends: a writer appears.
		if w, err := os.OpenFile(name, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatal("the open of a named pipe swapped in for a regular file blocked")
	}
}

// TestReadPolicyFileSize: a file over the bound is refused before it is read.
func TestReadPolicyFileSize(t *testing.T) {
	fsys := fstest.MapFS{"big.json": {Data: []byte(`{"groups": {}}`)}}
	if _, err := ReadPolicyFileAtMost(fsys, "big.json", 14); err != nil {
		t.Errorf("14 bytes, bound 14: %v", err)
	}
	_, err := ReadPolicyFileAtMost(fsys, "big.json", 13)
	var e *Error
	if !errors.As(err, &e) || e.Error() != "big.json:1: file is 14 bytes, more than the 13 a policy file may hold" {
		t.Errorf("14 bytes, bound 13: err = %v", err)
	}
}

// TestLoadRefusesWhatItMustNotRead: the loader reports a named pipe, a
// link out of the root and a link to nothing as errors, beside the errors
// of the other files (not as a failure to read the root), and never reads
// them.
func TestLoadRefusesWhatItMustNotRead(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links and named pipes")
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "roles.json"), []byte(`{"roles": {"R": {"name": "R", "permissions": [{"action": "a"}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "groups.json"), []byte(`{"groups": {"g": {"name": 1}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "roles.json"), filepath.Join(root, "roles.json")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "records.cue"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere.yaml", filepath.Join(root, "tests.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := NewLoader().Load(context.Background(), os.DirFS(root))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	want := []string{
		"groups.json:1:27: groups.g.name: must be a string, got a number",
		"records.cue:1: not a regular file (a named pipe): a policy file is a regular file, or a symbolic link to one inside the policy root",
		`roles.json:1: symbolic link to "` + filepath.Join(outside, "roles.json") + `" leads outside the policy root: only links to files inside it are followed`,
		`tests.yaml:1: symbolic link to nothing: "nowhere.yaml" names no file inside the policy root`,
	}
	if got := strings.Split(errs.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", errs, strings.Join(want, "\n"))
	}
}

// swappedFS is a directory whose file name is replaced by another between
// the check and the open, as a concurrent writer could do.
type swappedFS struct {
	dir        fs.FS
	name, with string
}

func (s swappedFS) Open(name string) (fs.File, error) {
	if name == s.name {
		name = s.with
	}
	return s.dir.Open(name)
}
func (s swappedFS) ReadLink(name string) (string, error)   { return fs.ReadLink(s.dir, name) }
func (s swappedFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(s.dir, name) }

// TestReadPolicyFileSwapped: what is opened must be the file that was
// checked; another one (a link swapped in, a pipe) is refused.
func TestReadPolicyFileSwapped(t *testing.T) {
	root := t.TempDir()
	for name, data := range map[string]string{"a.json": `{}`, "b.json": `{"roles": {}}`} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := swappedFS{dir: os.DirFS(root), name: "a.json", with: "b.json"}
	if data, err := ReadPolicyFile(fsys, "b.json"); err != nil || string(data) != `{"roles": {}}` {
		t.Fatalf("b.json: %q, %v", data, err)
	}
	data, err := ReadPolicyFile(fsys, "a.json")
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Message, "changed while it was read") {
		t.Fatalf("a.json swapped for b.json: %q, %v; want it refused", data, err)
	}
}
