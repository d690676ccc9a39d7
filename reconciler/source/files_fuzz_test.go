package source_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema"
)

// The path rules of SPEC section 1, fuzzed against a model: random trees of
// directories, files, symbolic links (relative and absolute, inside and
// outside the root, chains, loops, dangling) and named pipes are built in a
// temporary directory, read by schema.WalkPolicyFiles with
// schema.ReadPolicyFileAtMost and by source.ReadFS, and what they read or
// refuse is compared with what modelRead, written apart from them, says;
// schema's Loader loads the tree too, and may fail only with positioned
// errors. A secret file lies beside the root; its bytes must never come
// back, in a file read or in an error. Nothing may block on a named pipe.

// Limits of the fuzzed reads, small so that the size rules are reached.
const (
	fuzzFileBytes  = 48
	fuzzTotalBytes = 200
)

// outsideSecret is the content of the files beside the policy root.
const outsideSecret = "OUTSIDE-SECRET-7f3a9c"

type treeKind int

const (
	treeDir treeKind = iota
	treeFile
	treeLink
	treeFIFO
)

// treeEntry is one entry of a generated policy root.
type treeEntry struct {
	kind   treeKind
	data   string // a file's content
	target string // a link's target, as written
}

// tree is a generated policy root: entries by slash-separated path, and
// the order they were made in.
type tree struct {
	entries map[string]*treeEntry
	order   []string
}

// Names of entries and components of link targets. "outside" and "root"
// name the directories around the policy root, so that "../outside/x" and
// "../root/a" occur; "secret.json" and "big.json" lie in outside.
var (
	entryNames  = []string{"a", "b.json", "c.cue", ".git", "cue.mod", "d.yaml", ".e.json", "f.txt", "outside", "g.yml", "..data"}
	targetNames = append(slices.Clone(entryNames), "..", ".", "..", "secret.json", "big.json", "root")
)

// byteReader hands out the fuzz input a byte at a time, then zeros.
type byteReader struct {
	data []byte
	off  int
}

func (r *byteReader) next() int {
	if r.off >= len(r.data) {
		return 0
	}
	r.off++
	return int(r.data[r.off-1])
}

func (r *byteReader) pick(names []string) string { return names[r.next()%len(names)] }

// buildTree interprets data as up to 48 operations that add entries to a
// tree; base is the absolute directory holding root and outside.
func buildTree(data []byte, base string) *tree {
	r := &byteReader{data: data}
	t := &tree{entries: map[string]*treeEntry{}}
	add := func(p string, e *treeEntry) {
		// every parent must be a directory: made here when missing
		parts := strings.Split(p, "/")
		for i := 1; i < len(parts); i++ {
			dir := strings.Join(parts[:i], "/")
			switch pe := t.entries[dir]; {
			case pe == nil:
				t.entries[dir] = &treeEntry{kind: treeDir}
				t.order = append(t.order, dir)
			case pe.kind != treeDir:
				return
			}
		}
		if t.entries[p] != nil {
			return
		}
		t.entries[p] = e
		t.order = append(t.order, p)
	}
	randPath := func() string {
		parts := make([]string, 1+r.next()%3)
		for i := range parts {
			parts[i] = r.pick(entryNames)
		}
		return strings.Join(parts, "/")
	}
	for ops := 0; ops < 48 && r.off < len(r.data); ops++ {
		op, p := r.next()%8, randPath()
		depth := strings.Count(p, "/")
		switch op {
		case 0:
			add(p, &treeEntry{kind: treeDir})
		case 1, 2:
			size := r.next() % 64
			add(p, &treeEntry{kind: treeFile, data: (p + ":" + strings.Repeat("x", size))[:len(p)/2+size]})
		case 3: // a relative link of random components
			parts := make([]string, 1+r.next()%4)
			for i := range parts {
				parts[i] = r.pick(targetNames)
			}
			add(p, &treeEntry{kind: treeLink, target: strings.Join(parts, "/")})
		case 4: // an absolute link, into the root or out of it
			targets := []string{
				base + "/root/" + randPath(), base + "/outside/secret.json", base + "/outside/big.json",
				"/dev/null", "/dev/zero", base + "/root",
			}
			add(p, &treeEntry{kind: treeLink, target: r.pick(targets)})
		case 5: // a link to an entry made before, relative to the link's directory
			if len(t.order) == 0 {
				continue
			}
			to := t.order[r.next()%len(t.order)]
			add(p, &treeEntry{kind: treeLink, target: strings.Repeat("../", depth) + to})
		case 6: // a link out of the root, to the secret or to a file over the limits
			add(p, &treeEntry{kind: treeLink, target: strings.Repeat("../", depth+1) + "outside/" + r.pick([]string{"secret.json", "big.json", "dir"})})
		case 7:
			add(p, &treeEntry{kind: treeFIFO})
		}
	}
	return t
}

