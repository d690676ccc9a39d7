package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/charter-policy/charter/engine"
)

// Seeds from policies-example: questions with each kind of answer, and the
// malformed ones the API must refuse.
var seedQuestions = []struct{ user, resource, action string }{
	{"alice", "documents/d1", "documents:read"},
	{"carol", "/documents/d1/", "documents:update"},
	{"carol", "documents%2Fd1", "Documents:Read"},
	{"bob", "acme/documents", "write"},
	{"bob", "acme/reports", "read"},
	{"dave", "acme/archive", "read"},
	{"nina", "hospitals/h1/wards/cardiology", "patients:read"},
	{"fiona", "organizations/acme/invoices/42", "org:invoices:pay"},
	{"sam", "documents", "documents:*"},
	{"amara", "organizations/acme", "*"},
	{"", "documents", "documents:read"},
	{"bob", "documents//d1", "documents:read"},
	{"bob", "", ""},
	{"..", ".", "."},
	{"ü ser+1@example.com", "docs/ü ñ/100%/a+b", "docs:read"},
	{"bo\x00b", "\xff", "a:\xfe"},
}

// fuzzHandler is the API over policies-example at revision rev1.
func fuzzHandler(tb testing.TB) (http.Handler, *engine.Snapshot) {
	s := exampleSnapshot(tb, "rev1")
	return NewHandler(newBackend(s), Options{}), s
}

// checkAnswer asserts what every answer of the API holds: no 5xx, a JSON
// body, an error body on 4xx, and the revision on decisions. It returns the
// decoded decision of a 200 or 404 that holds one. On a yes/no route (yesNo)
// the status must agree with "allowed".
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, what string, yesNo bool) (allowed, decided bool) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: %d %s", what, w.Code, w.Body)
	}
	if !json.Valid(w.Body.Bytes()) {
		t.Fatalf("%s: body is not JSON: %q", what, w.Body)
	}
	if w.Code >= 400 && w.Code != http.StatusNotFound && errorCode(w.Body.Bytes()) == "" {
		t.Fatalf("%s: %d without an error body: %s", what, w.Code, w.Body)
	}
	if w.Code != http.StatusOK && w.Code != http.StatusNotFound {
		return false, false
	}
	if w.Code == http.StatusOK && w.Header().Get(HeaderRevision) != "rev1" {
		t.Fatalf("%s: 200 without the revision header: %v", what, w.Header())
	}
	var d struct {
		Allowed  *bool  `json:"allowed"`
		Revision string `json:"revision"`
	}
	if json.Unmarshal(w.Body.Bytes(), &d) != nil || d.Allowed == nil {
		if w.Code == http.StatusNotFound && errorCode(w.Body.Bytes()) == codeNotFound {
			return false, false
		}
		if w.Code == http.StatusOK {
			return false, false // a listing
		}
		t.Fatalf("%s: 404 that is neither a decision nor an error: %s", what, w.Body)
	}
	if yesNo && *d.Allowed != (w.Code == http.StatusOK) {
		t.Fatalf("%s: %d with %s", what, w.Code, w.Body)
	}
	if got := w.Header().Get(HeaderRevision); got != "rev1" || d.Revision != "rev1" {
		t.Fatalf("%s: revision header %q, body %s", what, got, w.Body)
	}
	return *d.Allowed, true
}

// FuzzCheckRoute builds GET /v1/users/{userId}/resources/{resourceUri}/permissions/{action}
// from escaped parameters and compares the answer with the engine's, so a
// parameter that does not reach the engine exactly as sent shows up.
func FuzzCheckRoute(f *testing.F) {
	for _, q := range seedQuestions {
		f.Add(q.user, q.resource, q.action)
	}
	h, snap := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, user, resource, action string) {
		path := checkPath(user, resource, action)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		allowed, decided := checkAnswer(t, w, path, true)

		validInput := checkUser(user) == nil && utf8.ValidString(resource) && utf8.ValidString(action)
		d, err := snap.Check(engine.Question{User: user, Resource: resource, Action: action})
		switch {
		case !validInput || err != nil:
			if w.Code != http.StatusBadRequest {
				t.Fatalf("%s: %d %s, want 400 (engine: %v)", path, w.Code, w.Body, err)
			}
		case !decided:
			t.Fatalf("%s: %d %s, want a decision", path, w.Code, w.Body)
		case allowed != d.Allowed:
			t.Fatalf("%s: allowed %v, engine says %v", path, allowed, d.Allowed)
		}
	})
}

