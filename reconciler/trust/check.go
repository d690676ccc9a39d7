package trust

import (
	"context"
	"errors"
	"fmt"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
)

// Mode says which commits must carry a good signature.
type Mode string

// Values of Mode (--verify-commits).
const (
	// Tip: the commit to be served.
	Tip Mode = "tip"
	// All: every commit new to the served one, the tip included: those
	// reachable from the tip and not from the served commit, first-parent
	// and merged-in alike, so that an unsigned commit cannot hide under a
	// signed one.
	All Mode = "all"
)

// DefaultLimit bounds the commits one check reads in All mode.
const DefaultLimit = 10000

// Policy is what a commit must satisfy to replace the served one. The zero
// Policy accepts every commit and only reports force-pushes.
type Policy struct {
	// Keys are the trusted keys; nil: no signature is required.
	Keys *Keys
	// Mode is which commits must be signed; empty is Tip.
	Mode Mode
	// NoRewind rejects a commit that does not descend from the served one.
	NoRewind bool
	// Limit bounds the commits read in All mode; 0: DefaultLimit.
	Limit int
}

// Verdict is a commit allowed to replace the served one.
type Verdict struct {
	// Signature is the tip's, as the trusted keys judge it; status none
	// (and no signer) when no keys are trusted.
	Signature source.Signature
	// ForcePush: the tip does not descend from the served commit (a
	// force-push, or a reset), or the served commit is not in the
	// repository.
	ForcePush bool
	// Verified counts the commits whose signatures were checked.
	Verified int
}

// RejectError is a commit that may not be served, and why.
type RejectError struct {
	// Commit is the tip that was to be served.
	Commit string
	// Reason names the commit at fault (the tip, or one below it) and what
	// is wrong, in a sentence.
	Reason string
}

func (e *RejectError) Error() string { return e.Reason }

// Check decides whether the commit tip may replace base, the served commit
// ("" when none is known: the first start). Without a base, only the tip is
// verified and nothing is a force-push. A *RejectError says no, with the
// reason; any other error means the repository could not be read.
func (p *Policy) Check(ctx context.Context, repo *gitrepo.Repo, base, tip string) (Verdict, error) {
	var v Verdict
	v.Signature.Status = source.SignatureNone
	baseKnown := base != ""
	if base != "" && base != tip {
		ok, err := repo.IsAncestor(ctx, base, tip)
		switch {
		case errors.Is(err, gitrepo.ErrUnknownRevision):
			if _, tipErr := repo.Commit(ctx, tip); tipErr != nil {
				return v, tipErr
			}
			baseKnown, v.ForcePush = false, true
			if p.NoRewind {
				return v, &RejectError{Commit: tip, Reason: fmt.Sprintf("commit %s is not a descendant of the served commit %s, which is not in the repository (--no-rewind)", tip, base)}
			}
		case err != nil:
			return v, err
		case !ok:
			v.ForcePush = true
			if p.NoRewind {
				return v, &RejectError{Commit: tip, Reason: fmt.Sprintf("commit %s is not a descendant of the served commit %s (--no-rewind)", tip, base)}
			}
		}
	}
	if p.Keys == nil {
		return v, nil
	}
	commits := []string{tip}
	if p.Mode == All && base != "" {
		limit := p.Limit
		if limit <= 0 {
			limit = DefaultLimit
		}
		from := base
		if !baseKnown {
			from = "" // every commit of the tip's history
		}
		between, err := repo.Range(ctx, from, tip, limit)
		if errors.Is(err, gitrepo.ErrLimitReached) {
			return v, &RejectError{Commit: tip, Reason: fmt.Sprintf("commit %s cannot be verified with --verify-commits all: more than %d commits lie between it and the served commit %s", tip, limit, base)}
		}
		if err != nil {
			return v, err
		}
		for _, h := range between {
			if h != tip { // the tip first, so that its own fault is the one told
				commits = append(commits, h)
			}
		}
	}
	for _, hash := range commits {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		c, err := repo.Signed(ctx, hash)
		if err != nil {
			return v, err
		}
		res, err := p.Keys.Verify(c)
		if err != nil {
			return v, &RejectError{Commit: tip, Reason: fmt.Sprintf("commit %s cannot be verified: %v", tip, err)}
		}
		v.Verified++
		if hash == tip {
			v.Signature = source.Signature{Status: res.Status, Signer: res.Signer}
		}
		if res.Status == source.SignatureGood {
			continue
		}
		if hash == tip {
			return v, &RejectError{Commit: tip, Reason: fmt.Sprintf("commit %s is %s", tip, describe(res))}
		}
		return v, &RejectError{Commit: tip, Reason: fmt.Sprintf("commit %s (%q), below the tip %s and not served before, is %s (--verify-commits all)", hash, c.Subject, tip, describe(res))}
	}
	return v, nil
}

// describe says what is wrong with a signature, after "commit C is".
func describe(r Result) string {
	if r.Status == source.SignatureNone {
		return "not signed: a good signature by a trusted key is required"
	}
	return "signed, but the signature is bad: " + r.Reason
}
