package reconciler

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/dir"
	"github.com/charter-policy/charter/reconciler/trust"
)

var _ CommitSource = (*dir.Source)(nil)

// fetchCommits hides a directory source's watcher, like fetchOnly, and
// keeps its repository.
type fetchCommits struct {
	fetchOnly
	d *dir.Source
}

func (f fetchCommits) Repository() *gitrepo.Repo { return f.d.Repository() }

func commitSource(t *testing.T, root string) fetchCommits {
	d := newDir(t, root, dir.Options{})
	return fetchCommits{fetchOnly{d}, d}
}

// signedRepo is a git work tree holding a valid policy, and an SSH key
// that the allowed_signers file at signers trusts.
type signedRepo struct {
	root, signers string
	key           *gittest.SSHKey
}

func newSignedRepo(t *testing.T) *signedRepo {
	t.Helper()
	s := &signedRepo{root: t.TempDir(), key: gittest.NewSSHKey(t, "ada@example.com")}
	gittest.Init(t, s.root)
	gittest.WriteFile(t, s.root, "roles.cue", rolesCUE)
	s.signers = filepath.Join(t.TempDir(), "allowed_signers")
	s.trust(t, s.key)
	return s
}

// trust writes the allowed_signers file with the keys given.
func (s *signedRepo) trust(t *testing.T, keys ...*gittest.SSHKey) {
	t.Helper()
	var lines []string
	for _, k := range keys {
		lines = append(lines, k.AllowedSigner("ada@example.com", ""))
	}
	if err := os.WriteFile(s.signers, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// commit commits a record for user, signed by key (nil: unsigned).
func (s *signedRepo) commit(t *testing.T, user string, key *gittest.SSHKey) string {
	t.Helper()
	gittest.WriteFile(t, s.root, "records.cue", recordCUE(user, "User"))
	if key == nil {
		return gittest.CommitAll(t, s.root, "grant "+user)
	}
	return gittest.CommitSigned(t, s.root, "grant "+user, key.Signer())
}

func (s *signedRepo) keys(t *testing.T) *trust.Keys {
	t.Helper()
	k, err := trust.Load(trust.Files{SSH: s.signers})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// settle asks for the first reconcile and then one more, so that no
// reconcile queued while the loop started is left to run in the middle of
// the test's next change.
func settle(t *testing.T, r *Reconciler) error {
	t.Helper()
	if err := reconcileNow(t, r); err != nil {
		return err
	}
	return reconcileNow(t, r)
}

func wantRejected(t *testing.T, r *Reconciler, err error, want string) {
	t.Helper()
	var rejected *RejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("reconcile: %v, want a RejectedError with %q", err, want)
	}
	st := r.Status()
	if st.Rejected == nil || st.Rejected.Result != ResultRejected || len(st.Rejected.Errors) != 1 || !strings.Contains(st.Rejected.Errors[0].Message, want) {
		t.Fatalf("status rejection %+v, want %q", st.Rejected, want)
	}
}

func TestReconcileVerifiesSignatures(t *testing.T) {
	s := newSignedRepo(t)
	stranger := gittest.NewSSHKey(t, "mallory@example.com")
	good := s.commit(t, "ann", s.key)
	reg := prometheus.NewRegistry()
	r := start(t, commitSource(t, s.root), Options{Metrics: NewMetrics(reg), Trust: &trust.Policy{Keys: s.keys(t)}}, nil)
	if err := settle(t, r); err != nil {
		t.Fatal(err)
	}
	served := r.Served()
	if served.Revision.ID != good || served.Revision.Signature != (source.Signature{Status: source.SignatureGood, Signer: "ada@example.com " + s.key.Fingerprint}) {
		t.Fatalf("served %s, signature %+v", served.Revision.ID, served.Revision.Signature)
	}

	unsigned := s.commit(t, "bob", nil)
	wantRejected(t, r, reconcileNow(t, r), "commit "+unsigned+" is not signed")
	if r.Served() != served || r.Status().Rejected.Revision != unsigned || !allowed(t, r.Snapshot(), "ann", "documents:read") {
		t.Errorf("after an unsigned commit: serving %s, rejected %s", r.Served().Revision.ID, r.Status().Rejected.Revision)
	}
	byStranger := s.commit(t, "carl", stranger)
	wantRejected(t, r, reconcileNow(t, r), "commit "+byStranger+" is signed, but the signature is bad: not trusted: signed by SSH key "+stranger.Fingerprint)
	// Asked again, the same commit is not judged again...
	before := counter(r, ResultRejected)
	wantRejected(t, r, reconcileNow(t, r), "not trusted")
	if got := counter(r, ResultRejected); got != before {
		t.Errorf("rejected reconciles = %v after asking again, want %v (the same commit is not judged again)", got, before)
	}
	// ... until the trusted keys change: the stranger's key trusted, it is served.
	s.trust(t, s.key, stranger)
	if err := reconcileNow(t, r); err != nil {
		t.Fatalf("after trusting the key: %v", err)
	}
	if st := r.Status(); st.Served.Revision.ID != byStranger || st.Rejected != nil || st.Served.Revision.Signature.Signer != "ada@example.com "+stranger.Fingerprint {
		t.Errorf("after trusting the key: %+v", st)
	}

	tampered := gittest.Tamper(t, s.root, byStranger, "grant carl, quietly changed")
	wantRejected(t, r, reconcileNow(t, r), "commit "+tampered+" is signed, but the signature is bad: invalid: the SSH signature by key "+stranger.Fingerprint+" does not verify")

	// Uncommitted changes carry no signature.
	gittest.WriteFile(t, s.root, "records.cue", recordCUE("dora", "User"))
	wantRejected(t, r, reconcileNow(t, r), "differs from its commit "+tampered+": only committed content carries a signature")
	if st := r.Status(); st.Served.Revision.ID != byStranger {
		t.Errorf("serving %s, want %s", st.Served.Revision.ID, byStranger)
	}
}

func TestReconcileVerifyAll(t *testing.T) {
	s := newSignedRepo(t)
	served := s.commit(t, "ann", s.key)
	r := start(t, commitSource(t, s.root), Options{Trust: &trust.Policy{Keys: s.keys(t), Mode: trust.All}}, nil)
	if err := settle(t, r); err != nil {
		t.Fatal(err)
	}
	unsigned := s.commit(t, "bob", nil)
	tip := s.commit(t, "carl", s.key)
	wantRejected(t, r, reconcileNow(t, r), "commit "+unsigned+` ("grant bob"), below the tip `+tip+" and not served before, is not signed")
	if r.Served().Revision.ID != served {
		t.Errorf("serving %s, want %s", r.Served().Revision.ID, served)
	}
}

func TestReconcileNotACommit(t *testing.T) {
	root := t.TempDir()
	gittest.WriteFile(t, root, "roles.cue", rolesCUE)
	s := newSignedRepo(t)
	for _, tt := range []struct {
		policy *trust.Policy
		want   string
	}{
		{&trust.Policy{Keys: s.keys(t)}, "is not a git commit: its signature cannot be verified"},
		{&trust.Policy{NoRewind: true}, "is not a git commit: its descent from the served commit cannot be checked (--no-rewind)"},
	} {
		r := start(t, commitSource(t, root), Options{Trust: tt.policy}, nil)
		wantRejected(t, r, reconcileNow(t, r), tt.want)
		if r.Served() != nil {
			t.Error("a revision outside git was served")
		}
	}
	// Without a policy, a directory outside git is served as before.
	r := start(t, commitSource(t, root), Options{Trust: &trust.Policy{}}, nil)
	if err := reconcileNow(t, r); err != nil {
		t.Fatal(err)
	}
}

// TestReconcileForcePush: a tip that does not descend from the served
// commit is served and logged with both commits; under NoRewind it is
// rejected, also by a new reconciler that knows the served commit from the
// state file only.
func TestReconcileForcePush(t *testing.T) {
	s := newSignedRepo(t)
	c1 := s.commit(t, "ann", nil)
	c2 := s.commit(t, "bob", nil)
	state := trust.NewState(trust.StatePath(t.TempDir(), "test"), "test")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := start(t, commitSource(t, s.root), Options{Logger: log, State: state}, nil)
	if err := settle(t, r); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, s.root, "reset", "-q", "--hard", c1)
	rewritten := s.commit(t, "carl", nil)
	if err := reconcileNow(t, r); err != nil {
		t.Fatalf("force-push without --no-rewind: %v", err)
	}
	if r.Served().Revision.ID != rewritten {
		t.Fatalf("serving %s, want the force-pushed %s", r.Served().Revision.ID, rewritten)
	}
	if !strings.Contains(logs.String(), "msg=\"force-push: the new revision does not descend from the served commit; serving it\" revision="+rewritten+" previous="+c2) {
		t.Errorf("log:\n%s", logs.String())
	}
	if got, err := state.Load(); err != nil || got != rewritten {
		t.Errorf("state file holds %q, %v; want %s", got, err, rewritten)
	}

	// A restart under NoRewind: the served commit comes from the state file.
	gittest.Git(t, s.root, "reset", "-q", "--hard", c2)
	last, err := state.Load()
	if err != nil {
		t.Fatal(err)
	}
	r2 := start(t, commitSource(t, s.root), Options{Trust: &trust.Policy{NoRewind: true}, LastServed: last, State: state}, nil)
	wantRejected(t, r2, settle(t, r2), "commit "+c2+" is not a descendant of the served commit "+rewritten+" (--no-rewind)")
	if r2.Served() != nil {
		t.Error("the rewound commit was served")
	}
	// Back on the served line, it is served, and the state follows.
	gittest.Git(t, s.root, "reset", "-q", "--hard", rewritten)
	next := s.commit(t, "dora", nil)
	if err := reconcileNow(t, r2); err != nil {
		t.Fatal(err)
	}
	if got, _ := state.Load(); got != next || r2.Served().Revision.ID != next {
		t.Errorf("state %s, serving %s; want %s", got, r2.Served().Revision.ID, next)
	}
	// Uncommitted content is not in the history --no-rewind follows.
	gittest.WriteFile(t, s.root, "records.cue", recordCUE("eve", "User"))
	wantRejected(t, r2, reconcileNow(t, r2), "differs from its commit "+next+": uncommitted content has no place in the history that --no-rewind follows")
}