// FuzzUsersPath sends any path below /v1/users/ that net/http would accept,
// escapes and all.
func FuzzUsersPath(f *testing.F) {
	for _, q := range seedQuestions {
		f.Add(strings.TrimPrefix(checkPath(q.user, q.resource, q.action), usersPrefix) + "?permission=x")
	}
	for _, s := range []string{
		"bob/resources?permission=documents:read&collectionResource=documents",
		"bob/resources?permission=%ff&collectionResource=%2F",
		"bob/resources/documents%2Fd1/permissions",
		"bob/resources/documents%2Fd1/roles",
		"bob/resources/documents%2Fd1/assignable/User",
		"bob/resources/documents%2Fd1/assignable/%ff",
		"bob/resources/%2e%2e/permissions/x",
		"/resources//permissions/",
		"bob/resources/a/b/c/d/e/f/g",
		"%zz", "a%2", "bob/resources/documents%2Fd1/permissions/documents:read/",
	} {
		f.Add(s)
	}
	h, _ := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, rest string) {
		target := usersPrefix + rest
		u, err := url.ParseRequestURI(target)
		if err != nil || strings.ContainsAny(target, " \t\r\n") {
			return // net/http answers these itself, before any handler
		}
		checkSplitPath(t, u)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL, r.RequestURI = u, target
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkAnswer(t, w, target, true)
	})
}

// checkSplitPath compares splitPath with unescaping each segment of the
// path as sent on its own. The path as sent is RawPath when it unescapes to
// Path, even where url.URL.EscapedPath would escape Path again because RawPath
// holds a character that should have been escaped (`"`): a "%2F" the client
// sent stays inside its segment.
func checkSplitPath(t *testing.T, u *url.URL) {
	t.Helper()
	path, raw := u.Path, u.RawPath
	var got [maxSegments]string
	n, e := splitPath(u, &got)
	sent := u.EscapedPath()
	if p, err := url.PathUnescape(raw); raw != "" && err == nil && p == path {
		sent = raw
	}
	var want []string
	for _, seg := range strings.Split(strings.TrimPrefix(sent, "/"), "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			if e == nil {
				t.Fatalf("splitPath(%q, %q) accepted a malformed escape", path, raw)
			}
			return
		}
		want = append(want, u)
	}
	switch {
	case e != nil:
		t.Fatalf("splitPath(%q, %q): %v", path, raw, e)
	case len(want) > maxSegments:
		if n != -1 {
			t.Fatalf("splitPath(%q, %q) = %d segments, want -1", path, raw, n)
		}
	case n != len(want) || !slices.Equal(got[:n], want):
		t.Fatalf("splitPath(%q, %q) = %q, want %q", path, raw, got[:max(n, 0)], want)
	}
}

// referenceCheckRequest decodes a batch with encoding/json, as the fast
// decoder must (but for its stricter names).
func referenceCheckRequest(body []byte) (*checkRequest, time.Time, *apiError) {
	var req checkRequest
	if e := decodeBody(bytes.NewReader(body), &req); e != nil {
		return nil, time.Time{}, e
	}
	return validateCheckRequest(&req)
}

