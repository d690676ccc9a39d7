package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
)

// signedPolicyRepo is a git work tree of policies for charter serve, with
// the keys that sign its commits and the trusted-keys files of serve.
type signedPolicyRepo struct {
	dir                  string
	gpg, gpgStranger     *gittest.GPGKey
	ssh                  *gittest.SSHKey
	trustedKeys, signers string
}

func newSignedPolicyRepo(t *testing.T) *signedPolicyRepo {
	t.Helper()
	r := &signedPolicyRepo{dir: t.TempDir()}
	gittest.Init(t, r.dir)
	writePolicyFile(t, r.dir, "roles.cue", serveRoles)
	r.gpg = gittest.NewGPGKey(t, "Ada Author", "ada@example.com")
	r.gpgStranger = gittest.NewGPGKey(t, "Mallory", "mallory@example.com")
	r.ssh = gittest.NewSSHKey(t, "ada@example.com")
	keys := t.TempDir()
	r.trustedKeys = filepath.Join(keys, "trusted.asc")
	r.signers = filepath.Join(keys, "allowed_signers")
	if err := os.WriteFile(r.trustedKeys, []byte(r.gpg.Public), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.signers, []byte(r.ssh.AllowedSigner("ada@example.com", `namespaces="git"`)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// commit grants ann documents/d<k> and commits it, signed by s (nil:
// unsigned).
func (r *signedPolicyRepo) commit(t *testing.T, k int, s *gittest.Signer) string {
	t.Helper()
	writePolicyFile(t, r.dir, "records.cue", versionRecords(k))
	if s == nil {
		return gittest.CommitAll(t, r.dir, "grant d"+string(rune('0'+k)))
	}
	return gittest.CommitSigned(t, r.dir, "grant d"+string(rune('0'+k)), *s)
}

func signedBy(s gittest.Signer) *gittest.Signer { return &s }

// serveTrusting runs charter serve over the repository with its trusted
// keys and extra settings.
func (r *signedPolicyRepo) serve(t *testing.T, cfg serveConfig) *server {
	t.Helper()
	cfg.source, cfg.debounce = r.dir, 50*time.Millisecond
	cfg.trustedKeys, cfg.trustedSSHSigners = r.trustedKeys, r.signers
	return launchServer(t, cfg)
}

// waitRejected waits until /v1/status names rev as the revision that could
// not be served, and returns its message.
func (s *server) waitRejected(t *testing.T, rev string) string {
	t.Helper()
	var msg string
	s.waitFor(t, func() bool {
		st := s.status(t)
		if st.Error == nil || st.Error.Revision != rev || len(st.Error.Errors) == 0 {
			return false
		}
		msg = st.Error.Errors[0].Message
		return true
	})
	return msg
}

func (s *server) waitServed(t *testing.T, rev string) statusBody {
	t.Helper()
	var st statusBody
	s.waitFor(t, func() bool { st = s.status(t); return st.Revision == rev })
	return st
}

// reconciles reads charter_reconcile_total{result} from a scrape of GET
// /metrics.
func (s *server) reconciles(t *testing.T, result string) float64 {
	t.Helper()
	body := s.scrape(t)
	prefix := `charter_reconcile_total{result="` + result + `"} `
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /metrics:\n%s", prefix, body)
	return 0
}

func (s *server) allows(t *testing.T, doc string) bool {
	t.Helper()
	ok, _, err := s.check("ann", doc, "documents:read")
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestServeSignedCommits: commits signed by a trusted OpenPGP key (gpg)
// and by a trusted SSH key (ssh-keygen, gpg.format=ssh) are served with
// their signer in /v1/status; an unsigned commit, one signed by a key that
// is not trusted and a tampered one are rejected, named with the reason in
// /v1/status and counted as rejected, while the last good commit keeps
// serving.
func TestServeSignedCommits(t *testing.T) {
	r := newSignedPolicyRepo(t)
	c1 := r.commit(t, 1, signedBy(r.gpg.Signer()))
	s := r.serve(t, serveConfig{cacheDir: t.TempDir()})
	st := s.waitServed(t, c1)
	if st.Signature == nil || st.Signature.Status != "good" || st.Signature.Signer == nil || *st.Signature.Signer != r.gpg.Fingerprint {
		t.Fatalf("signature of an OpenPGP-signed commit: %+v", st.Signature)
	}
	c2 := r.commit(t, 2, signedBy(r.ssh.Signer()))
	st = s.waitServed(t, c2)
	if st.Signature == nil || st.Signature.Status != "good" || st.Signature.Signer == nil || *st.Signature.Signer != "ada@example.com "+r.ssh.Fingerprint {
		t.Fatalf("signature of an SSH-signed commit: %+v", st.Signature)
	}
	if !s.allows(t, "documents/d2") || s.allows(t, "documents/d1") {
		t.Fatal("the SSH-signed commit's records are not served")
	}

	rejectedBefore := s.reconciles(t, "rejected")
	for _, tt := range []struct {
		name string
		make func() string
		want string
	}{
		{"unsigned", func() string { return r.commit(t, 3, nil) }, "is not signed: a good signature by a trusted key is required"},
		{"untrusted key", func() string { return r.commit(t, 4, signedBy(r.gpgStranger.Signer())) },
			"is signed, but the signature is bad: not trusted: signed by OpenPGP key " + r.gpgStranger.Fingerprint},
		{"tampered", func() string {
			gittest.Git(t, r.dir, "reset", "-q", "--hard", c2)
			return gittest.Tamper(t, r.dir, c2, "grant d2, quietly changed")
		}, "is signed, but the signature is bad: invalid: the SSH signature by key " + r.ssh.Fingerprint + " does not verify"},
	} {
		hash := tt.make()
		msg := s.waitRejected(t, hash)
		if !strings.Contains(msg, "commit "+hash+" "+tt.want) {
			t.Errorf("%s: status error %q, want %q", tt.name, msg, tt.want)
		}
		if st := s.status(t); st.Revision != c2 || st.Signature == nil || st.Signature.Status != "good" {
			t.Errorf("%s: serving %s (%+v), want %s", tt.name, st.Revision, st.Signature, c2)
		}
		if !s.allows(t, "documents/d2") || s.allows(t, "documents/d3") || s.allows(t, "documents/d4") {
			t.Errorf("%s: decisions changed", tt.name)
		}
	}
	if got := s.reconciles(t, "rejected") - rejectedBefore; got < 3 {
		t.Errorf("%v rejected reconciles, want at least 3", got)
	}
	if code := readyz(t, s.base); code != http.StatusOK {
		t.Errorf("/readyz %d while the last good commit serves", code)
	}
}

// TestServeVerifyAllCommits: with --verify-commits all, a signed tip over
// an unsigned parent is rejected, naming the parent; with tip, it is served.
func TestServeVerifyAllCommits(t *testing.T) {
	r := newSignedPolicyRepo(t)
	c1 := r.commit(t, 1, signedBy(r.ssh.Signer()))
	s := r.serve(t, serveConfig{cacheDir: t.TempDir(), verifyCommits: "all"})
	s.waitServed(t, c1)
	unsigned := r.commit(t, 2, nil)
	s.waitRejected(t, unsigned) // the unsigned commit alone
	tip := r.commit(t, 3, signedBy(r.gpg.Signer()))
	msg := s.waitRejected(t, tip)
	if want := "commit " + unsigned + ` ("grant d2"), below the tip ` + tip + " and not served before, is not signed"; !strings.Contains(msg, want) {
		t.Errorf("status error %q, want %q", msg, want)
	}
	if st := s.status(t); st.Revision != c1 {
		t.Errorf("serving %s, want %s", st.Revision, c1)
	}
	s.shutdown(t)

	tipOnly := r.serve(t, serveConfig{cacheDir: t.TempDir(), verifyCommits: "tip"})
	tipOnly.waitServed(t, tip)
}

// TestServeForcePush: a force-push (the branch reset and committed anew) is
// served and logged with both commits; under --no-rewind a commit that does
// not descend from the served one is rejected.
func TestServeForcePush(t *testing.T) {
	r := newSignedPolicyRepo(t)
	c1 := r.commit(t, 1, nil)
	c2 := r.commit(t, 2, nil)
	cfg := serveConfig{source: r.dir, debounce: 50 * time.Millisecond, cacheDir: t.TempDir()}
	s := launchServer(t, cfg)
	s.waitServed(t, c2)
	// The branch rewritten elsewhere, as a force-push does, and the work
	// tree moved to it in one reset.
	other := filepath.Join(t.TempDir(), "other")
	gittest.Git(t, r.dir, "clone", "-q", r.dir, other)
	gittest.Git(t, other, "reset", "-q", "--hard", c1)
	writePolicyFile(t, other, "records.cue", versionRecords(3))
	rewritten := gittest.CommitAll(t, other, "grant d3")
	gittest.Git(t, r.dir, "fetch", "-q", other, "HEAD")
	gittest.Git(t, r.dir, "reset", "-q", "--hard", "FETCH_HEAD")
	s.waitServed(t, rewritten)
	// The reset may be seen half done first (a "+dirty" revision of either
	// commit): the force-push is logged at the first revision of the new
	// commit, with the served commit before it.
	forcePush := regexp.MustCompile(`msg="force-push: the new revision does not descend from the served commit; serving it" revision=` + rewritten + `(\+dirty\.[0-9a-f]{12})? previous=` + c2 + ` `)
	if !forcePush.MatchString(s.logs.String()) {
		t.Errorf("no force-push line naming both commits:\n%s", s.logs.String())
	}
	s.shutdown(t)

	cfg.noRewind = true
	s = launchServer(t, cfg)
	s.waitServed(t, rewritten)
	gittest.Git(t, r.dir, "reset", "-q", "--hard", c2)
	msg := s.waitRejected(t, c2)
	if want := "commit " + c2 + " is not a descendant of the served commit " + rewritten + " (--no-rewind)"; msg != want {
		t.Errorf("status error %q, want %q", msg, want)
	}
	if !s.allows(t, "documents/d3") || s.allows(t, "documents/d2") {
		t.Error("the rewound commit's records are served")
	}
}

// TestServeNoRewindAfterRestart runs charter serve as a real process with
// the flags: it serves a commit and records it in --cache-dir; stopped, the
// branch rewound to an older commit, and started again with --no-rewind,
// it rejects that commit (nothing is served: /readyz 503), and serves a
// commit that descends from the recorded one.
func TestServeNoRewindAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	r := newSignedPolicyRepo(t)
	c1 := r.commit(t, 1, signedBy(r.ssh.Signer()))
	c2 := r.commit(t, 2, signedBy(r.ssh.Signer()))
	cache := t.TempDir()
	args := []string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--source", r.dir, "--cache-dir", cache,
		"--trusted-ssh-signers", r.signers, "--no-rewind", "--debounce", "50ms"}

	first := startProcess(t, args...)
	st := first.waitStatus(t, func(st statusBody) bool { return st.Revision != "" })
	if st.Revision != c2 || st.Signature == nil || st.Signature.Status != "good" {
		t.Fatalf("first run: %+v", st)
	}
	first.stop(t)
	if entries, err := os.ReadDir(filepath.Join(cache, "served")); err != nil || len(entries) != 1 {
		t.Fatalf("state files: %v, %v", entries, err)
	}

	gittest.Git(t, r.dir, "reset", "-q", "--hard", c1) // an older signed commit
	second := startProcess(t, args...)
	line := second.log.await(t, "revision not served")
	if first, _ := line["first"].(string); line["revision"] != c1 || !strings.Contains(first, "commit "+c1+" is not a descendant of the served commit "+c2+" (--no-rewind)") {
		t.Errorf("after the restart: %v", line)
	}
	st = second.waitStatus(t, func(st statusBody) bool { return st.Error != nil })
	if st.Revision != "" || st.Error.Revision != c1 {
		t.Errorf("status after the restart: %+v", st)
	}
	if code := readyz(t, second.base); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with nothing served, want 503", code)
	}
	gittest.Git(t, r.dir, "reset", "-q", "--hard", c2)
	c3 := r.commit(t, 3, signedBy(r.ssh.Signer()))
	second.waitStatus(t, func(st statusBody) bool { return st.Revision == c3 && st.Error == nil })
	second.stop(t)
}

// readyz returns the status code of GET /readyz at base.
func readyz(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// shutdown stops the server and waits for serve to return, leaving its
// exit code for the test's cleanup.
func (s *server) shutdown(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}
}

// TestServeTrustFlagErrors: a mistake in a key file, or flags that cannot
// work together, stop serve before it listens, with exit 2 and a message
// naming the file and line.
func TestServeTrustFlagErrors(t *testing.T) {
	dir := t.TempDir()
	gittest.Init(t, dir)
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	gittest.CommitAll(t, dir, "c1")
	signers := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(signers, []byte("# ok\nada@example.com namespaces=git ssh-ed25519 AAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cfg  serveConfig
		want string
	}{
		{serveConfig{source: dir, trustedSSHSigners: signers}, signers + `:2:28: want a quoted value ("…")`},
		{serveConfig{source: dir, trustedKeys: filepath.Join(dir, "missing.asc")}, "missing.asc: no such file or directory"},
		{serveConfig{source: dir, verifyCommits: "all"}, "--verify-commits all needs --trusted-keys or --trusted-ssh-signers"},
		{serveConfig{noRewind: true}, "need a --source in git: the embedded example policies are not a commit"},
		{serveConfig{source: dir, noRewind: true}, "--no-rewind and --verify-commits all keep the served commit across restarts in --cache-dir: give one"},
	}
	for _, tt := range tests {
		tt.cfg.listen, tt.cfg.logFormat, tt.cfg.logLevel = "127.0.0.1:0", "text", "error"
		env := &cliEnv{stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: func(string) string { return "" }, now: time.Now}
		code, err := serve(t.Context(), env, tt.cfg, nil)
		if code != exitFailure || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("serve(%+v) = %d, %v; want exit 2 with %q", tt.cfg, code, err, tt.want)
		}
	}
}
