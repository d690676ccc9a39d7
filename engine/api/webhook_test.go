package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// giteaSign is Gitea's X-Gitea-Signature of body: the bare hex HMAC-SHA256.
func giteaSign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// post sends POST /v1/reconcile with body and exactly the header hdr
// (a name may repeat) to the server at base.
func post(t *testing.T, base, query string, body []byte, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/reconcile"+query, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestWebhookForges sends each forge's webhook, well and badly
// authenticated, to a real server with a secret, and counts the fetches
// each one asked for.
func TestWebhookForges(t *testing.T) {
	secret := []byte("It's a Secret to Everybody")
	other := []byte("It's a Secret to Somebody")
	push := []byte(`{"ref":"refs/heads/main","before":"0","after":"1","commits":[{"id":"1"}]}`)
	otherPush := []byte(`{"ref":"refs/heads/feature","after":"2"}`)
	tagPush := []byte(`{"ref":"refs/tags/v1","after":"3"}`)
	hub := func(s, b []byte) string { return sign(s, b) }
	h := func(kv ...string) http.Header {
		hdr := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hdr.Add(kv[i], kv[i+1])
		}
		return hdr
	}
	const accepted, ignored, pong = `{"status":"accepted"}`, `{"status":"ignored"}`, `{"status":"pong"}`
	cases := []struct {
		name    string
		body    []byte
		hdr     http.Header
		status  int
		want    string // the body, or the error code
		fetches int32
	}{
		// GitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC.
		{"github push", push, h(HeaderSignature, hub(secret, push), HeaderGitHubEvent, "push"), 202, accepted, 1},
		{"github no event", push, h(HeaderSignature, hub(secret, push)), 202, accepted, 1},
		{"github other branch", otherPush, h(HeaderSignature, hub(secret, otherPush), HeaderGitHubEvent, "push"), 202, ignored, 0},
		{"github tag", tagPush, h(HeaderSignature, hub(secret, tagPush), HeaderGitHubEvent, "push"), 202, ignored, 0},
		{"github ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), h(HeaderSignature, hub(secret, []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)), HeaderGitHubEvent, "ping"), 200, pong, 0},
		{"github other event", push, h(HeaderSignature, hub(secret, push), HeaderGitHubEvent, "issues"), 202, ignored, 0},
		{"github form push", []byte("payload=" + url.QueryEscape(string(push))), h(HeaderSignature, hub(secret, []byte("payload="+url.QueryEscape(string(push)))), HeaderGitHubEvent, "push", "Content-Type", "application/x-www-form-urlencoded"), 202, accepted, 1},
		{"github form other branch", []byte("payload=" + url.QueryEscape(string(otherPush))), h(HeaderSignature, hub(secret, []byte("payload="+url.QueryEscape(string(otherPush)))), HeaderGitHubEvent, "push"), 202, ignored, 0},
		{"github bad body", []byte(`{"ref":`), h(HeaderSignature, hub(secret, []byte(`{"ref":`)), HeaderGitHubEvent, "push"), 400, codeInvalidJSON, 0},
		{"github no ref", []byte(`{"after":"1"}`), h(HeaderSignature, hub(secret, []byte(`{"after":"1"}`)), HeaderGitHubEvent, "push"), 400, codeInvalidJSON, 0},
		{"github ref not a string", []byte(`{"ref":1}`), h(HeaderSignature, hub(secret, []byte(`{"ref":1}`)), HeaderGitHubEvent, "push"), 400, codeInvalidJSON, 0},
		{"github wrong secret", push, h(HeaderSignature, hub(other, push), HeaderGitHubEvent, "push"), 401, codeInvalidSignature, 0},
		{"github other body", push, h(HeaderSignature, hub(secret, otherPush), HeaderGitHubEvent, "push"), 401, codeInvalidSignature, 0},
		{"github missing prefix", push, h(HeaderSignature, giteaSign(secret, push), HeaderGitHubEvent, "push"), 401, codeInvalidSignature, 0},
		{"github sha1", push, h(HeaderSignature, "sha1="+giteaSign(secret, push)), 401, codeInvalidSignature, 0},
		{"github not hex", push, h(HeaderSignature, "sha256=xyz"), 401, codeInvalidSignature, 0},
		{"github empty", push, h(HeaderSignature, ""), 401, codeInvalidSignature, 0},
		{"github twice", push, h(HeaderSignature, hub(secret, push), HeaderSignature, hub(secret, push)), 401, codeInvalidSignature, 0},
		{"github ping unsigned", []byte(`{}`), h(HeaderGitHubEvent, "ping"), 401, codeInvalidSignature, 0},
		// Gitea: X-Gitea-Signature = bare hex HMAC; Gitea also sends
		// X-Hub-Signature-256 and X-GitHub-Event.
		{"gitea push", push, h(HeaderGiteaSignature, giteaSign(secret, push), HeaderGiteaEvent, "push"), 202, accepted, 1},
		{"gitea as sent", push, h(HeaderGiteaSignature, giteaSign(secret, push), HeaderSignature, hub(secret, push), HeaderGiteaEvent, "push", HeaderGitHubEvent, "push"), 202, accepted, 1},
		{"gitea other branch", otherPush, h(HeaderGiteaSignature, giteaSign(secret, otherPush), HeaderGiteaEvent, "push"), 202, ignored, 0},
		{"gitea bad body", []byte("not json"), h(HeaderGiteaSignature, giteaSign(secret, []byte("not json")), HeaderGiteaEvent, "push"), 400, codeInvalidJSON, 0},
		{"gitea wrong secret", push, h(HeaderGiteaSignature, giteaSign(other, push), HeaderGiteaEvent, "push"), 401, codeInvalidSignature, 0},
		{"gitea with prefix", push, h(HeaderGiteaSignature, hub(secret, push)), 401, codeInvalidSignature, 0},
		{"gitea truncated", push, h(HeaderGiteaSignature, giteaSign(secret, push)[:62]), 401, codeInvalidSignature, 0},
		{"gitea one of two bad", push, h(HeaderGiteaSignature, giteaSign(secret, push), HeaderSignature, hub(other, push)), 401, codeInvalidSignature, 0},
		// GitLab: X-Gitlab-Token = the secret itself.
		{"gitlab push", push, h(HeaderGitLabToken, string(secret), HeaderGitLabEvent, "Push Hook"), 202, accepted, 1},
		{"gitlab other branch", otherPush, h(HeaderGitLabToken, string(secret), HeaderGitLabEvent, "Push Hook"), 202, ignored, 0},
		{"gitlab tag push", tagPush, h(HeaderGitLabToken, string(secret), HeaderGitLabEvent, "Tag Push Hook"), 202, ignored, 0},
		{"gitlab bad body", []byte(`[]`), h(HeaderGitLabToken, string(secret), HeaderGitLabEvent, "Push Hook"), 400, codeInvalidJSON, 0},
		{"gitlab wrong token", push, h(HeaderGitLabToken, string(other), HeaderGitLabEvent, "Push Hook"), 401, codeInvalidSignature, 0},
		{"gitlab prefix of token", push, h(HeaderGitLabToken, string(secret[:10])), 401, codeInvalidSignature, 0},
		{"gitlab empty token", push, h(HeaderGitLabToken, ""), 401, codeInvalidSignature, 0},
		{"gitlab token twice", push, h(HeaderGitLabToken, string(secret), HeaderGitLabToken, string(secret)), 401, codeInvalidSignature, 0},
		{"gitlab hmac as token", push, h(HeaderGitLabToken, giteaSign(secret, push)), 401, codeInvalidSignature, 0},
		// Nothing, or another forge's header.
		{"missing", push, h(HeaderGitHubEvent, "push"), 401, codeInvalidSignature, 0},
		{"sha1 header only", push, h("X-Hub-Signature", "sha1=00"), 401, codeInvalidSignature, 0},
		{"bearer", push, h("Authorization", "Bearer "+string(secret)), 401, codeInvalidSignature, 0},
	}
	s := exampleSnapshot(t, "rev1")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(s)
			base := startServer(t, NewHandler(b, Options{WebhookSecret: secret, Branch: func() string { return "main" }}))
			resp := post(t, base, "", c.body, c.hdr)
			if resp.status != c.status {
				t.Errorf("%d %s, want %d", resp.status, resp.body, c.status)
			}
			if c.status >= 400 {
				if got := errorCode(resp.body); got != c.want {
					t.Errorf("error code %q (%s), want %q", got, resp.body, c.want)
				}
			} else if !jsonEqual(resp.body, []byte(c.want)) {
				t.Errorf("body %s, want %s", resp.body, c.want)
			}
			if c.status == 401 && resp.header.Get("WWW-Authenticate") != webhookChallenge {
				t.Errorf("WWW-Authenticate %q", resp.header.Get("WWW-Authenticate"))
			}
			if got := b.reconciles.Load(); got != c.fetches {
				t.Errorf("%d reconciles, want %d", got, c.fetches)
			}
		})
	}
}

