package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/charter-policy/charter/reconciler/source"
)

// maxLinkTarget bounds the target a symbolic link's blob may hold.
const maxLinkTarget = 4096

// TreeFS returns the tree below subpath (slash-separated, "" for the
// repository root) of the commit rev names, as a read-only fs.FS read from
// the object store on demand: a blob is read only when its file is read, so
// nothing outside subpath, and no file that is not opened and read, is ever
// loaded. It implements fs.ReadDirFS and fs.ReadLinkFS: a symbolic link is
// presented as a link (its Lstat and ReadLink), never followed by Open, so
// that schema.ReadPolicyFile applies the one rule of what may be read. A
// submodule (a gitlink) is a directory entry of mode fs.ModeIrregular that
// cannot be opened. A subpath that is not a directory in the commit is an
// error wrapping ErrPathNotFound. Every call takes the repository's lock.
func (r *Repo) TreeFS(ctx context.Context, rev, subpath string) (fs.FS, error) {
	if err := r.mu.LockContext(ctx); err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	sub, err := CleanPath(subpath)
	if err != nil {
		return nil, err
	}
	c, err := r.commitObject(rev)
	if err != nil {
		return nil, err
	}
	h := c.Hash
	root, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("tree of %s: %w", h, err)
	}
	if sub != "" {
		root, err = root.Tree(sub)
		if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
			return nil, fmt.Errorf("%s in %s: %w", sub, h, ErrPathNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("tree %s of %s: %w", sub, h, err)
		}
	}
	return &treeFS{r: r, root: root, when: c.Committer.When, trees: map[string]*object.Tree{".": root}, gitlinks: map[string]bool{}}, nil
}

// treeFS is a commit's tree as an fs.FS. Its methods hold r.mu while they
// read objects; trees is guarded by it too.
type treeFS struct {
	r     *Repo
	root  *object.Tree
	when  time.Time // every file's ModTime: the commit's
	trees map[string]*object.Tree
	// gitlinks are the submodules ReadDir has listed.
	gitlinks map[string]bool
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadLinkFS = (*treeFS)(nil)
)

// entry is one name in the tree: the root, or a tree entry.
type entry struct {
	name string // base name; "." for the root
	mode filemode.FileMode
	hash plumbing.Hash
}

// lookup finds name's entry without following symbolic links; r.mu is held.
// A path through a file or a link is not found.
func (t *treeFS) lookup(op, name string) (entry, error) {
	if !fs.ValidPath(name) {
		return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return entry{name: ".", mode: filemode.Dir, hash: t.root.Hash}, nil
	}
	dir, base := path.Split(name)
	tree, err := t.tree(op, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return entry{}, err
	}
	for _, e := range tree.Entries {
		if e.Name == base {
			return entry{name: e.Name, mode: e.Mode, hash: e.Hash}, nil
		}
	}
	return entry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

// tree returns the tree of the directory dir ("" or "." for the root);
// r.mu is held.
func (t *treeFS) tree(op, dir string) (*object.Tree, error) {
	if dir == "" {
		dir = "."
	}
	if tree, ok := t.trees[dir]; ok {
		return tree, nil
	}
	e, err := t.lookup(op, dir)
	if err != nil {
		return nil, err
	}
	if e.mode != filemode.Dir {
		return nil, &fs.PathError{Op: op, Path: dir, Err: errors.New("not a directory")}
	}
	tree, err := t.r.repo.TreeObject(e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: dir, Err: fmt.Errorf("read tree %s: %w", e.hash, err)}
	}
	t.trees[dir] = tree
	return tree, nil
}

// info describes e; r.mu is held. A blob's size is read from the object's
// header, not its content.
func (t *treeFS) info(op, name string, e entry) (*fileInfo, error) {
	fi := &fileInfo{name: e.name, hash: e.hash, when: t.when}
	switch e.mode {
	case filemode.Dir:
		fi.mode = fs.ModeDir | 0o555
		return fi, nil
	case filemode.Submodule:
		fi.mode = fs.ModeIrregular
		return fi, nil
	case filemode.Symlink:
		fi.mode = fs.ModeSymlink | 0o777
	case filemode.Executable:
		fi.mode = 0o555
	default:
		fi.mode = 0o444
	}
	size, err := t.blobSize(e.hash)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	fi.size = size
	return fi, nil
}

// blobSize returns the size of the blob h, read from the object's header,
// not its content; r.mu is held.
func (t *treeFS) blobSize(h plumbing.Hash) (int64, error) {
	size, err := t.r.repo.Storer.EncodedObjectSize(h)
	if err != nil {
		return 0, fmt.Errorf("read blob %s: %w", h, err)
	}
	return size, nil
}

