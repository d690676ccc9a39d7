package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Errors that callers tell apart with errors.Is.
var (
	// ErrNotRepository: the directory is not inside a git repository.
	ErrNotRepository = errors.New("not a git repository")
	// ErrNoCommit: HEAD names a branch that has no commit yet.
	ErrNoCommit = errors.New("no commit yet")
	// ErrUnknownRevision: the revision does not name an object in the
	// repository (it may exist elsewhere, not fetched yet).
	ErrUnknownRevision = errors.New("unknown revision")
	// ErrPathNotFound: the policy root is not a directory in the commit.
	ErrPathNotFound = errors.New("path not found in commit")
	// ErrLimitReached: a history walk stopped at its bound with commits left.
	ErrLimitReached = errors.New("history walk limit reached")
)

// ancestryCacheSize bounds the answers IsAncestor remembers.
const ancestryCacheSize = 4096

// Repo is an open git repository. It is safe for concurrent use.
type Repo struct {
	workTree  string // top of the work tree; empty for a bare repository
	gitDir    string // the repository's own git directory (HEAD lives here)
	commonDir string // the directory shared by linked work trees (refs, objects)

	mu   repoLock // serializes go-git calls
	repo *git.Repository

	ancestry *lru[[2]plumbing.Hash, bool]
}

// Open opens the repository at dir or, when dir lies inside a work tree,
// the repository of that work tree (like git rev-parse, it looks upwards for
// .git). Linked work trees (git worktree add) are supported. It returns an
// error wrapping ErrNotRepository when there is none.
func Open(dir string) (*Repo, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpen(dir) // a bare repository has no .git to detect
	}
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("open %s: %w", dir, ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open git repository at %s: %w", dir, err)
	}
	r := &Repo{repo: repo, mu: newRepoLock(), ancestry: newLRU[[2]plumbing.Hash, bool](ancestryCacheSize)}
	wt, err := repo.Worktree()
	switch {
	case errors.Is(err, git.ErrIsBareRepository):
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", dir, err)
		}
		r.gitDir = abs
	case err != nil:
		return nil, fmt.Errorf("open work tree at %s: %w", dir, err)
	default:
		r.workTree = wt.Filesystem.Root()
		if r.gitDir, err = findGitDir(r.workTree); err != nil {
			return nil, err
		}
	}
	r.commonDir = r.gitDir
	if data, err := os.ReadFile(filepath.Join(r.gitDir, "commondir")); err == nil {
		common := strings.TrimSpace(string(data))
		if !filepath.IsAbs(common) {
			common = filepath.Join(r.gitDir, common)
		}
		r.commonDir = filepath.Clean(common)
	}
	return r, nil
}

// findGitDir returns the git directory of the work tree at top: top/.git,
// or the directory a .git file points at (a linked work tree).
func findGitDir(top string) (string, error) {
	dotGit := filepath.Join(top, ".git")
	info, err := os.Stat(dotGit)
	if err != nil {
		return "", fmt.Errorf("git directory of %s: %w", top, err)
	}
	if info.IsDir() {
		return dotGit, nil
	}
	data, err := os.ReadFile(dotGit)
	if err != nil {
		return "", fmt.Errorf("git directory of %s: %w", top, err)
	}
	dir, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
	if !ok {
		return "", fmt.Errorf("git directory of %s: %s does not name one", top, dotGit)
	}
	dir = strings.TrimSpace(dir)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(top, dir)
	}
	return filepath.Clean(dir), nil
}

// WorkTree returns the top directory of the work tree, or "" for a bare
// repository.
func (r *Repo) WorkTree() string { return r.workTree }

// Head is what HEAD points at.
type Head struct {
	// Hash is the commit, empty when the branch has no commit yet.
	Hash string
	// Branch is the full name of the branch HEAD points at
	// ("refs/heads/main"), empty when HEAD is detached.
	Branch string
}

