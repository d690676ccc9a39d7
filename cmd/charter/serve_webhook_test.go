package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
)

// webhook posts a push of ref (or, with event "ping", GitHub's ping) to the
// server's /v1/reconcile as forge sends it, authenticated with secret, and
// returns the answer's status and body.
func webhook(t *testing.T, s *server, forge, event, ref, query string, secret []byte) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"ref": ref, "after": "0000000000000000000000000000000000000000"})
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	sum := hex.EncodeToString(mac.Sum(nil))
	req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/reconcile"+query, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	switch forge {
	case "github":
		req.Header.Set("X-Hub-Signature-256", "sha256="+sum)
		req.Header.Set("X-GitHub-Event", event)
	case "gitea":
		req.Header.Set("X-Gitea-Signature", sum)
		req.Header.Set("X-Gitea-Event", event)
	case "gitlab":
		req.Header.Set("X-Gitlab-Token", string(secret))
		req.Header.Set("X-Gitlab-Event", event)
	default:
		t.Fatalf("forge %q", forge)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return resp.StatusCode, out
}

// TestServeGitWebhook follows a branch through a real git daemon with an
// interval too long to matter: each forge's signed push webhook gets the
// pushed commit served; a push to another branch, a ping and a webhook
// signed with another secret fetch nothing.
func TestServeGitWebhook(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	c1 := remote.Set(t, gitPolicy(1), "first")
	daemon := gittest.StartDaemon(t, root)
	secret := []byte("webhook secret 7f3a")
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	s := launchServer(t, serveConfig{source: daemon.URL("policy.git"), path: "policies", interval: time.Hour,
		cacheDir: t.TempDir(), fetchTimeout: 5 * time.Second, webhookSecretFile: secretFile})
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })
	if st := s.status(t); st.Branch == nil || *st.Branch != "main" {
		t.Fatalf("branch %v, want main", st.Branch)
	}

	c2 := remote.Set(t, gitPolicy(2), "second")
	fetches := s.fetches(t)
	nothing := func(what string) {
		t.Helper()
		// A fetch would have been asked for before the answer; give one
		// that was asked for time to show.
		time.Sleep(300 * time.Millisecond)
		if n := s.fetches(t); n != fetches {
			t.Errorf("%s: %d fetches, want none", what, n-fetches)
		}
		if rev := s.status(t).Revision; rev != c1 {
			t.Errorf("%s: %s served, want still %s", what, rev, c1)
		}
	}
	for _, forge := range []string{"github", "gitea", "gitlab"} {
		event := "push"
		if forge == "gitlab" {
			event = "Push Hook"
		}
		if code, body := webhook(t, s, forge, event, "refs/heads/feature", "", secret); code != http.StatusAccepted || body["status"] != "ignored" {
			t.Errorf("%s push to another branch: %d %v", forge, code, body)
		}
		if code, body := webhook(t, s, forge, event, "refs/heads/main", "", []byte("another secret")); code != http.StatusUnauthorized {
			t.Errorf("%s push signed with another secret: %d %v", forge, code, body)
		}
	}
	if code, body := webhook(t, s, "github", "ping", "", "", secret); code != http.StatusOK || body["status"] != "pong" {
		t.Errorf("ping: %d %v", code, body)
	}
	nothing("other branches, bad signatures and a ping")

	// GitLab's push with ?wait=true answers with the pushed commit served.
	if code, body := webhook(t, s, "gitlab", "Push Hook", "refs/heads/main", "?wait=true", secret); code != http.StatusAccepted || body["status"] != "served" || body["revision"] != c2 {
		t.Errorf("gitlab push with wait: %d %v, want %s served", code, body, c2)
	}
	// GitHub's and Gitea's push, answered at once, get it served soon after.
	for i, forge := range []string{"github", "gitea"} {
		c := remote.Set(t, gitPolicy(3+i), forge)
		if code, body := webhook(t, s, forge, "push", "refs/heads/main", "", secret); code != http.StatusAccepted || body["status"] != "accepted" {
			t.Errorf("%s push: %d %v", forge, code, body)
		}
		s.waitFor(t, func() bool { return s.status(t).Revision == c })
	}
	if ok, _, err := s.check("ann", "documents/d4", "documents:read"); err != nil || !ok {
		t.Errorf("the last pushed commit's decision: %v, %v", ok, err)
	}
}