// TestWebhookBranch: the branch is asked for on every request (a git
// source learns the remote HEAD at its first fetch); while it is unknown
// every push fetches; an ignored push with ?wait=true does not wait.
func TestWebhookBranch(t *testing.T) {
	var branch atomic.Value
	branch.Store("")
	b := newBackend(exampleSnapshot(t, "rev1"))
	base := startServer(t, NewHandler(b, Options{Branch: func() string { return branch.Load().(string) }}))
	ev := http.Header{HeaderGitHubEvent: {"push"}}
	body := []byte(`{"ref":"refs/heads/trunk"}`)
	if resp := post(t, base, "", body, ev); resp.status != 202 || !jsonEqual(resp.body, []byte(`{"status":"accepted"}`)) || b.reconciles.Load() != 1 {
		t.Fatalf("unknown branch: %d %s, %d reconciles", resp.status, resp.body, b.reconciles.Load())
	}
	branch.Store("main")
	if resp := post(t, base, "?wait=true", body, ev); resp.status != 202 || !jsonEqual(resp.body, []byte(`{"status":"ignored"}`)) || b.reconciles.Load() != 1 {
		t.Fatalf("other branch: %d %s, %d reconciles", resp.status, resp.body, b.reconciles.Load())
	}
	branch.Store("trunk")
	if resp := post(t, base, "?wait=true", body, ev); resp.status != 202 || !strings.Contains(string(resp.body), `"served"`) || b.reconciles.Load() != 2 {
		t.Fatalf("followed branch: %d %s, %d reconciles", resp.status, resp.body, b.reconciles.Load())
	}
	// Without a secret a loopback push with an unreadable body is 400.
	if resp := post(t, base, "", []byte("{"), ev); resp.status != 400 || errorCode(resp.body) != codeInvalidJSON || b.reconciles.Load() != 2 {
		t.Fatalf("bad body: %d %s", resp.status, resp.body)
	}
	// Events that disagree are no push.
	if resp := post(t, base, "", body, http.Header{HeaderGitHubEvent: {"push"}, HeaderGiteaEvent: {"release"}}); resp.status != 202 || !jsonEqual(resp.body, []byte(`{"status":"ignored"}`)) {
		t.Fatalf("disagreeing events: %d %s", resp.status, resp.body)
	}
}

