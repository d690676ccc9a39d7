package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	gitsource "github.com/charter-policy/charter/reconciler/source/git"
)

// gitPolicy is a policy repository's files, the policy root below
// policies/, granting ann documents/d<k>.
func gitPolicy(k int) map[string]string {
	return map[string]string{
		"policies/roles.cue":   serveRoles,
		"policies/records.cue": versionRecords(k),
		"README.md":            "# policies\n",
	}
}

// fetches returns how many fetches the server has made (the count of the
// fetch phase's duration).
func (s *server) fetches(t *testing.T) uint64 {
	t.Helper()
	return findMetric(t, s.metrics, "charter_reconcile_duration_seconds", "phase", "fetch").GetHistogram().GetSampleCount()
}

// stop stops the server and waits for it.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup of launchServer
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not stop")
	}
}

// pushServed pushes files and waits until their commit is served,
// asserting that it was served by the first fetch that started after the
// push returned (the one under way then, if any, may miss it): within one
// --interval.
func pushServed(t *testing.T, s *server, remote *gittest.Remote, files map[string]string, msg string) string {
	t.Helper()
	c := remote.Set(t, files, msg)
	before := s.fetches(t)
	s.waitFor(t, func() bool { return s.status(t).Revision == c })
	if n := s.fetches(t) - before; n > 2 {
		t.Errorf("%s was served after %d fetches, want at most 2 (the fetch under way at the push, and the next)", msg, n)
	}
	return c
}

// minRevision asks whether ann may read resource, with Charter-Min-Revision
// min, and returns the answer's status and Charter-Revision.
func minRevision(t *testing.T, s *server, resource, min string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.base+"/v1/users/ann/resources/"+url.PathEscape(resource)+"/permissions/documents:read", nil)
	req.Header.Set("Charter-Min-Revision", min)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Charter-Revision")
}

func TestServeGitDaemon(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	c1 := remote.Set(t, gitPolicy(1), "first")
	daemon := gittest.StartDaemon(t, root)
	source := daemon.URL("policy.git")
	cache := t.TempDir()
	cfg := serveConfig{source: source, path: "policies", interval: 100 * time.Millisecond, cacheDir: cache, fetchTimeout: 5 * time.Second}
	s := launchServer(t, cfg)
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })
	st := s.status(t)
	if st.Source != source || st.Branch == nil || *st.Branch != "main" || st.FetchedRevision == nil || *st.FetchedRevision != c1 ||
		st.LastFetch == nil || st.LastFetchError != nil || st.Subject != "first" {
		t.Errorf("status: %+v", st)
	}
	if ok, rev, err := s.check("ann", "documents/d1", "documents:read"); err != nil || !ok || rev != c1 {
		t.Fatalf("first decision: %v at %s, %v", ok, rev, err)
	}

	// Each valid push is served within one interval.
	c2 := pushServed(t, s, remote, gitPolicy(2), "second")
	if ok, _, _ := s.check("ann", "documents/d2", "documents:read"); !ok {
		t.Error("the second commit's decision is not served")
	}

	// An invalid commit keeps the previous decisions and shows in status.
	bad := gitPolicy(3)
	bad["policies/records.cue"] = "package policies\n\nrecords: r1: {name: 1}\n"
	c3 := remote.Set(t, bad, "invalid")
	s.waitFor(t, func() bool { st := s.status(t); return st.Error != nil && st.Error.Revision == c3 })
	if st := s.status(t); st.Revision != c2 || !strings.HasPrefix(st.Error.Errors[0].Position, "records.cue:") || *st.FetchedRevision != c3 {
		t.Errorf("status after an invalid push: %+v", st)
	}
	if ok, rev, _ := s.check("ann", "documents/d2", "documents:read"); !ok || rev != c2 {
		t.Errorf("after an invalid push: %v at %s, want the decisions of %s", ok, rev, c2)
	}
	c4 := pushServed(t, s, remote, gitPolicy(4), "fourth")
	if st := s.status(t); st.Error != nil {
		t.Errorf("the error stays after a newer revision is served: %+v", st.Error)
	}

	// Charter-Min-Revision: the served commit and its ancestors are fine;
	// an unknown commit is 409 after the wait.
	for _, min := range []string{c4, c1, c2[:12]} {
		if code, rev := minRevision(t, s, "documents/d1", min); code != http.StatusNotFound || rev != c4 {
			t.Errorf("Charter-Min-Revision %.12s: %d at %s, want 404 (d1 is not ann's) at %s", min, code, rev, c4)
		}
	}
	if code, rev := minRevision(t, s, "documents/d1", "0123456789abcdef0123456789abcdef01234567"); code != http.StatusConflict || rev != c4 {
		t.Errorf("an unknown commit: %d at %s, want 409 naming %s", code, rev, c4)
	}

	// A restart with the daemon stopped serves the cached clone.
	s.stop(t)
	daemon.Stop()
	s = launchServer(t, cfg)
	s.waitFor(t, func() bool { return s.status(t).Revision == c4 })
	s.waitFor(t, func() bool { return s.status(t).LastFetchError != nil })
	if resp, err := http.Get(s.base + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz with the remote down: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if ok, rev, _ := s.check("ann", "documents/d4", "documents:read"); !ok || rev != c4 {
		t.Errorf("the cached policy: %v at %s", ok, rev)
	}

	// The daemon back: the sidecar catches up.
	c5 := remote.Set(t, gitPolicy(5), "fifth")
	daemon.Start()
	s.waitFor(t, func() bool { return s.status(t).Revision == c5 })
	if st := s.status(t); st.LastFetchError != nil {
		t.Errorf("the fetch error stays: %s", *st.LastFetchError)
	}
}

