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
	"testing/fstest"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema"
)

// maxSymlinkHops bounds how many symbolic links one path may pass through.
const maxSymlinkHops = 8

// Files returns the policy files below subpath (slash-separated, "" for the
// repository root) in the commit rev names, read from the object store, with
// names relative to subpath. A subpath that is not a directory in the commit
// is an error wrapping ErrPathNotFound. The returned files never change.
func (r *Repo) Files(ctx context.Context, rev, subpath string, lim source.Limits) (fs.FS, error) {
	lim = lim.WithDefaults()
	r.mu.Lock()
	defer r.mu.Unlock()
	entries, err := r.policyEntries(ctx, rev, subpath)
	if err != nil {
		return nil, err
	}
	files := make(fstest.MapFS, len(entries))
	var total int64
	for _, name := range slices.Sorted(maps.Keys(entries)) { // errors name the same file each time
		blob := entries[name]
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		obj, err := r.repo.BlobObject(blob)
		if err != nil {
			return nil, fmt.Errorf("%s: read blob %s: %w", name, blob, err)
		}
		if obj.Size > lim.File {
			return nil, fmt.Errorf("%s: %d bytes exceed the limit of %d per file", name, obj.Size, lim.File)
		}
		if total += obj.Size; total > lim.Total {
			return nil, fmt.Errorf("policy files exceed %d bytes together", lim.Total)
		}
		rd, err := obj.Reader()
		if err != nil {
			return nil, fmt.Errorf("%s: read blob %s: %w", name, blob, err)
		}
		data, err := io.ReadAll(io.LimitReader(rd, lim.File+1))
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: read blob %s: %w", name, blob, err)
		}
		files[name] = &fstest.MapFile{Data: data, Mode: 0o444}
	}
	return files, nil
}

// Matches reports whether the policy files of files (as schema.IsPolicyFile
// selects them) are exactly those below subpath in the commit rev names:
// the same names with the same content. The directory source uses it to
// tell whether its work tree differs from HEAD.
func (r *Repo) Matches(ctx context.Context, rev, subpath string, files fs.FS) (bool, error) {
	r.mu.Lock()
	entries, err := r.policyEntries(ctx, rev, subpath)
	r.mu.Unlock()
	if errors.Is(err, ErrPathNotFound) {
		entries, err = map[string]plumbing.Hash{}, nil
	}
	if err != nil {
		return false, err
	}
	seen := 0
	same := true
	err = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !schema.IsPolicyFile(name) {
			return nil
		}
		blob, ok := entries[name]
		if !ok {
			same = false
			return fs.SkipAll
		}
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		if plumbing.ComputeHash(plumbing.BlobObject, data) != blob {
			same = false
			return fs.SkipAll
		}
		seen++
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("compare with %s: %w", rev, err)
	}
	return same && seen == len(entries), nil
}

// policyEntries lists the policy files below subpath in the commit rev
// names; r.mu is held.
func (r *Repo) policyEntries(ctx context.Context, rev, subpath string) (map[string]plumbing.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub, err := cleanSubpath(subpath)
	if err != nil {
		return nil, err
	}
	h, err := r.resolve(rev)
	if err != nil {
		return nil, err
	}
	c, err := r.repo.CommitObject(h)
	if err != nil {
		return nil, unknown(rev, err)
	}
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
	out := map[string]plumbing.Hash{}
	if err := r.walkTree(ctx, root, root, "", out); err != nil {
		return nil, err
	}
	return out, nil
}

// cleanSubpath returns subpath as a clean slash path inside the repository,
// "" for its root.
func cleanSubpath(subpath string) (string, error) {
	sub := path.Clean("/" + strings.ReplaceAll(subpath, "\\", "/"))
	if strings.Contains("/"+subpath+"/", "/../") {
		return "", fmt.Errorf("path %q leaves the repository", subpath)
	}
	return strings.TrimPrefix(sub, "/"), nil
}

// walkTree adds the policy files of tree, found at prefix below the policy
// root, to out.
func (r *Repo) walkTree(ctx context.Context, root, tree *object.Tree, prefix string, out map[string]plumbing.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, e := range tree.Entries {
		name := path.Join(prefix, e.Name)
		if e.Mode == filemode.Dir {
			if schema.SkipDir(name) {
				continue
			}
			sub, err := r.repo.TreeObject(e.Hash)
			if err != nil {
				return fmt.Errorf("%s: read tree: %w", name, err)
			}
			if err := r.walkTree(ctx, root, sub, name, out); err != nil {
				return err
			}
			continue
		}
		if !schema.IsPolicyFile(name) {
			continue
		}
		blob, err := r.follow(root, name, e)
		if err != nil {
			return err
		}
		out[name] = blob
	}
	return nil
}

// follow returns the blob holding the content of the policy file name:
// its own for a regular file, its target's for a symbolic link whose target
// lies inside the policy root.
func (r *Repo) follow(root *object.Tree, name string, e object.TreeEntry) (plumbing.Hash, error) {
	at := name
	for range maxSymlinkHops {
		switch e.Mode {
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			return e.Hash, nil
		case filemode.Symlink:
		default:
			return plumbing.ZeroHash, fmt.Errorf("%s: not a regular file (mode %s)", name, e.Mode)
		}
		target, err := r.readSymlink(e.Hash)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s: %w", name, err)
		}
		if path.IsAbs(target) {
			return plumbing.ZeroHash, fmt.Errorf("%s: symbolic link points outside the policy root", name)
		}
		at = path.Join(path.Dir(at), target)
		if at == ".." || strings.HasPrefix(at, "../") {
			return plumbing.ZeroHash, fmt.Errorf("%s: symbolic link points outside the policy root", name)
		}
		next, err := root.FindEntry(at)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s: symbolic link target %s: %w", name, at, err)
		}
		e = *next
	}
	return plumbing.ZeroHash, fmt.Errorf("%s: more than %d symbolic links", name, maxSymlinkHops)
}

// readSymlink returns the target a symbolic link's blob holds.
func (r *Repo) readSymlink(h plumbing.Hash) (string, error) {
	blob, err := r.repo.BlobObject(h)
	if err != nil {
		return "", fmt.Errorf("read symbolic link: %w", err)
	}
	if blob.Size > 4096 {
		return "", errors.New("symbolic link target too long")
	}
	rd, err := blob.Reader()
	if err != nil {
		return "", fmt.Errorf("read symbolic link: %w", err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return "", fmt.Errorf("read symbolic link: %w", err)
	}
	return string(data), nil
}
