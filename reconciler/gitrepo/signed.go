package gitrepo

import (
	"context"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
)

// maxPayload bounds the commit object read for a signature check: a commit
// larger than this (its message, mostly) is an error, not a read of
// unbounded size.
const maxPayload = 1 << 20

// SignedCommit is a commit with its signature and the bytes it signs.
type SignedCommit struct {
	Commit
	// Signature is the armored signature of the gpgsig header as git wrote
	// it (OpenPGP, SSH or X.509); empty for an unsigned commit.
	Signature []byte
	// Payload is the commit object without its signature headers: the bytes
	// the signature was made over.
	Payload []byte
}

// Signed returns the commit rev names with its signature and signed
// payload. A revision not in the repository is an error wrapping
// ErrUnknownRevision.
func (r *Repo) Signed(ctx context.Context, rev string) (*SignedCommit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.resolve(rev)
	if err != nil {
		return nil, err
	}
	return r.signed(h)
}

// signed reads the commit h with its signature; r.mu is held.
func (r *Repo) signed(h plumbing.Hash) (*SignedCommit, error) {
	c, err := r.repo.CommitObject(h)
	if err != nil {
		return nil, unknown(h.String(), err)
	}
	out := &SignedCommit{Commit: *toCommit(c), Signature: []byte(c.PGPSignature)}
	encoded := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(encoded); err != nil {
		return nil, fmt.Errorf("commit %s: signed payload: %w", h, err)
	}
	if encoded.Size() > maxPayload {
		return nil, fmt.Errorf("commit %s: %d bytes exceed the limit of %d for a signed commit", h, encoded.Size(), maxPayload)
	}
	rd, err := encoded.Reader()
	if err != nil {
		return nil, fmt.Errorf("commit %s: signed payload: %w", h, err)
	}
	defer rd.Close()
	if out.Payload, err = io.ReadAll(rd); err != nil {
		return nil, fmt.Errorf("commit %s: signed payload: %w", h, err)
	}
	return out, nil
}
