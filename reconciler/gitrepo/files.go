package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/schema"
)

// Content is what Files read from a commit.
type Content struct {
	// Files are the policy files, read into memory.
	Files *source.Files
	// Submodules are the submodules (gitlinks) met below the policy root,
	// relative to it: their content lives in another repository and is
	// not read.
	Submodules []string
}

// Files returns the policy files below subpath (slash-separated, "" for the
// repository root) in the commit rev names, read from the object store
// (TreeFS) into memory, with names relative to subpath. They are selected
// and read exactly as every source reads a directory (source.ReadFS): the
// walk of schema.WalkPolicyFiles, and schema.ReadPolicyFile's rule that a
// symbolic link is followed only to a regular file inside the policy root,
// sizes checked against lim before a blob is read. A file that breaks the
// rule is a *source.ContentError naming it; a subpath that is not a
// directory in the commit is an error wrapping ErrPathNotFound. Nothing
// outside subpath is read. With a non-nil rescan, the blobs that the
// rescan's last successful read held under the same names are taken from it
// rather than read again (their hashes are equal, see source.ContentID).
func (r *Repo) Files(ctx context.Context, rev, subpath string, lim source.Limits, rescan *source.Rescan) (*Content, error) {
	tree, err := r.TreeFS(ctx, rev, subpath)
	if err != nil {
		return nil, err
	}
	if rescan == nil {
		rescan = new(source.Rescan)
	}
	files, err := rescan.ReadFS(ctx, tree, lim)
	if err != nil {
		return nil, err
	}
	t := tree.(*treeFS)
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	return &Content{Files: files, Submodules: t.submodules()}, nil
}

// Matches reports whether the policy files of files (as schema.IsPolicyFile
// selects them) are exactly those below subpath in the commit rev names:
// the same names with the same content, the commit's symbolic links
// resolved by the rule of Files. Blobs are compared by hash, not read. A
// commit whose policy files Files would refuse matches nothing. The
// directory source uses it to tell whether its work tree differs from HEAD.
func (r *Repo) Matches(ctx context.Context, rev, subpath string, files fs.FS) (bool, error) {
	entries := map[string]source.ContentID{}
	tree, err := r.TreeFS(ctx, rev, subpath)
	switch {
	case errors.Is(err, ErrPathNotFound):
	case err != nil:
		return false, err
	default:
		err := schema.WalkPolicyFiles(ctx, tree, func(name string) error {
			_, info, err := schema.StatPolicyFile(tree, name)
			if err != nil {
				return err
			}
			entries[name] = info.Sys().(source.ContentID)
			return nil
		})
		var refused *schema.Error
		if errors.As(err, &refused) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", rev, err)
		}
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
		if source.ContentID(plumbing.ComputeHash(plumbing.BlobObject, data).String()) != blob {
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

// CleanPath returns subpath as a clean slash path inside the repository,
// "" for its root; a path that leaves the repository ("../x") is an error.
func CleanPath(subpath string) (string, error) {
	sub := path.Clean("/" + strings.ReplaceAll(subpath, "\\", "/"))
	if strings.Contains("/"+subpath+"/", "/../") {
		return "", fmt.Errorf("path %q leaves the repository", subpath)
	}
	return strings.TrimPrefix(sub, "/"), nil
}