// write makes the tree under root.
func (tr *tree) write(t *testing.T, root string) {
	t.Helper()
	for _, p := range tr.order {
		e, full := tr.entries[p], filepath.Join(root, filepath.FromSlash(p))
		var err error
		switch e.kind {
		case treeDir:
			err = os.Mkdir(full, 0o755)
		case treeFile:
			err = os.WriteFile(full, []byte(e.data), 0o644)
		case treeLink:
			err = os.Symlink(e.target, full)
		case treeFIFO:
			err = syscall.Mkfifo(full, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// outcome is what reading one policy file yields: its content, or the
// kind of refusal (a phrase its message holds).
type outcome struct {
	data    string
	refusal string // "" when read
}

const (
	refusedOutside  = "leads outside the policy root"
	refusedLoop     = "symbolic links to follow"
	refusedDangling = "symbolic link to nothing"
	refusedGit      = "leads into .git"
	refusedDir      = "not a regular file (a directory)"
	refusedPipe     = "not a regular file (a named pipe)"
	refusedSize     = "a policy file may hold"
)

// modelWalk lists the policy files of the tree in the order of a walk:
// each directory's entries sorted by name, a directory's content before
// its next sibling; hidden entries and cue.mod skipped; links and pipes
// listed as files; files with a policy extension only.
func (tr *tree) modelWalk() []string {
	children := map[string][]string{}
	for p := range tr.entries {
		dir := path.Dir(p)
		if dir == "." {
			dir = ""
		}
		children[dir] = append(children[dir], path.Base(p))
	}
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		names := children[dir]
		slices.Sort(names)
		for _, n := range names {
			p := n
			if dir != "" {
				p = dir + "/" + n
			}
			if strings.HasPrefix(n, ".") {
				continue
			}
			if tr.entries[p].kind == treeDir {
				if n != "cue.mod" {
					walk(p)
				}
				continue
			}
			switch path.Ext(n) {
			case ".cue", ".json", ".yaml", ".yml":
				out = append(out, p)
			}
		}
	}
	walk("")
	return out
}

// modelRead says what reading name yields: links are followed as the
// system follows them, component by component, at most 40 of them; a link
// whose resolution leaves the root (an absolute target, even one that
// names the root again, or a ".." above it) is refused, as is one that
// ends at nothing, inside .git (other hidden directories may be reached
// through links, as in a ConfigMap volume) or at something other than a
// regular file; a regular file over maxBytes is refused.
func (tr *tree) modelRead(name string, maxBytes int) outcome {
	var done []string // the resolved, link-free components
	rest := strings.Split(name, "/")
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return outcome{refusal: refusedOutside}
			}
			done = done[:len(done)-1]
			continue
		}
		p := strings.Join(append(slices.Clone(done), c), "/")
		e := tr.entries[p]
		switch {
		case e == nil:
			return outcome{refusal: refusedDangling}
		case e.kind == treeLink:
			if hops++; hops > 40 {
				return outcome{refusal: refusedLoop}
			}
			if strings.HasPrefix(e.target, "/") {
				return outcome{refusal: refusedOutside}
			}
			rest = append(strings.Split(e.target, "/"), rest...)
		case e.kind != treeDir && len(rest) > 0:
			return outcome{refusal: refusedDangling} // a file in the middle of a path
		default:
			done = append(done, c)
		}
	}
	if hops > 0 && slices.Contains(done, ".git") {
		return outcome{refusal: refusedGit}
	}
	if len(done) == 0 {
		return outcome{refusal: refusedDir} // the root itself
	}
	switch e := tr.entries[strings.Join(done, "/")]; e.kind {
	case treeDir:
		return outcome{refusal: refusedDir}
	case treeFIFO:
		return outcome{refusal: refusedPipe}
	default:
		if len(e.data) > maxBytes {
			return outcome{refusal: refusedSize}
		}
		return outcome{data: e.data}
	}
}

// readAll walks fsys and reads each policy file as the loader does.
func readAll(fsys fs.FS, maxBytes int64) ([]string, map[string]outcome, error) {
	var names []string
	got := map[string]outcome{}
	err := schema.WalkPolicyFiles(context.Background(), fsys, func(name string) error {
		names = append(names, name)
		data, err := schema.ReadPolicyFileAtMost(fsys, name, maxBytes)
		var e *schema.Error
		switch {
		case err == nil:
			got[name] = outcome{data: string(data)}
		case errors.As(err, &e):
			if e.Pos.File != name || e.Pos.Line != 1 {
				return fmt.Errorf("%s: refused at %s, want %s:1", name, e.Pos, name)
			}
			got[name] = outcome{refusal: e.Message}
		default:
			got[name] = outcome{refusal: "not a policy error: " + err.Error()}
		}
		return nil
	})
	return names, got, err
}

// withDeadline runs fn, and fails the test if it does not return within
// d: a read that blocks (on a named pipe) is released by opening every
// pipe of the tree for writing, and reported.
func withDeadline(t *testing.T, d time.Duration, pipes []string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		for _, p := range pipes {
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
		<-done
		t.Fatalf("reading the policy root blocked for %v (on a named pipe?)", d)
	}
}