// Open opens name. A directory can be read with ReadDir; a file's content
// is read from the object store on its first Read. A symbolic link or a
// submodule cannot be opened.
func (t *treeFS) Open(name string) (fs.File, error) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	e, err := t.lookup("open", name)
	if err != nil {
		return nil, err
	}
	switch e.mode {
	case filemode.Symlink:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("symbolic link: read it with ReadLink")}
	case filemode.Submodule:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("submodule: not part of this repository's content")}
	}
	fi, err := t.info("open", name, e)
	if err != nil {
		return nil, err
	}
	if e.mode == filemode.Dir {
		return &dirFile{t: t, name: name, info: fi}, nil
	}
	return &blobFile{t: t, name: name, info: fi}, nil
}

// ReadDir lists the directory name, sorted by file name.
func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	return t.readDir(name)
}

// readDir is ReadDir with r.mu held.
func (t *treeFS) readDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	tree, err := t.tree("readdir", name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(tree.Entries))
	for _, e := range tree.Entries {
		out = append(out, &dirEntry{t: t, dir: name, e: entry{name: e.Name, mode: e.Mode, hash: e.Hash}})
		if e.Mode == filemode.Submodule {
			t.gitlinks[path.Join(name, e.Name)] = true
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// submodules returns the submodules ReadDir has listed, sorted; r.mu is
// held.
func (t *treeFS) submodules() []string {
	return slices.Sorted(maps.Keys(t.gitlinks))
}

// Lstat describes name without following a symbolic link.
func (t *treeFS) Lstat(name string) (fs.FileInfo, error) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	e, err := t.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return t.info("lstat", name, e)
}

// ReadLink returns the target of the symbolic link name.
func (t *treeFS) ReadLink(name string) (string, error) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	e, err := t.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if e.mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	data, err := t.readBlob(e.hash, maxLinkTarget)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(data), nil
}

// readBlob returns the content of the blob h, an error when it holds more
// than max bytes; r.mu is held.
func (t *treeFS) readBlob(h plumbing.Hash, max int64) ([]byte, error) {
	blob, err := t.r.repo.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	if blob.Size > max {
		return nil, fmt.Errorf("blob %s holds %d bytes, more than %d", h, blob.Size, max)
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(io.LimitReader(rd, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	if int64(len(data)) != blob.Size {
		return nil, fmt.Errorf("read blob %s: %d bytes, its header says %d", h, len(data), blob.Size)
	}
	return data, nil
}

// fileInfo describes a tree entry. Sys returns its object's hash as a
// source.ContentID (40 hex digits).
type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
	hash plumbing.Hash
	when time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.when }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return source.ContentID(fi.hash.String()) }

// dirEntry is an entry of ReadDir; Info reads the blob's size then.
type dirEntry struct {
	t   *treeFS
	dir string
	e   entry
}

func (d *dirEntry) Name() string { return d.e.name }
func (d *dirEntry) IsDir() bool  { return d.e.mode == filemode.Dir }
func (d *dirEntry) Type() fs.FileMode {
	switch d.e.mode {
	case filemode.Dir:
		return fs.ModeDir
	case filemode.Symlink:
		return fs.ModeSymlink
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0
}

func (d *dirEntry) Info() (fs.FileInfo, error) {
	d.t.r.mu.Lock()
	defer d.t.r.mu.Unlock()
	return d.t.info("stat", path.Join(d.dir, d.e.name), d.e)
}

// blobFile is an open regular file. Its content is read, whole, on the
// first Read: the reader has checked its size by then.
type blobFile struct {
	t    *treeFS
	name string
	info *fileInfo
	data []byte
	read bool
	off  int
}

func (f *blobFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *blobFile) Close() error               { return nil }

func (f *blobFile) Read(p []byte) (int, error) {
	if !f.read {
		f.t.r.mu.Lock()
		data, err := f.t.readBlob(f.info.hash, f.info.size)
		f.t.r.mu.Unlock()
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		f.data, f.read = data, true
	}
	if f.off >= len(f.data) {
		return 0, io.EOF
	}
	n := copy(p, f.data[f.off:])
	f.off += n
	return n, nil
}

// dirFile is an open directory.
type dirFile struct {
	t       *treeFS
	name    string
	info    *fileInfo
	entries []fs.DirEntry // nil until the first ReadDir
	off     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.entries == nil {
		d.t.r.mu.Lock()
		entries, err := d.t.readDir(d.name)
		d.t.r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		d.entries = entries
	}
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}
