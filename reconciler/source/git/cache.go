package git

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo"
)

// DefaultCacheDir returns the directory that holds the clones when
// Options.CacheDir is empty: the user's cache directory, charter below it.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: give --cache-dir (%w)", err)
	}
	return filepath.Join(dir, "charter"), nil
}

// openCache opens the clone at dir when it is whole: a bare repository whose
// HEAD names a branch that holds a readable commit. It returns nil, nil when
// there is no clone, and an error wrapping errDamaged when there is one
// that cannot be used (half-written, or its objects damaged): remove it and
// clone again.
func openCache(ctx context.Context, dir string) (*gitrepo.Repo, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	repo, err := gitrepo.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	if repo.WorkTree() != "" {
		repo.Close()
		return nil, fmt.Errorf("%w: %s is a work tree, not a bare clone", errDamaged, dir)
	}
	head, err := repo.Head(ctx)
	if err == nil && head.Branch == "" {
		err = errors.New("HEAD names no branch")
	}
	if err == nil {
		_, err = repo.Commit(ctx, head.Hash)
	}
	if err != nil {
		repo.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	return repo, nil
}

// errDamaged marks a clone in the cache that must not be used.
var errDamaged = errors.New("the cached clone is damaged")

// removeClone moves the clone at dir out of the way, then removes it, so
// that a removal cut short never leaves a clone that looks whole.
func removeClone(dir string) error {
	aside := dir + ".damaged-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Rename(dir, aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove the damaged clone: %w", err)
	}
	return os.RemoveAll(aside)
}

// removeLeftovers removes what an interrupted clone or removal of the
// clone at dir left behind (dir.tmp-*, dir.damaged-*).
func removeLeftovers(dir string) {
	for _, pattern := range []string{dir + ".tmp-*", dir + ".damaged-*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			os.RemoveAll(m)
		}
	}
}