// TestWebhookOversized: a signed body over 1 MiB is 413 and fetches nothing.
func TestWebhookOversized(t *testing.T) {
	secret := []byte("s3cret")
	b := newBackend(exampleSnapshot(t, "rev1"))
	base := startServer(t, NewHandler(b, Options{WebhookSecret: secret}))
	body := append([]byte(`{"ref":"refs/heads/main","pad":"`), bytes.Repeat([]byte("x"), MaxBodyBytes)...)
	body = append(body, `"}`...)
	resp := post(t, base, "", body, http.Header{HeaderGitLabToken: {string(secret)}, HeaderGitLabEvent: {"Push Hook"}})
	if resp.status != http.StatusRequestEntityTooLarge || errorCode(resp.body) != codeBodyTooLarge || b.reconciles.Load() != 0 {
		t.Fatalf("%d %s, %d reconciles", resp.status, resp.body, b.reconciles.Load())
	}
}

// FuzzWebhookAuthentic: the verifier never panics, accepts a body only with
// a header that could be made with the secret, and accepts exactly the
// headers the forges send.
func FuzzWebhookAuthentic(f *testing.F) {
	secret := []byte("It's a Secret to Everybody")
	f.Add([]byte(`{"ref":"refs/heads/main"}`), sign(secret, []byte(`{"ref":"refs/heads/main"}`)), "", "")
	f.Add([]byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "", "")
	f.Add([]byte("Hello, World!"), "", "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "")
	f.Add([]byte("{}"), "", "", string(secret))
	f.Add([]byte("{}"), "sha256=", "zz", "It's a Secret")
	f.Fuzz(func(t *testing.T, body []byte, hub, gitea, gitlab string) {
		hdr := http.Header{}
		if hub != "" {
			hdr.Set(HeaderSignature, hub)
		}
		if gitea != "" {
			hdr.Set(HeaderGiteaSignature, gitea)
		}
		if gitlab != "" {
			hdr.Set(HeaderGitLabToken, gitlab)
		}
		ok := webhookAuthentic(secret, body, hdr)
		if !ok {
			return
		}
		if hub == "" && gitea == "" && gitlab == "" {
			t.Fatal("accepted without a header")
		}
		if hub != "" && !strings.EqualFold(hub, sign(secret, body)) {
			t.Fatalf("accepted X-Hub-Signature-256 %q", hub)
		}
		if gitea != "" && !strings.EqualFold(gitea, giteaSign(secret, body)) {
			t.Fatalf("accepted X-Gitea-Signature %q", gitea)
		}
		if gitlab != "" && gitlab != string(secret) {
			t.Fatalf("accepted X-Gitlab-Token %q", gitlab)
		}
		// The forges' own headers for this body are accepted too.
		if !webhookAuthentic(secret, body, http.Header{HeaderSignature: {sign(secret, body)}, HeaderGiteaSignature: {giteaSign(secret, body)}}) {
			t.Fatal("Gitea's two signatures of the body are refused")
		}
	})
}

// FuzzPushRef: the push payload parser never panics, and a ref it returns
// is a non-empty string no longer than maxRefLength that the payload holds.
func FuzzPushRef(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main","commits":[]}`))
	f.Add([]byte("payload=" + url.QueryEscape(`{"ref":"refs/heads/main"}`)))
	f.Add([]byte(`{"ref":null}`))
	f.Add([]byte(`  {"ref":"a\u00e9"}`))
	f.Add([]byte(`payload=%7B&payload=x`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ref, err := pushRef(body)
		if err != nil {
			return
		}
		if ref == "" || len(ref) > maxRefLength {
			t.Fatalf("ref %q", ref)
		}
	})
}
