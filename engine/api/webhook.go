package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Webhook headers of the forges that POST /v1/reconcile understands, in
// canonical form. HeaderSignature (GitHub's X-Hub-Signature-256) is the
// third way to authenticate.
const (
	// HeaderGiteaSignature carries Gitea's (and Forgejo's) webhook
	// signature: the hex HMAC-SHA256 of the body, without a prefix.
	HeaderGiteaSignature = "X-Gitea-Signature"
	// HeaderGitLabToken carries GitLab's webhook secret token itself.
	HeaderGitLabToken = "X-Gitlab-Token"
	// HeaderGitHubEvent names a GitHub (or Gitea) webhook's event: "push", "ping", ...
	HeaderGitHubEvent = "X-Github-Event"
	// HeaderGiteaEvent names a Gitea webhook's event: "push", ...
	HeaderGiteaEvent = "X-Gitea-Event"
	// HeaderGitLabEvent names a GitLab webhook's event: "Push Hook", ...
	HeaderGitLabEvent = "X-Gitlab-Event"
)

// webhookAuthentic reports whether a webhook request carries at least one
// of X-Hub-Signature-256 ("sha256=<hex HMAC-SHA256 of body>"),
// X-Gitea-Signature ("<hex HMAC-SHA256 of body>") and X-Gitlab-Token (the
// secret itself), and whether every one of them that it carries is valid
// under secret (Gitea sends both signatures). A header given twice is
// invalid. Every comparison takes constant time.
func webhookAuthentic(secret, body []byte, h http.Header) bool {
	seen := false
	var mac []byte // the body's HMAC, computed once when needed
	sum := func() []byte {
		if mac == nil {
			m := hmac.New(sha256.New, secret)
			m.Write(body)
			mac = m.Sum(nil)
		}
		return mac
	}
	if v, ok := h[HeaderSignature]; ok {
		seen = true
		if len(v) != 1 {
			return false
		}
		hexSum, ok := strings.CutPrefix(v[0], "sha256=")
		if !ok || !hexMACEqual(hexSum, sum()) {
			return false
		}
	}
	if v, ok := h[HeaderGiteaSignature]; ok {
		seen = true
		if len(v) != 1 || !hexMACEqual(v[0], sum()) {
			return false
		}
	}
	if v, ok := h[HeaderGitLabToken]; ok {
		seen = true
		// ConstantTimeCompare takes no time that depends on the content;
		// it returns at once on a length mismatch, which reveals only
		// the secret's length.
		if len(v) != 1 || subtle.ConstantTimeCompare([]byte(v[0]), secret) != 1 {
			return false
		}
	}
	return seen
}

// hexMACEqual reports whether hexSum is the hex form (either case) of mac.
func hexMACEqual(hexSum string, mac []byte) bool {
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, mac)
}

// webhookEvent is what a webhook's event headers ask of POST /v1/reconcile.
type webhookEvent int

const (
	// eventNone: no event header (a plain request, as with curl).
	eventNone webhookEvent = iota
	// eventPush: a push; its ref decides whether to fetch.
	eventPush
	// eventPing: GitHub's ping when a webhook is set up.
	eventPing
	// eventOther: any other event, or event headers that disagree.
	eventOther
)

// eventOf classifies a request by its event headers: X-GitHub-Event (sent
// by GitHub and, besides its own, by Gitea), X-Gitea-Event and
// X-Gitlab-Event.
func eventOf(h http.Header) webhookEvent {
	names := []string{HeaderGitHubEvent, HeaderGiteaEvent, HeaderGitLabEvent}
	ev := eventNone
	for _, n := range names {
		v, ok := h[n]
		if !ok {
			continue
		}
		e := eventOther
		switch {
		case len(v) != 1:
		case n == HeaderGitLabEvent && v[0] == "Push Hook":
			e = eventPush
		case n != HeaderGitLabEvent && v[0] == "push":
			e = eventPush
		case n == HeaderGitHubEvent && v[0] == "ping":
			e = eventPing
		}
		if ev != eventNone && ev != e {
			return eventOther // headers that disagree
		}
		ev = e
	}
	return ev
}

// maxRefLength bounds the ref of a push payload.
const maxRefLength = 1024

// errNoRef is a push payload without a "ref" string.
var errNoRef = errors.New(`the push payload has no "ref" string`)

// pushRef returns the "ref" of a push payload ("refs/heads/main"): a JSON
// object, or a form with the JSON object in its "payload" field (GitHub's
// application/x-www-form-urlencoded content type). Only "ref" is decoded;
// the rest of the object must be well-formed JSON but is not looked at.
func pushRef(body []byte) (string, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] != '{' {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return "", errors.New("the push payload is neither JSON nor a form: " + err.Error())
		}
		p, ok := form["payload"]
		if !ok || len(p) != 1 {
			return "", errors.New(`the push payload form needs one "payload" field`)
		}
		trimmed = []byte(p[0])
	}
	var payload struct {
		Ref *string `json:"ref"`
	}
	if err := json.Unmarshal(trimmed, &payload); err != nil {
		return "", errors.New("the push payload is not a JSON object: " + err.Error())
	}
	if payload.Ref == nil || *payload.Ref == "" {
		return "", errNoRef
	}
	if len(*payload.Ref) > maxRefLength {
		return "", errors.New("the push payload's ref is longer than 1024 bytes")
	}
	return *payload.Ref, nil
}
