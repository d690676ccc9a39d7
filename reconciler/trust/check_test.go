package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
)

func openRepo(t *testing.T, dir string) *gitrepo.Repo {
	t.Helper()
	r, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rejected(t *testing.T, err error, want string) {
	t.Helper()
	var re *RejectError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, want) {
		t.Errorf("got %v, want a rejection with %q", err, want)
	}
}

func TestCheckTip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := f.keys(t)
	unsigned := f.commit(t, "unsigned", nil)
	signed := f.commit(t, "signed", signer(f.sshTrusted.Signer()))
	stranger := f.commit(t, "stranger", signer(f.gpgStranger.Signer()))
	repo := openRepo(t, f.repo)
	p := &Policy{Keys: k}

	v, err := p.Check(ctx, repo, unsigned, signed)
	if err != nil || v.Signature != (source.Signature{Status: source.SignatureGood, Signer: "ada@example.com " + f.sshTrusted.Fingerprint}) || v.ForcePush || v.Verified != 1 {
		t.Errorf("signed tip: %+v, %v", v, err)
	}
	_, err = p.Check(ctx, repo, "", unsigned)
	rejected(t, err, "commit "+unsigned+" is not signed: a good signature by a trusted key is required")
	_, err = p.Check(ctx, repo, signed, stranger)
	rejected(t, err, "commit "+stranger+" is signed, but the signature is bad: not trusted: signed by OpenPGP key "+f.gpgStranger.Fingerprint)

	// Without keys, nothing is verified and the signature is none.
	if v, err := (&Policy{}).Check(ctx, repo, signed, stranger); err != nil || v.Signature.Status != source.SignatureNone || v.Verified != 0 {
		t.Errorf("no keys: %+v, %v", v, err)
	}
}

// TestCheckAll: --verify-commits all verifies every commit new to the
// served one, merged-in ones too.
func TestCheckAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := f.keys(t)
	ssh, gpg := signer(f.sshTrusted.Signer()), signer(f.gpgTrusted.Signer())
	served := f.commit(t, "served", ssh)
	unsignedParent := f.commit(t, "unsigned parent", nil)
	signedTip := f.commit(t, "signed tip", gpg)
	repo := openRepo(t, f.repo)

	tip := &Policy{Keys: k, Mode: Tip}
	all := &Policy{Keys: k, Mode: All}
	if _, err := tip.Check(ctx, repo, served, signedTip); err != nil {
		t.Errorf("tip mode, signed tip over an unsigned parent: %v", err)
	}
	_, err := all.Check(ctx, repo, served, signedTip)
	rejected(t, err, "commit "+unsignedParent+` ("unsigned parent"), below the tip `+signedTip+" and not served before, is not signed")

	// Once the unsigned commit was served, what follows it is checked alone.
	if v, err := all.Check(ctx, repo, unsignedParent, signedTip); err != nil || v.Verified != 1 {
		t.Errorf("all mode from the unsigned commit: %+v, %v", v, err)
	}

	// A branch merged in brings its commits: an unsigned one is found.
	gittest.Git(t, f.repo, "checkout", "-q", "-b", "side", served)
	gittest.WriteFile(t, f.repo, "side.cue", "package p\n")
	sideUnsigned := gittest.CommitAll(t, f.repo, "side, unsigned")
	gittest.Git(t, f.repo, "checkout", "-q", "main")
	gittest.Git(t, f.repo, "reset", "-q", "--hard", served)
	f.commit(t, "main, signed", ssh)
	gittest.Git(t, f.repo, "merge", "-q", "--no-ff", "--no-commit", "side")
	merge := gittest.CommitSigned(t, f.repo, "merge side", *ssh)
	_, err = all.Check(ctx, repo, served, merge)
	rejected(t, err, "commit "+sideUnsigned+` ("side, unsigned"), below the tip`)
	v, err := tip.Check(ctx, repo, served, merge)
	if err != nil || v.Verified != 1 {
		t.Errorf("tip mode, signed merge: %+v, %v", v, err)
	}

	// Every commit signed: served, and each one verified.
	gittest.Git(t, f.repo, "reset", "-q", "--hard", served)
	f.commit(t, "one", ssh)
	f.commit(t, "two", gpg)
	three := f.commit(t, "three", ssh)
	if v, err := all.Check(ctx, repo, served, three); err != nil || v.Verified != 3 || v.Signature.Status != source.SignatureGood {
		t.Errorf("all mode, three signed commits: %+v, %v", v, err)
	}
	// The first start (nothing served) verifies the tip only.
	if v, err := all.Check(ctx, repo, "", signedTip); err != nil || v.Verified != 1 {
		t.Errorf("all mode, first start: %+v, %v", v, err)
	}
	// Over the limit, all mode rejects rather than verify part.
	bounded := &Policy{Keys: k, Mode: All, Limit: 2}
	_, err = bounded.Check(ctx, repo, served, three)
	rejected(t, err, "cannot be verified with --verify-commits all: more than 2 commits lie between it and the served commit "+served)
}

