package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ErrEmptyRemote: the remote repository has no commit at all.
var ErrEmptyRemote = errors.New("the remote repository is empty")

// InitBare makes dir a new, empty bare repository and opens it.
func InitBare(dir string) (*Repo, error) {
	if _, err := git.PlainInit(dir, true); err != nil {
		return nil, fmt.Errorf("init bare repository at %s: %w", dir, err)
	}
	return Open(dir)
}

// Close releases the files the repository holds open.
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.repo.Storer.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Reference returns the commit hash the reference name ("refs/heads/main")
// holds, without reading the commit. A missing reference is an error
// wrapping ErrUnknownRevision.
func (r *Repo) Reference(ctx context.Context, name string) (string, error) {
	if err := r.mu.LockContext(ctx); err != nil {
		return "", err
	}
	defer r.mu.Unlock()
	ref, err := r.repo.Storer.Reference(plumbing.ReferenceName(name))
	if err != nil {
		return "", unknown(name, err)
	}
	return ref.Hash().String(), nil
}

// Session is an upload-pack session with a remote repository whose
// references have been advertised: what a fetch that finds nothing new
// costs. Close it when done.
type Session struct {
	sess     transport.UploadPackSession
	adv      *packp.AdvRefs
	head     string
	branches map[string]string
}

// Dial opens an upload-pack session with the repository at ep through tr,
// authenticated by auth (nil for none), and reads its ref advertisement. It
// honours ctx: go-git connects without a context (the TCP connection of
// git://, the handshake of ssh), so when ctx ends first Dial returns ctx's
// error at once and closes the connection once its attempt ends. A remote
// without commits is an error wrapping ErrEmptyRemote.
func Dial(ctx context.Context, tr transport.Transport, ep *transport.Endpoint, auth transport.AuthMethod) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		sess transport.UploadPackSession
		err  error
	}
	connected := make(chan result, 1)
	go func() {
		sess, err := tr.NewUploadPackSession(ep, auth)
		connected <- result{sess, err}
	}()
	var sess transport.UploadPackSession
	select {
	case res := <-connected:
		if res.err != nil {
			return nil, remoteError(res.err)
		}
		sess = res.sess
	case <-ctx.Done():
		go func() {
			// On an error go-git may return a nil session inside a non-nil
			// interface: only a session that came without one is closed.
			if res := <-connected; res.err == nil && res.sess != nil {
				res.sess.Close()
			}
		}()
		return nil, ctx.Err()
	}
	adv, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		sess.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, remoteError(err)
	}
	s := &Session{sess: sess, adv: adv, branches: map[string]string{}}
	for name, h := range adv.References {
		if strings.HasPrefix(name, "refs/heads/") {
			s.branches[name] = h.String()
		}
	}
	if refs, err := adv.AllReferences(); err == nil {
		if head, err := refs.Reference(plumbing.HEAD); err == nil && head.Type() == plumbing.SymbolicReference {
			s.head = head.Target().String()
		}
	}
	return s, nil
}

// remoteError names the errors of go-git's transports that a user acts on.
func remoteError(err error) error {
	switch {
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return ErrEmptyRemote
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return errors.New("repository not found (or access denied)")
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return errors.New("authentication required: the remote asked for credentials")
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return errors.New("authorization failed: the remote refused the credentials")
	}
	return err
}

// Head returns the branch the remote's HEAD points at ("refs/heads/main"),
// or "" when the remote does not say.
func (s *Session) Head() string { return s.head }

// Branches returns the tip of each branch the remote advertised, by full
// name ("refs/heads/main").
func (s *Session) Branches() map[string]string { return maps.Clone(s.branches) }

// BranchNames returns the short names of the remote's branches, sorted.
func (s *Session) BranchNames() []string {
	names := make([]string, 0, len(s.branches))
	for name := range s.branches {
		names = append(names, strings.TrimPrefix(name, "refs/heads/"))
	}
	slices.Sort(names)
	return names
}

// Close ends the session.
func (s *Session) Close() error { return s.sess.Close() }

// Fetch makes the repository hold the commit want and its history, and
// points the reference ref ("refs/heads/main") and, symbolically, HEAD at
// it. It downloads from s the objects the repository lacks, telling the
// remote which commits the repository's branches already hold, and nothing
// when the repository holds want already. It holds the repository's lock
// while it writes, and honours ctx.
func (r *Repo) Fetch(ctx context.Context, s *Session, ref, want string) error {
	if !plumbing.IsHash(want) {
		return fmt.Errorf("fetch %q: not a commit hash", want)
	}
	h := plumbing.NewHash(want)
	if err := r.mu.LockContext(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if _, err := r.repo.CommitObject(h); err != nil {
		if err := r.download(ctx, s, h); err != nil {
			return err
		}
		if _, err := r.repo.CommitObject(h); err != nil {
			return fmt.Errorf("fetch %s: the remote did not send the commit: %w", want, err)
		}
	}
	name := plumbing.ReferenceName(ref)
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(name, h)); err != nil {
		return fmt.Errorf("set %s to %s: %w", ref, want, err)
	}
	if err := r.repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, name)); err != nil {
		return fmt.Errorf("point HEAD at %s: %w", ref, err)
	}
	return nil
}

// download asks s for the pack of want and stores it; r.mu is held.
func (r *Repo) download(ctx context.Context, s *Session, want plumbing.Hash) error {
	req := packp.NewUploadPackRequestFromCapabilities(s.adv.Capabilities)
	if s.adv.Capabilities.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	req.Wants = []plumbing.Hash{want}
	refs, err := r.repo.Storer.IterReferences()
	if err != nil {
		return fmt.Errorf("list references: %w", err)
	}
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference && ref.Name().IsBranch() {
			if _, err := r.repo.CommitObject(ref.Hash()); err == nil {
				req.Haves = append(req.Haves, ref.Hash())
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list references: %w", err)
	}
	resp, err := s.sess.UploadPack(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("fetch %s: %w", want, remoteError(err))
	}
	defer resp.Close()
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		pack = sideband.NewDemuxer(sideband.Sideband64k, resp)
	case req.Capabilities.Supports(capability.Sideband):
		pack = sideband.NewDemuxer(sideband.Sideband, resp)
	}
	if err := packfile.UpdateObjectStorage(r.repo.Storer, pack); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("fetch %s: store the pack: %w", want, err)
	}
	return nil
}