// TestServeGitMinRevisionFetches: with no polling to speak of, a request
// for a just-pushed commit makes the sidecar fetch, waits, and is answered
// from that commit.
func TestServeGitMinRevisionFetches(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	c1 := remote.Set(t, gitPolicy(1), "first")
	s := launchServer(t, serveConfig{source: "file://" + remote.Bare, path: "policies", interval: time.Hour,
		cacheDir: t.TempDir(), minRevisionWait: 15 * time.Second})
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })
	c2 := remote.Set(t, gitPolicy(2), "second")
	if code, rev := minRevision(t, s, "documents/d1", c2); code != http.StatusNotFound || rev != c2 {
		t.Errorf("Charter-Min-Revision of a just-pushed commit: %d at %s, want an answer from %s", code, rev, c2)
	}
}

// TestServeGitHTTPSCredentialsNeverShown runs the token path against a
// real git server (git http-backend behind basic auth): a wrong token is a
// fetch error, a rotated token file is used without a restart, and neither
// the token nor the URL's password appears in anything the server wrote.
func TestServeGitHTTPSCredentialsNeverShown(t *testing.T) {
	const (
		token     = "tok-e2e-2f8d1c9a7b"
		old       = "tok-old-77aa11bb"
		urlSecret = "urlpass-5c3e9d"
	)
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	c1 := remote.Set(t, gitPolicy(1), "first")
	srv := gittest.StartHTTP(t, root, "charter", token)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withSecret := strings.Replace(srv.URL, "https://", "https://charter:"+urlSecret+"@", 1) + "/policy.git"
	s := launchServer(t, serveConfig{
		source: withSecret, path: "policies", interval: 100 * time.Millisecond, cacheDir: t.TempDir(), logLevel: "debug",
		credentials: gitsource.Credentials{TokenFile: tokenFile, Username: "charter"}, gitHTTPClient: srv.Client(),
	})
	s.waitFor(t, func() bool { return s.status(t).LastFetchError != nil })
	if st := s.status(t); st.Revision != "" || !strings.Contains(*st.LastFetchError, "refused the credentials") {
		t.Errorf("with a wrong token: %+v (error %q)", st, *st.LastFetchError)
	}
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })
	pushServed(t, s, remote, gitPolicy(2), "second")
	var sawToken bool
	for _, r := range srv.Requests() {
		sawToken = sawToken || strings.Contains(r, "Basic ")
	}
	if !sawToken {
		t.Fatal("the server saw no basic auth: the check below proves nothing")
	}

	// Everything the server wrote: its log, status, metrics, and the
	// answers of its routes.
	var written strings.Builder
	written.WriteString(s.logs.String())
	for _, path := range []string{"/v1/status", "/metrics", "/readyz", "/healthz", "/v1/users/ann/resources/documents%2Fd2/permissions/documents:read"} {
		resp, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		written.Write(body)
		for k, v := range resp.Header {
			written.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	out := written.String()
	for _, secret := range []string{token, old, urlSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("the server wrote the secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "the --source URL carries credentials") {
		t.Error("no warning about the URL's credentials")
	}
	var st statusBody
	resp, err := http.Get(s.base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Source != srv.URL+"/policy.git" {
		t.Errorf("status source = %q, want the URL without userinfo", st.Source)
	}
}

func TestServeGitSSH(t *testing.T) {
	sshd := gittest.StartSSHD(t)
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	c1 := remote.Set(t, gitPolicy(1), "first")
	cfg := serveConfig{source: sshd.URL(remote.Bare), path: "policies", interval: 100 * time.Millisecond, cacheDir: t.TempDir(),
		credentials: gitsource.Credentials{SSHKeyFile: sshd.KeyFile, KnownHostsFile: sshd.KnownHosts}}
	s := launchServer(t, cfg)
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })
	pushServed(t, s, remote, gitPolicy(2), "second")

	// A host key that known_hosts does not list is refused: nothing is
	// fetched, whatever the remote holds.
	cfg.cacheDir = t.TempDir()
	cfg.credentials.KnownHostsFile = sshd.OtherKnownHosts
	other := launchServer(t, cfg)
	other.waitFor(t, func() bool { return other.status(t).LastFetchError != nil })
	if st := other.status(t); st.Revision != "" || !strings.Contains(*st.LastFetchError, "key mismatch") {
		t.Errorf("with another host key in known_hosts: %+v (error %q); sshd:\n%s", st, *st.LastFetchError, sshd.Logs())
	}
}

func TestServeGitFlagErrors(t *testing.T) {
	dir := t.TempDir()
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	for _, tt := range []struct {
		cfg  serveConfig
		want string
	}{
		{serveConfig{source: dir, branch: "main"}, "--branch is for a git URL --source"},
		{serveConfig{source: dir, credentials: gitsource.Credentials{TokenFile: "/t"}}, "--git-token-file is for a git URL --source"},
		{serveConfig{source: "ftp://host/repo.git"}, `scheme "ftp" is not supported`},
		{serveConfig{source: "http://u:hunter2@host/repo.git", credentials: gitsource.Credentials{TokenFile: "/t"}}, "would send the token in clear"},
		{serveConfig{source: "git@host:org/repo.git"}, "needs --git-ssh-key-file"},
		{serveConfig{source: "git://host/repo.git", credentials: gitsource.Credentials{TokenFile: "/t"}}, "--git-token-file is for https:// URLs"},
	} {
		if gitsource.IsURL(tt.cfg.source) {
			tt.cfg.cacheDir = t.TempDir()
		}
		env := &cliEnv{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }, now: time.Now}
		code, err := serve(t.Context(), env, tt.cfg, nil)
		if code != exitFailure || err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("serve %+v = %d, %v; want exit 2 and %q", tt.cfg.source, code, err, tt.want)
		}
	}
}