func FuzzPolicyRoot(f *testing.F) {
	if runtime.GOOS == "windows" {
		f.Skip("symbolic links and named pipes")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		for _, dir := range []string{root, filepath.Join(outside, "dir")} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		big := strings.Repeat(outsideSecret, 20)
		for name, content := range map[string]string{"secret.json": outsideSecret, "big.json": big, "dir/x.json": outsideSecret} {
			if err := os.WriteFile(filepath.Join(outside, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tr := buildTree(data, base)
		tr.write(t, root)
		var pipes []string
		for p, e := range tr.entries {
			if e.kind == treeFIFO {
				pipes = append(pipes, filepath.Join(root, p))
			}
		}

		fsys := os.DirFS(root)
		var names []string
		var got map[string]outcome
		var walkErr, readFSErr error
		var files *source.Files
		var loadErr error
		withDeadline(t, 10*time.Second, pipes, func() {
			names, got, walkErr = readAll(fsys, fuzzFileBytes)
			files, readFSErr = source.ReadFS(context.Background(), fsys, source.Limits{File: fuzzFileBytes, Total: fuzzTotalBytes})
			_, loadErr = schema.NewLoader().Load(context.Background(), fsys)
		})

		// The loader names every file it refuses at a position: a load
		// fails only as a policy with errors (or none), never as I/O.
		var errs schema.Errors
		if loadErr != nil && !errors.Is(loadErr, schema.ErrNoPolicy) && !errors.As(loadErr, &errs) {
			t.Errorf("load: %v, want errors at positions\ntree: %s", loadErr, tr)
		}
		if loadErr != nil && strings.Contains(loadErr.Error(), outsideSecret) {
			t.Errorf("load shows the secret: %v", loadErr)
		}

		// Nothing outside the root is read, or shown.
		for name, o := range got {
			if strings.Contains(o.data+o.refusal, outsideSecret) {
				t.Errorf("%s: the secret outside the root came back: %+v", name, o)
			}
		}
		if readFSErr != nil && strings.Contains(readFSErr.Error(), outsideSecret) {
			t.Errorf("ReadFS shows the secret: %v", readFSErr)
		}
		gotFiles := map[string]string{}
		if files != nil {
			err := fs.WalkDir(files.FS(), ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				data, err := fs.ReadFile(files.FS(), p)
				gotFiles[p] = string(data)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for name, data := range gotFiles {
			if strings.Contains(data, outsideSecret) {
				t.Errorf("ReadFS: %s holds the secret from outside the root", name)
			}
		}

		// The walk and reads as the loader does them.
		if walkErr != nil {
			t.Fatalf("walk: %v", walkErr)
		}
		if want := tr.modelWalk(); !slices.Equal(names, want) {
			t.Fatalf("walked %q, want %q\ntree: %s", names, want, tr)
		}
		for _, name := range names {
			want, o := tr.modelRead(name, fuzzFileBytes), got[name]
			if want.refusal == "" && (o.refusal != "" || o.data != want.data) ||
				want.refusal != "" && !strings.Contains(o.refusal, want.refusal) {
				t.Errorf("%s: read %+v, want %+v\ntree: %s", name, o, want, tr)
			}
		}

		// source.ReadFS: every file read, or the first refused one named.
		wantFiles, total := map[string]string{}, 0
		var wantErr, wantRefusal string // the path ReadFS must stop at, and why
		for _, name := range names {
			o := tr.modelRead(name, fuzzFileBytes)
			if o.refusal == "" && total+len(o.data) > fuzzTotalBytes {
				o.refusal = "exceed 200 bytes together"
			}
			if o.refusal != "" {
				wantErr, wantRefusal = name, o.refusal
				break
			}
			total += len(o.data)
			wantFiles[name] = o.data
		}
		var ce *source.ContentError
		switch {
		case wantErr != "":
			if !errors.As(readFSErr, &ce) || ce.Path != wantErr || !strings.Contains(ce.Err.Error(), wantRefusal) {
				t.Errorf("ReadFS: %v, want a content error at %s: %s\ntree: %s", readFSErr, wantErr, wantRefusal, tr)
			}
		case readFSErr != nil:
			t.Errorf("ReadFS: %v, want %d files\ntree: %s", readFSErr, len(wantFiles), tr)
		default:
			if !maps.Equal(gotFiles, wantFiles) {
				t.Errorf("ReadFS read %q, want %q\ntree: %s", gotFiles, wantFiles, tr)
			}
		}
	})
}

// String renders the tree for a failure message.
func (tr *tree) String() string {
	var b strings.Builder
	for _, p := range tr.order {
		e := tr.entries[p]
		switch e.kind {
		case treeDir:
			fmt.Fprintf(&b, "\n  %s/", p)
		case treeFile:
			fmt.Fprintf(&b, "\n  %s (%d bytes)", p, len(e.data))
		case treeLink:
			fmt.Fprintf(&b, "\n  %s -> %s", p, e.target)
		case treeFIFO:
			fmt.Fprintf(&b, "\n  %s (pipe)", p)
		}
	}
	return b.String()
}