// FuzzCheckRequest decodes POST /v1/check bodies, against encoding/json and
// through the handler.
func FuzzCheckRequest(f *testing.F) {
	for _, q := range seedQuestions {
		b, _ := json.Marshal(map[string]any{"checks": []map[string]string{{"userId": q.user, "resourceUri": q.resource, "action": q.action}}})
		f.Add(b)
	}
	for _, s := range []string{
		`{"checks":[],"time":"2026-01-05T09:00:00Z"}`,
		`{"checks":[{"userId":"bob","resourceUri":"acme/reports","action":"read"}],"time":"2026-01-04T10:00:00+01:00"}`,
		`{"checks":null}`, `{"checks":[{}]}`, `{"Checks":[],"TIME":""}`, `{"checks":[],"checks":[1]}`,
		`{"checks":[]} x`, `{"checks":[{"userId":"a","extra":1}]}`, `{"time":"yesterday","checks":[]}`,
		`[]`, `""`, `null`, ``, `{`, "\xff", `{"checks":[{"userId":"\u0000","resourceUri":"a","action":"b"}]}`,
		` { "checks" : [ null , { "userId" : null , "action" : "a\u00e9\ud83d\ude00" } ] , "time" : null } `,
		`{"\u0063hecks":[{"userId":"b\"o\\b","resourceUri":"d\/1","action":"x"}]}`,
		"{\"checks\":[{\"userId\":\"\xff\xfe\",\"resourceUri\":\"ü\",\"action\":\"a\"}]}",
		`{"checks":[{"userId":"a","userId":"b"}]}`, `{"checks":[{"userId":nullx}]}`, `{"checks":[1,]}`, `{"checks":[{"userId":"a"},]}`,
	} {
		f.Add([]byte(s))
	}
	h, _ := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, at, e := decodeCheckRequest(body)
		ref, refAt, refErr := referenceCheckRequest(body)
		switch {
		case e == nil && refErr != nil:
			t.Fatalf("%q: accepted, encoding/json says %v", body, refErr)
		case e == nil && (!slices.Equal(req.Checks, ref.Checks) || req.Time != ref.Time || !at.Equal(refAt)):
			t.Fatalf("%q: decoded %+v, encoding/json %+v", body, req, ref)
		case e != nil && (e.Status != http.StatusBadRequest || e.Code == "" || e.Message == ""):
			t.Fatalf("%q: %+v", body, e)
		case e != nil && refErr == nil && e.Code != codeUnknownField && !strings.HasPrefix(e.Message, "duplicate field"):
			t.Fatalf("%q: rejected (%v), encoding/json accepts %+v", body, e, ref)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/check", bytes.NewReader(body)))
		checkAnswer(t, w, string(body), false)
		if w.Code == http.StatusOK {
			if e != nil {
				t.Fatalf("%q: decoder says %v, handler 200", body, e)
			}
			var out struct {
				Revision string
				Results  []struct{ Allowed *bool }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Revision != "rev1" || len(out.Results) != len(req.Checks) {
				t.Fatalf("%q: %s", body, w.Body)
			}
		} else if w.Code != http.StatusBadRequest {
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		}
	})
}

// FuzzExplainRequest decodes POST /v1/explain bodies, directly and through the handler.
func FuzzExplainRequest(f *testing.F) {
	for _, q := range seedQuestions {
		for _, kind := range []string{"action", "role", "assign"} {
			b, _ := json.Marshal(map[string]string{"userId": q.user, "resourceUri": q.resource, kind: q.action})
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"userId":"carol","resourceUri":"documents/d1","role":"User"}`,
		`{"userId":"bob","resourceUri":"documents/d1","assign":"Editor"}`,
		`{"userId":"bob","resourceUri":"acme/reports","action":"read","time":"2026-01-05T09:00:00Z"}`,
		`{"userId":"bob","resourceUri":"documents","action":"a","role":"User"}`,
		`{"userId":"bob","resourceUri":"documents","environment":"production","action":"a"}`,
		`{"userId":"bob"}{}`, `{}`, `null`, `1`, ``, `{"userid":"bob","resourceUri":"d","action":"a"}`,
		`{"userId":"bob","userId":"eve","resourceUri":"d","action":"a"}`, `{"userId":"b\u00f6b","resourceUri":"d","role":null,"action":"a"}`,
	} {
		f.Add([]byte(s))
	}
	h, _ := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, at, e := decodeExplainRequest(body)
		var ref explainRequest
		refErr := decodeBody(bytes.NewReader(body), &ref)
		var refAt time.Time
		if refErr == nil {
			_, refAt, refErr = validateExplainRequest(&ref)
		}
		switch {
		case e == nil && refErr != nil:
			t.Fatalf("%q: accepted, encoding/json says %v", body, refErr)
		case e == nil && (*req != ref || !at.Equal(refAt)):
			t.Fatalf("%q: decoded %+v, encoding/json %+v", body, req, ref)
		case e != nil && (e.Status != http.StatusBadRequest || e.Code == "" || e.Message == ""):
			t.Fatalf("%q: %+v", body, e)
		case e != nil && refErr == nil && e.Code != codeUnknownField && !strings.HasPrefix(e.Message, "duplicate field"):
			t.Fatalf("%q: rejected (%v), encoding/json accepts %+v", body, e, ref)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/explain", bytes.NewReader(body)))
		checkAnswer(t, w, string(body), false)
		if w.Code == http.StatusOK {
			if e != nil {
				t.Fatalf("%q: decoder says %v, handler 200", body, e)
			}
			var out map[string]json.RawMessage
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out) != 4 || out["trace"] == nil || out["layer"] == nil {
				t.Fatalf("%q: %s", body, w.Body)
			}
		} else if w.Code != http.StatusBadRequest {
			t.Fatalf("%q: %d %s", body, w.Code, w.Body)
		}
	})
}