// Head returns the commit and branch of HEAD. When the branch has no commit
// yet it returns the branch with an error wrapping ErrNoCommit.
func (r *Repo) Head(ctx context.Context) (Head, error) {
	if err := ctx.Err(); err != nil {
		return Head{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sym, err := r.repo.Reference(plumbing.HEAD, false)
	if err != nil {
		return Head{}, fmt.Errorf("read HEAD: %w", err)
	}
	var h Head
	if sym.Type() == plumbing.SymbolicReference {
		h.Branch = sym.Target().String()
	}
	ref, err := r.repo.Reference(plumbing.HEAD, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return h, fmt.Errorf("HEAD (%s): %w", h.Branch, ErrNoCommit)
	}
	if err != nil {
		return h, fmt.Errorf("resolve HEAD: %w", err)
	}
	h.Hash = ref.Hash().String()
	return h, nil
}

// HeadFiles are the files whose change moves HEAD. Git replaces them by
// renaming a new file over the old one, so a watcher should watch the
// directories that hold them.
type HeadFiles struct {
	// Head is the HEAD file of this work tree.
	Head string
	// Ref is the loose ref file of the branch HEAD points at (it may not
	// exist while the branch lives only in packed-refs); empty when HEAD is
	// detached.
	Ref string
	// PackedRefs is the repository's packed-refs file (it may not exist).
	PackedRefs string
}

// HeadFiles returns the files that move HEAD as it points now: after HEAD
// changes (a checkout of another branch), ask again.
func (r *Repo) HeadFiles(ctx context.Context) (HeadFiles, error) {
	h, err := r.Head(ctx)
	if err != nil && !errors.Is(err, ErrNoCommit) {
		return HeadFiles{}, err
	}
	f := HeadFiles{Head: filepath.Join(r.gitDir, "HEAD"), PackedRefs: filepath.Join(r.commonDir, "packed-refs")}
	if h.Branch != "" {
		f.Ref = filepath.Join(r.commonDir, filepath.FromSlash(h.Branch))
	}
	return f, nil
}

// Resolve returns the full hash of the commit that rev names: a full or
// abbreviated hash, a branch, a tag, HEAD, or an expression such as
// "main~2". An unknown revision is an error wrapping ErrUnknownRevision.
func (r *Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(rev)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// resolve resolves rev to a commit hash; r.mu is held.
func (r *Repo) resolve(rev string) (plumbing.Hash, error) {
	if plumbing.IsHash(rev) {
		h := plumbing.NewHash(rev)
		if _, err := r.repo.CommitObject(h); err != nil {
			return plumbing.ZeroHash, unknown(rev, err)
		}
		return h, nil
	}
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, unknown(rev, err)
	}
	if _, err := r.repo.CommitObject(*h); err != nil {
		return plumbing.ZeroHash, unknown(rev, err)
	}
	return *h, nil
}

// unknown wraps a failed lookup of rev, as ErrUnknownRevision when the
// object or reference does not exist.
func unknown(rev string, err error) error {
	// go-git answers io.EOF for an ancestor beyond the root ("HEAD~5").
	if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, plumbing.ErrReferenceNotFound) || errors.Is(err, io.EOF) {
		return fmt.Errorf("revision %q: %w", rev, ErrUnknownRevision)
	}
	return fmt.Errorf("resolve revision %q: %w", rev, err)
}

// Person is an author or committer.
type Person struct {
	Name  string
	Email string
	When  time.Time
}

// Commit is a commit's metadata.
type Commit struct {
	Hash      string
	Author    Person
	Committer Person
	// Subject is the first line of the message.
	Subject string
	Message string
	// Parents are the parent hashes, the first parent first.
	Parents []string
	// Signed reports whether the commit carries a signature (OpenPGP or
	// SSH). It says nothing about whether the signature is good.
	Signed bool
}

// Commit returns the metadata of the commit rev names.
func (r *Repo) Commit(ctx context.Context, rev string) (*Commit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.commitObject(rev)
	if err != nil {
		return nil, err
	}
	return toCommit(c), nil
}

// commitObject returns the commit rev names; r.mu is held.
func (r *Repo) commitObject(rev string) (*object.Commit, error) {
	h, err := r.resolve(rev)
	if err != nil {
		return nil, err
	}
	c, err := r.repo.CommitObject(h)
	if err != nil {
		return nil, unknown(rev, err)
	}
	return c, nil
}

func toCommit(c *object.Commit) *Commit {
	subject, _, _ := strings.Cut(c.Message, "\n")
	out := &Commit{
		Hash:      c.Hash.String(),
		Author:    Person{Name: c.Author.Name, Email: c.Author.Email, When: c.Author.When},
		Committer: Person{Name: c.Committer.Name, Email: c.Committer.Email, When: c.Committer.When},
		Subject:   strings.TrimSpace(subject),
		Message:   c.Message,
		Signed:    c.PGPSignature != "",
	}
	for _, p := range c.ParentHashes {
		out.Parents = append(out.Parents, p.String())
	}
	return out
}