// TestServeGitSignedCommits: with --trusted-ssh-signers and --no-rewind, a
// git source is verified in its clone: a signed push is served with its
// signer, an unsigned one and a force-push back are rejected, and the last
// good commit keeps serving.
func TestServeGitSignedCommits(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	key := gittest.NewSSHKey(t, "ada")
	signers := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(signers, []byte(key.AllowedSigner("ada@example.com", `namespaces="git"`)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	push := func(k int, signed bool) string {
		t.Helper()
		for name, data := range gitPolicy(k) {
			gittest.WriteFile(t, remote.Work, name, data)
		}
		if signed {
			gittest.CommitSigned(t, remote.Work, fmt.Sprint("signed ", k), key.Signer())
		} else {
			gittest.CommitAll(t, remote.Work, fmt.Sprint("unsigned ", k))
		}
		return remote.Push(t)
	}
	c1 := push(1, true)
	daemon := gittest.StartDaemon(t, root)
	s := launchServer(t, serveConfig{source: daemon.URL("policy.git"), path: "policies", interval: 100 * time.Millisecond,
		cacheDir: t.TempDir(), trustedSSHSigners: signers, noRewind: true})
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })
	if st := s.status(t); st.Signature == nil || st.Signature.Status != "good" || st.Signature.Signer == nil || !strings.Contains(*st.Signature.Signer, key.Fingerprint) {
		t.Errorf("signature of the served commit: %+v", st.Signature)
	}
	c2 := push(2, true)
	s.waitFor(t, func() bool { return s.status(t).Revision == c2 })

	c3 := push(3, false)
	s.waitFor(t, func() bool { st := s.status(t); return st.Error != nil && st.Error.Revision == c3 })
	if st := s.status(t); st.Revision != c2 || !strings.Contains(st.Error.Errors[0].Message, "is not signed") {
		t.Errorf("an unsigned push: %+v", st)
	}

	gittest.Git(t, remote.Work, "reset", "-q", "--hard", c1)
	remote.Push(t, "--force")
	s.waitFor(t, func() bool { st := s.status(t); return st.Error != nil && st.Error.Revision == c1 })
	if st := s.status(t); st.Revision != c2 || !strings.Contains(st.Error.Errors[0].Message, "not a descendant of the served commit") {
		t.Errorf("a force-push back under --no-rewind: %+v", st)
	}
}