// TestCheckRewind: a tip that does not descend from the served commit is a
// force-push: reported, and rejected under NoRewind; an ancestor (a reset)
// counts too.
func TestCheckRewind(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c1 := f.commit(t, "c1", nil)
	c2 := f.commit(t, "c2", nil)
	gittest.Git(t, f.repo, "reset", "-q", "--hard", c1)
	rewritten := f.commit(t, "c2, rewritten", nil)
	repo := openRepo(t, f.repo)

	for _, tt := range []struct {
		base, tip string
		force     bool
	}{
		{c1, c2, false},
		{c2, c2, false},
		{c2, rewritten, true},
		{c2, c1, true}, // back to an ancestor
		{"", c1, false},
	} {
		v, err := (&Policy{}).Check(ctx, repo, tt.base, tt.tip)
		if err != nil || v.ForcePush != tt.force {
			t.Errorf("Check(%.7s, %.7s) = %+v, %v; want force-push %v", tt.base, tt.tip, v, err, tt.force)
		}
		_, err = (&Policy{NoRewind: true}).Check(ctx, repo, tt.base, tt.tip)
		if tt.force {
			rejected(t, err, "commit "+tt.tip+" is not a descendant of the served commit "+tt.base+" (--no-rewind)")
		} else if err != nil {
			t.Errorf("no-rewind, Check(%.7s, %.7s): %v", tt.base, tt.tip, err)
		}
	}
	unknown := strings.Repeat("ab", 20)
	_, err := (&Policy{NoRewind: true}).Check(ctx, repo, unknown, c2)
	rejected(t, err, "is not a descendant of the served commit "+unknown+", which is not in the repository")
	if v, err := (&Policy{}).Check(ctx, repo, unknown, c2); err != nil || !v.ForcePush {
		t.Errorf("unknown base: %+v, %v; want a force-push", v, err)
	}
	if _, err := (&Policy{}).Check(ctx, repo, c1, unknown); !errors.Is(err, gitrepo.ErrUnknownRevision) {
		t.Errorf("unknown tip: %v, want ErrUnknownRevision (not a rejection)", err)
	}
}

func TestCheckBrokenKeysFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := f.keys(t)
	tip := f.commit(t, "signed", signer(f.sshTrusted.Signer()))
	if err := os.WriteFile(f.allowedSigner, []byte("ada@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := (&Policy{Keys: k}).Check(ctx, openRepo(t, f.repo), "", tip)
	rejected(t, err, "commit "+tip+" cannot be verified: "+f.allowedSigner+":1:16: missing key")
}

func TestState(t *testing.T) {
	dir := t.TempDir()
	path := StatePath(dir, "dir:/srv/policies")
	if filepath.Dir(path) != filepath.Join(dir, "served") || path == StatePath(dir, "dir:/srv/other") {
		t.Errorf("StatePath = %s", path)
	}
	s := NewState(path, "dir:/srv/policies")
	if got, err := s.Load(); err != nil || got != "" {
		t.Errorf("Load of no file = %q, %v", got, err)
	}
	commit := strings.Repeat("0a", 20)
	if err := s.Store(commit, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(); err != nil || got != commit {
		t.Errorf("Load = %q, %v; want %s", got, err, commit)
	}
	if got, err := NewState(path, "dir:/srv/other").Load(); err == nil || !strings.Contains(err.Error(), `is for source "dir:/srv/policies"`) {
		t.Errorf("Load for another source = %q, %v", got, err)
	}
	if err := s.Store("main", time.Now()); err == nil {
		t.Error("Store of a branch name succeeded")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files beside the state file, want none: %v", len(entries)-1, entries)
	}
	for _, bad := range []string{"{", `{"source":"dir:/srv/policies","commit":"HEAD"}`, strings.Repeat(" ", maxStateFile+1)} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Load(); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "remove") {
			t.Errorf("Load of %.20q = %q, %v; want an error naming the file and the remedy", bad, got, err)
		}
	}
	if err := NewState(filepath.Join(dir, "served", "x.json"), "s").CheckWritable(); err != nil {
		t.Errorf("CheckWritable: %v", err)
	}
	// A regular file where the directory belongs: not writable, even by root.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewState(filepath.Join(blocker, "served", "x.json"), "s").CheckWritable(); err == nil {
		t.Error("CheckWritable below a regular file succeeded")
	}
}
