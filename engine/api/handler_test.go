package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// route builds a user route path, escaping each parameter as one segment.
func userPath(user, resource string, rest ...string) string {
	p := "/v1/users/" + url.PathEscape(user) + "/resources/" + url.PathEscape(resource)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

func checkPath(user, resource, action string) string {
	return userPath(user, resource, "permissions", action)
}

type routeCase struct {
	name    string
	method  string
	path    string
	body    string
	header  map[string]string
	status  int
	want    string // exact JSON body, when set
	code    string // error code, when set
	decided bool   // carries Charter-Revision: rev1
}

func runRouteCases(t *testing.T, base string, cases []routeCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			resp := do(t, base, method, c.path, body, c.header)
			if resp.status != c.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", method, c.path, resp.status, c.status, resp.body)
			}
			if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if method == http.MethodHead {
				return
			}
			if !json.Valid(resp.body) {
				t.Fatalf("body is not JSON: %q", resp.body)
			}
			if c.want != "" && !jsonEqual(resp.body, []byte(c.want)) {
				t.Errorf("body\n %s\nwant\n %s", resp.body, c.want)
			}
			if c.code != "" {
				if got := errorCode(resp.body); got != c.code {
					t.Errorf("error code %q, want %q; body %s", got, c.code, resp.body)
				}
			}
			if got := resp.header.Get(HeaderRevision); c.decided && got != "rev1" {
				t.Errorf("%s = %q, want rev1", HeaderRevision, got)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newBackend(exampleSnapshot(t, "rev1"))
	b.status = Status{
		Author: "Ada <ada@example.com>", Committer: "Bo", Subject: "Add roles", Source: "dir:/policies",
		CommitTime:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		LoadedAt:        time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		Branch:          "main",
		FetchedRevision: "rev2",
		LastFetch:       time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC),
		LastFetchError:  "connection refused",
		Signature:       &Signature{Status: "good", Signer: "ada"},
		Counts:          map[string]int{"roles": 10},
		Error: &RevisionError{Revision: "rev2", Errors: []PositionedError{
			{Position: "documents.cue:3:5", Message: "roles.Admin.name: conflicting values"},
		}},
		WatchError: &WatchError{Message: "watch policy directory: no such file or directory", At: time.Date(2026, 1, 2, 3, 4, 8, 0, time.UTC)},
	}
	base := startServer(t, NewHandler(b, Options{Registerer: reg, Gatherer: reg}))

	const allow, deny = `{"allowed":true,"revision":"rev1"}`, `{"allowed":false,"revision":"rev1"}`
	many := `{"checks":[` + strings.Repeat(`{"userId":"bob","resourceUri":"documents","action":"documents:read"},`, MaxChecks) +
		`{"userId":"bob","resourceUri":"documents","action":"documents:read"}]}`
	thousand := `{"checks":[` + strings.TrimSuffix(strings.Repeat(`{"userId":"bob","resourceUri":"documents","action":"documents:read"},`, MaxChecks), ",") + `]}`

	runRouteCases(t, base, []routeCase{
		// The single check (Authress authorizeUser).
		{name: "check allowed", path: checkPath("alice", "documents/d1", "documents:read"), status: 200, want: allow, decided: true},
		{name: "check denied", path: checkPath("carol", "documents/d1", "documents:update"), status: 404, want: deny, decided: true},
		{name: "check slashes ignored", path: checkPath("carol", "/documents/d1/", "documents:read"), status: 200, want: allow, decided: true},
		{name: "check case-insensitive action", path: checkPath("carol", "documents/d1", "Documents:READ"), status: 200, want: allow, decided: true},
		{name: "check resource server", path: checkPath("bob", "acme/documents", "write"), status: 200, want: allow, decided: true},
		{name: "check unknown user", path: checkPath("nobody", "documents/d1", "documents:read"), status: 404, want: deny, decided: true},
		{name: "check HEAD", method: http.MethodHead, path: checkPath("alice", "documents/d1", "documents:read"), status: 200, decided: true},
		{name: "check wildcard action", path: checkPath("bob", "documents", "documents:*"), status: 400, code: codeInvalidAction},
		{name: "check star action", path: checkPath("bob", "documents", "*"), status: 400, code: codeInvalidAction},
		{name: "check empty action", path: "/v1/users/bob/resources/documents/permissions/", status: 400, code: codeInvalidAction},
		{name: "check empty user", path: "/v1/users//resources/documents/permissions/documents:read", status: 400, code: codeInvalidUser},
		{name: "check control char user", path: checkPath("bo\x01b", "documents", "documents:read"), status: 400, code: codeInvalidUser},
		{name: "check long user", path: checkPath(strings.Repeat("ü", 257), "documents", "documents:read"), status: 400, code: codeInvalidUser},
		{name: "check longest user", path: checkPath(strings.Repeat("ü", 256), "documents", "documents:read"), status: 404, want: deny, decided: true},
		{name: "check empty segment", path: checkPath("bob", "documents//d1", "documents:read"), status: 400, code: codeInvalidResource},
		{name: "check wildcard resource", path: checkPath("bob", "documents/*", "documents:read"), status: 400, code: codeInvalidResource},
		{name: "check empty resource", path: "/v1/users/bob/resources//permissions/documents:read", status: 400, code: codeInvalidResource},
		{name: "check non-UTF-8 action", path: "/v1/users/bob/resources/documents/permissions/%ff", status: 400, code: codeInvalidPath},
		{name: "check non-UTF-8 resource", path: "/v1/users/bob/resources/documents%2F%FF%FE/permissions/documents:read", status: 400, code: codeInvalidPath},
		{name: "check non-UTF-8 user", path: "/v1/users/%c3%28/resources/documents/permissions/documents:read", status: 400, code: codeInvalidPath},
		{name: "check too many segments", path: "/v1/users/bob/resources/documents/d1/permissions/documents:read", status: 404, code: codeNotFound},
		{name: "check POST", method: http.MethodPost, path: checkPath("bob", "documents", "documents:read"), status: 405, code: codeMethodNotAllowed},

		// Listings and assignable.
		{name: "permissions", path: userPath("bob", "documents/d1", "permissions"), status: 200, decided: true,
			want: `{"permissions":[` +
				`{"action":"documents:create","allow":true,"grant":false,"delegate":false},` +
				`{"action":"documents:read","allow":true,"grant":true,"delegate":false},` +
				`{"action":"documents:update","allow":true,"grant":false,"delegate":false}],"revision":"rev1"}`},
		{name: "permissions none", path: userPath("nobody", "documents/d1", "permissions"), status: 200, decided: true,
			want: `{"permissions":[],"revision":"rev1"}`},
		{name: "permissions bad resource", path: userPath("bob", "a//b", "permissions"), status: 400, code: codeInvalidResource},
		{name: "roles", path: userPath("carol", "documents/d1", "roles"), status: 200, decided: true, want: `{"roles":["User"],"revision":"rev1"}`},
		{name: "roles none", path: userPath("carol", "documents/d9", "roles"), status: 200, decided: true, want: `{"roles":[],"revision":"rev1"}`},
		{name: "assignable yes", path: userPath("bob", "documents/d1", "assignable", "User"), status: 200, want: allow, decided: true},
		{name: "assignable no", path: userPath("bob", "documents/d1", "assignable", "Editor"), status: 404, want: deny, decided: true},
		{name: "assignable unknown role", path: userPath("bob", "documents/d1", "assignable", "Nope"), status: 400, code: codeUnknownRole},
		{name: "resources", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents", status: 200, decided: true,
			want: `{"resources":[{"resourceUri":"documents/d1"},{"resourceUri":"documents/d2"}],"accessToAllSubResources":false,"pagination":null,"links":{"self":{"href":"/v1/users/carol/resources?permission=documents:read&collectionResource=documents"}},"revision":"rev1"}`},
		{name: "resources all", path: "/v1/users/bob/resources?permission=documents:read&collectionResource=documents", status: 200, decided: true,
			want: `{"resources":[{"resourceUri":"documents"}],"accessToAllSubResources":true,"pagination":null,"links":{"self":{"href":"/v1/users/bob/resources?permission=documents:read&collectionResource=documents"}},"revision":"rev1"}`},
		{name: "resources pattern", path: "/v1/users/fiona/resources?permission=org:invoices:read&collectionResource=organizations", status: 200, decided: true,
			want: `{"resources":[{"resourceUri":"organizations/*/invoices"}],"accessToAllSubResources":false,"pagination":null,"links":{"self":{"href":"/v1/users/fiona/resources?permission=org:invoices:read&collectionResource=organizations"}},"revision":"rev1"}`},
		{name: "resources none", path: "/v1/users/nobody/resources?permission=documents:read&collectionResource=documents", status: 200, decided: true,
			want: `{"resources":[],"accessToAllSubResources":false,"pagination":null,"links":{"self":{"href":"/v1/users/nobody/resources?permission=documents:read&collectionResource=documents"}},"revision":"rev1"}`},
		{name: "resources no permission", path: "/v1/users/bob/resources?collectionResource=documents", status: 400, code: codeInvalidArgument},
		{name: "resources no collection", path: "/v1/users/bob/resources?permission=documents:read", status: 400, code: codeInvalidArgument},
		{name: "resources wildcard", path: "/v1/users/bob/resources?permission=documents:*&collectionResource=documents", status: 400, code: codeInvalidAction},
		{name: "resources bad query", path: "/v1/users/bob/resources?permission=%zz", status: 400, code: codeInvalidArgument},
		{name: "resources Authress names", path: "/v1/users/carol/resources?permissions=documents:read&resourceUri=documents", status: 200, decided: true,
			want: `{"resources":[{"resourceUri":"documents/d1"},{"resourceUri":"documents/d2"}],"accessToAllSubResources":false,"pagination":null,` +
				`"links":{"self":{"href":"/v1/users/carol/resources?permissions=documents:read&resourceUri=documents"}},"revision":"rev1"}`},
		{name: "resources limit 1", path: "/v1/users/carol/resources?permissions=documents:read&resourceUri=documents&limit=1", status: 200, decided: true,
			want: `{"resources":[{"resourceUri":"documents/d1"}],"accessToAllSubResources":false,"pagination":{"next":{"cursor":"ZG9jdW1lbnRzL2Qx"}},` +
				`"links":{"self":{"href":"/v1/users/carol/resources?permissions=documents:read&resourceUri=documents&limit=1"}},"revision":"rev1"}`},
		{name: "resources cursor", path: "/v1/users/carol/resources?permissions=documents:read&resourceUri=documents&limit=1&cursor=ZG9jdW1lbnRzL2Qx", status: 200, decided: true,
			want: `{"resources":[{"resourceUri":"documents/d2"}],"accessToAllSubResources":false,"pagination":null,` +
				`"links":{"self":{"href":"/v1/users/carol/resources?permissions=documents:read&resourceUri=documents&limit=1&cursor=ZG9jdW1lbnRzL2Qx"}},"revision":"rev1"}`},
		{name: "resources limit 1000", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&limit=1000", status: 200, decided: true},
		{name: "resources limit 1001", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&limit=1001", status: 400, code: codeInvalidArgument},
		{name: "resources limit 0", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&limit=0", status: 400, code: codeInvalidArgument},
		{name: "resources limit -1", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&limit=-1", status: 400, code: codeInvalidArgument},
		{name: "resources limit not a number", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&limit=ten", status: 400, code: codeInvalidArgument},
		{name: "resources limit empty", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&limit=", status: 200, decided: true},
		{name: "resources cursor not base64", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&cursor=%25%25", status: 400, code: codeInvalidCursor},
		{name: "resources cursor of another collection", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&cursor=cmVwb3J0cw", status: 400, code: codeInvalidCursor},
		{name: "resources both names", path: "/v1/users/carol/resources?permission=documents:read&permissions=documents:read&collectionResource=documents", status: 400, code: codeInvalidArgument},
		{name: "resources repeated", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&collectionResource=reports", status: 400, code: codeInvalidArgument},
		{name: "resources repeated limit", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=documents&limit=1&limit=2", status: 400, code: codeInvalidArgument},
		{name: "resources bad user", path: "/v1/users/bo%01b/resources?permission=documents:read&collectionResource=documents", status: 400, code: codeInvalidUser},

		// Batch check.
		{name: "batch", method: "POST", path: "/v1/check", status: 200, decided: true,
			body: `{"checks":[{"userId":"alice","resourceUri":"documents/d1","action":"documents:read"},` +
				`{"userId":"carol","resourceUri":"documents/d1","action":"documents:update"},` +
				`{"userId":"nina","resourceUri":"hospitals/h1","action":"patients:read"}]}`,
			want: `{"revision":"rev1","results":[{"allowed":true},{"allowed":false},{"allowed":true}]}`},
		{name: "batch empty", method: "POST", path: "/v1/check", body: `{"checks":[]}`, status: 200, decided: true,
			want: `{"revision":"rev1","results":[]}`},
		// Monday 2026-01-05 10:00 in Berlin: staff in business hours may read reports; on Sunday not.
		{name: "batch time", method: "POST", path: "/v1/check", status: 200, decided: true,
			body: `{"time":"2026-01-05T09:00:00Z","checks":[{"userId":"bob","resourceUri":"acme/reports","action":"read"}]}`,
			want: `{"revision":"rev1","results":[{"allowed":true}]}`},
		{name: "batch time sunday", method: "POST", path: "/v1/check", status: 200, decided: true,
			body: `{"time":"2026-01-04T09:00:00Z","checks":[{"userId":"bob","resourceUri":"acme/reports","action":"read"}]}`,
			want: `{"revision":"rev1","results":[{"allowed":false}]}`},
		{name: "batch 1000", method: "POST", path: "/v1/check", body: thousand, status: 200, decided: true},
		{name: "batch 1001", method: "POST", path: "/v1/check", body: many, status: 400, code: codeTooManyChecks},
		{name: "batch bad time", method: "POST", path: "/v1/check", body: `{"time":"yesterday","checks":[]}`, status: 400, code: codeInvalidTime},
		{name: "batch invalid JSON", method: "POST", path: "/v1/check", body: `{"checks":[`, status: 400, code: codeInvalidJSON},
		{name: "batch syntax", method: "POST", path: "/v1/check", body: `{"checks":[}`, status: 400, code: codeInvalidJSON},
		{name: "batch empty body", method: "POST", path: "/v1/check", status: 400, code: codeInvalidJSON},
		{name: "batch wrong type", method: "POST", path: "/v1/check", body: `{"checks":{}}`, status: 400, code: codeInvalidJSON},
		{name: "batch not object", method: "POST", path: "/v1/check", body: `[1]`, status: 400, code: codeInvalidJSON},
		{name: "batch unknown field", method: "POST", path: "/v1/check", body: `{"checks":[],"environment":"prod"}`, status: 400, code: codeUnknownField},
		{name: "batch unknown check field", method: "POST", path: "/v1/check",
			body: `{"checks":[{"userId":"bob","resourceUri":"documents","action":"documents:read","role":"x"}]}`, status: 400, code: codeUnknownField},
		{name: "batch trailing data", method: "POST", path: "/v1/check", body: `{"checks":[]} {}`, status: 400, code: codeInvalidJSON},
		{name: "batch trailing space", method: "POST", path: "/v1/check", body: "{\"checks\":[]} \n\t", status: 200, decided: true},
		{name: "batch no checks", method: "POST", path: "/v1/check", body: `{}`, status: 400, code: codeInvalidArgument},
		{name: "batch null", method: "POST", path: "/v1/check", body: `null`, status: 400, code: codeInvalidArgument},
		{name: "batch empty user", method: "POST", path: "/v1/check",
			body: `{"checks":[{"userId":"","resourceUri":"documents","action":"documents:read"}]}`, status: 400, code: codeInvalidUser},
		{name: "batch wildcard action", method: "POST", path: "/v1/check",
			body:   `{"checks":[{"userId":"bob","resourceUri":"documents","action":"documents:read"},{"userId":"bob","resourceUri":"documents","action":"*"}]}`,
			status: 400, code: codeInvalidAction},
		{name: "batch malformed URI", method: "POST", path: "/v1/check",
			body: `{"checks":[{"userId":"bob","resourceUri":"documents//x","action":"documents:read"}]}`, status: 400, code: codeInvalidResource},
		{name: "batch GET", path: "/v1/check", status: 405, code: codeMethodNotAllowed},

		// Explain errors (its answers are checked in TestExplain).
		{name: "explain none", method: "POST", path: "/v1/explain", body: `{"userId":"bob","resourceUri":"documents"}`, status: 400, code: codeInvalidQuestion},
		{name: "explain two", method: "POST", path: "/v1/explain",
			body: `{"userId":"bob","resourceUri":"documents","action":"documents:read","role":"User"}`, status: 400, code: codeInvalidQuestion},
		{name: "explain unknown role", method: "POST", path: "/v1/explain", body: `{"userId":"bob","resourceUri":"documents","role":"Nope"}`, status: 400, code: codeUnknownRole},
		{name: "explain unknown assign", method: "POST", path: "/v1/explain", body: `{"userId":"bob","resourceUri":"documents","assign":"Nope"}`, status: 400, code: codeUnknownRole},
		{name: "explain empty user", method: "POST", path: "/v1/explain", body: `{"resourceUri":"documents","action":"x"}`, status: 400, code: codeInvalidUser},
		{name: "explain bad time", method: "POST", path: "/v1/explain",
			body: `{"userId":"bob","resourceUri":"documents","action":"x","time":"2026-13-01T00:00:00Z"}`, status: 400, code: codeInvalidTime},
		{name: "explain unknown field", method: "POST", path: "/v1/explain", body: `{"userId":"bob","resource":"documents","action":"x"}`, status: 400, code: codeUnknownField},
		{name: "explain wildcard", method: "POST", path: "/v1/explain", body: `{"userId":"bob","resourceUri":"documents","action":"documents:*"}`, status: 400, code: codeInvalidAction},
		{name: "explain PUT", method: "PUT", path: "/v1/explain", status: 405, code: codeMethodNotAllowed},

		// Status, health, metrics, unknown routes.
		{name: "status", path: "/v1/status", status: 200, want: `{"revision":"rev1","commitTime":"2026-01-02T03:04:05Z",` +
			`"author":"Ada <ada@example.com>","committer":"Bo","subject":"Add roles","loadedAt":"2026-01-02T03:04:06Z","source":"dir:/policies",` +
			`"branch":"main","fetchedRevision":"rev2","lastFetch":"2026-01-02T03:04:07Z","lastFetchError":"connection refused",` +
			`"signature":{"status":"good","signer":"ada"},"counts":{"roles":10},` +
			`"error":{"revision":"rev2","errors":[{"position":"documents.cue:3:5","message":"roles.Admin.name: conflicting values"}]},` +
			`"watchError":{"message":"watch policy directory: no such file or directory","at":"2026-01-02T03:04:08Z"}}`},
		{name: "status POST", method: "POST", path: "/v1/status", status: 405, code: codeMethodNotAllowed},
		{name: "healthz", path: "/healthz", status: 200, want: `{"status":"ok"}`},
		{name: "healthz DELETE", method: "DELETE", path: "/healthz", status: 405, code: codeMethodNotAllowed},
		{name: "readyz", path: "/readyz", status: 200, want: `{"status":"ready","revision":"rev1"}`, decided: true},
		{name: "unknown route", path: "/v2/anything", status: 404, code: codeNotFound},
		{name: "audit not here", path: "/v1/audit", status: 404, code: codeNotFound},
		{name: "users root", path: "/v1/users/", status: 404, code: codeNotFound},
		{name: "users unknown", path: "/v1/users/bob/things", status: 404, code: codeNotFound},
		{name: "unknown user route", path: userPath("bob", "documents", "owners"), status: 404, code: codeNotFound},
	})

	t.Run("405 Allow header", func(t *testing.T) {
		resp := do(t, base, http.MethodGet, "/v1/check", nil, nil)
		if got := resp.header.Get("Allow"); got != "POST" {
			t.Errorf("Allow = %q, want POST", got)
		}
		resp = do(t, base, http.MethodDelete, checkPath("bob", "documents", "documents:read"), nil, nil)
		if got := resp.header.Get("Allow"); got != "GET, HEAD" {
			t.Errorf("Allow = %q, want GET, HEAD", got)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp := do(t, base, http.MethodGet, "/metrics", nil, nil)
		if resp.status != 200 || !bytes.Contains(resp.body, []byte(`charter_check_requests_total{decision="allow",endpoint="check"}`)) {
			t.Fatalf("GET /metrics: %d\n%s", resp.status, resp.body)
		}
	})
}

func TestExplain(t *testing.T) {
	base := startServer(t, NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{}))
	for _, c := range []struct {
		body    string
		allowed bool
		layer   string
	}{
		{`{"userId":"alice","resourceUri":"documents/d1","action":"documents:read"}`, true, engine.LayerRecords},
		{`{"userId":"carol","resourceUri":"documents/d1","action":"documents:update"}`, false, engine.LayerRecords},
		{`{"userId":"carol","resourceUri":"documents/d1","role":"User"}`, true, engine.LayerRecords},
		{`{"userId":"bob","resourceUri":"documents/d1","assign":"Editor"}`, false, engine.LayerRecords},
		{`{"userId":"bob","resourceUri":"acme/reports","action":"read","time":"2026-01-05T09:00:00Z"}`, true, engine.LayerResourceServer},
		{`{"userId":"bob","resourceUri":"acme/reports","action":"read","time":"2026-01-04T10:00:00+01:00"}`, false, engine.LayerResourceServer},
	} {
		resp := do(t, base, http.MethodPost, "/v1/explain", []byte(c.body), nil)
		if resp.status != 200 || resp.header.Get(HeaderRevision) != "rev1" {
			t.Fatalf("%s: %d %v %s", c.body, resp.status, resp.header, resp.body)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(resp.body, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || string(got["allowed"]) != fmt.Sprint(c.allowed) ||
			string(got["revision"]) != `"rev1"` || string(got["layer"]) != `"`+c.layer+`"` {
			t.Errorf("%s:\n%s", c.body, resp.body)
		}
		var trace []engine.Step
		if err := json.Unmarshal(got["trace"], &trace); err != nil || len(trace) == 0 {
			t.Fatalf("%s: trace %s: %v", c.body, got["trace"], err)
		}
		sourced := 0
		for _, s := range trace {
			if s.Kind == "" || s.ID == "" {
				t.Errorf("%s: step without kind or id: %+v", c.body, s)
			}
			if s.Source != "" {
				sourced++
				if !strings.Contains(s.Source, ".cue:") && !strings.Contains(s.Source, ".json:") && !strings.Contains(s.Source, ".yaml:") {
					t.Errorf("%s: step source %q is not file:line", c.body, s.Source)
				}
			}
		}
		if sourced == 0 {
			t.Errorf("%s: no step names its source:\n%s", c.body, got["trace"])
		}
	}
}

// TestPermissionsAsDeclared: GET .../permissions shows each entry's action
// as the role declares it (SPEC 5): "records:*" stays "records:*", and of two
// spellings of one action the smaller string stands for both.
func TestPermissionsAsDeclared(t *testing.T) {
	dir := t.TempDir()
	const policy = `package policies

roles: {
	Clerk: {name: "Clerk", permissions: [{action: "records:*"}, {action: "Reports:Read", grant: true}]}
	Auditor: {name: "Auditor", permissions: [{action: "reports:read", delegate: true}]}
}
records: desk: {
	name: "Desk"
	users: ["ann"]
	statements: [{roles: ["Clerk", "Auditor"], resources: ["files"]}]
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.cue"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startServer(t, NewHandler(newBackend(snapshotOf(t, os.DirFS(dir), "decl")), Options{}))
	resp := do(t, base, http.MethodGet, userPath("ann", "files/f1", "permissions"), nil, nil)
	want := `{"permissions":[` +
		`{"action":"records:*","allow":true,"grant":false,"delegate":false},` +
		`{"action":"Reports:Read","allow":true,"grant":true,"delegate":true}],"revision":"decl"}`
	if resp.status != 200 || !jsonEqual(resp.body, []byte(want)) {
		t.Errorf("GET permissions: %d %s\nwant %s", resp.status, resp.body, want)
	}
	resp = do(t, base, http.MethodPost, "/v1/explain", []byte(`{"userId":"ann","resourceUri":"files/f1","action":"records:read"}`), nil)
	if resp.status != 200 || !bytes.Contains(resp.body, []byte(`"detail":"entry records:* matches records:read with allow: true"`)) {
		t.Errorf("POST /v1/explain does not show the declared action: %d %s", resp.status, resp.body)
	}
}

// TestResourceURIRoundTrip: a resource URI and a user ID arrive as one
// escaped path segment each and reach the engine exactly as sent.
func TestResourceURIRoundTrip(t *testing.T) {
	dir := t.TempDir()
	const policy = `package policies

roles: Reader: {name: "Reader", permissions: [{action: "docs:read"}]}
records: {
	odd: {
		name: "Odd names"
		users: ["ünïcode user+1@example.com", "50%/off", "a b"]
		statements: [{roles: ["Reader"], resources: ["docs/ü ñ/100%/a+b/%41/x?y#z"]}]
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.cue"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startServer(t, NewHandler(newBackend(snapshotOf(t, os.DirFS(dir), "rt")), Options{}))
	const uri = "docs/ü ñ/100%/a+b/%41/x?y#z"
	for _, c := range []struct {
		path   string
		status int
	}{
		{checkPath("ünïcode user+1@example.com", uri, "docs:read"), 200},
		{checkPath("50%/off", uri, "docs:read"), 200},
		{checkPath("a b", uri, "docs:read"), 200},
		{checkPath("a b", "/"+uri+"/", "docs:read"), 200},
		{checkPath("a b", uri+"/below", "docs:read"), 200},
		// As written by hand: %2F inside the segment, %25 for a literal %.
		{"/v1/users/a%20b/resources/docs%2F%C3%BC%20%C3%B1%2F100%25%2Fa+b%2F%2541%2Fx%3Fy%23z/permissions/docs:read", 200},
		{"/v1/users/a%20b/resources/%2Fdocs%2F%C3%BC%20%C3%B1%2F100%25%2Fa+b%2F%2541%2Fx%3Fy%23z%2F/permissions/docs:read", 200},
		// Not the same URI: %41 decoded once more is "A"; "+" is not a space.
		{checkPath("a b", "docs/ü ñ/100%/a+b/A/x?y#z", "docs:read"), 404},
		{checkPath("a b", "docs/ü ñ/100%/a b/%41/x?y#z", "docs:read"), 404},
		{checkPath("a+b", uri, "docs:read"), 404},
		{checkPath("a b", "docs/ü ñ/100%", "docs:read"), 404},
		{checkPath("50%25/off", uri, "docs:read"), 404},
		{userPath("a b", uri, "roles"), 200},
	} {
		resp := do(t, base, http.MethodGet, c.path, nil, nil)
		if resp.status != c.status {
			t.Errorf("GET %s: %d, want %d: %s", c.path, resp.status, c.status, resp.body)
		}
		if c.status == 200 && strings.HasSuffix(c.path, "/roles") && !jsonEqual(resp.body, []byte(`{"roles":["Reader"],"revision":"rt"}`)) {
			t.Errorf("GET %s: %s", c.path, resp.body)
		}
	}
	// The listing names the URI exactly, and takes the collection escaped in the query.
	resp := do(t, base, http.MethodGet, "/v1/users/a%20b/resources?permission=docs:read&collectionResource="+url.QueryEscape("docs/ü ñ"), nil, nil)
	want := `{"resources":[{"resourceUri":"docs/ü ñ/100%/a+b/%41/x?y#z"}],"accessToAllSubResources":false,"pagination":null,` +
		`"links":{"self":{"href":"/v1/users/a%20b/resources?permission=docs:read&collectionResource=docs%2F%C3%BC+%C3%B1"}},"revision":"rt"}`
	if resp.status != 200 || !jsonEqual(resp.body, []byte(want)) {
		t.Errorf("listing: %d %s", resp.status, resp.body)
	}
}

func TestNoSnapshotYet(t *testing.T) {
	b := newBackend(nil)
	base := startServer(t, NewHandler(b, Options{}))
	runRouteCases(t, base, []routeCase{
		{name: "check", path: checkPath("alice", "documents/d1", "documents:read"), status: 503, code: codeNoSnapshot},
		{name: "permissions", path: userPath("alice", "documents/d1", "permissions"), status: 503, code: codeNoSnapshot},
		{name: "roles", path: userPath("alice", "documents/d1", "roles"), status: 503, code: codeNoSnapshot},
		{name: "assignable", path: userPath("alice", "documents/d1", "assignable", "User"), status: 503, code: codeNoSnapshot},
		{name: "resources", path: "/v1/users/alice/resources?permission=documents:read&collectionResource=documents", status: 503, code: codeNoSnapshot},
		{name: "resources bad limit", path: "/v1/users/alice/resources?permission=documents:read&collectionResource=documents&limit=1001", status: 400, code: codeInvalidArgument},
		{name: "batch", method: "POST", path: "/v1/check", body: `{"checks":[]}`, status: 503, code: codeNoSnapshot},
		{name: "explain", method: "POST", path: "/v1/explain", body: `{"userId":"a","resourceUri":"b","action":"c"}`, status: 503, code: codeNoSnapshot},
		{name: "readyz", path: "/readyz", status: 503, code: codeNoSnapshot},
		{name: "healthz", path: "/healthz", status: 200},
		{name: "status", path: "/v1/status", status: 200, want: `{"revision":"","commitTime":null,"author":"","committer":"","subject":"","loadedAt":null,"source":"",` +
			`"branch":null,"fetchedRevision":null,"lastFetch":null,"lastFetchError":null,"signature":null,"counts":{},"error":null,"watchError":null}`},
		// Bad input is still 400, before the snapshot matters.
		{name: "bad input", path: checkPath("", "documents/d1", "documents:read"), status: 400, code: codeInvalidUser},
	})
	b.snap.Store(exampleSnapshot(t, "rev1"))
	runRouteCases(t, base, []routeCase{
		{name: "ready", path: "/readyz", status: 200, decided: true},
		{name: "check after load", path: checkPath("alice", "documents/d1", "documents:read"), status: 200, decided: true},
	})
}

// chunked hides a reader's length, so that the client sends it chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestBodyTooLarge(t *testing.T) {
	base := startServer(t, NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{WebhookSecret: []byte("s")}))
	// Valid JSON up to the limit, then more: only the size is wrong.
	big := []byte(`{"checks":[],"time":"` + strings.Repeat(" ", MaxBodyBytes) + `"}`)
	for _, path := range []string{"/v1/check", "/v1/explain", "/v1/reconcile"} {
		for _, withLength := range []bool{true, false} {
			var body io.Reader = bytes.NewReader(big)
			if !withLength {
				body = chunked{bytes.NewReader(big)}
			}
			req, _ := http.NewRequest(http.MethodPost, base+path, body)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s (length %v): %v", path, withLength, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(b) != codeBodyTooLarge {
				t.Errorf("%s (length %v): %d %s", path, withLength, resp.StatusCode, b)
			}
		}
	}
	// Exactly at the limit is fine.
	exact := []byte(`{"checks":[],"time":""}`)
	exact = append(exact, bytes.Repeat([]byte(" "), MaxBodyBytes-len(exact))...)
	if resp := do(t, base, http.MethodPost, "/v1/check", exact, nil); resp.status != 200 {
		t.Errorf("body of exactly 1 MiB: %d %s", resp.status, resp.body)
	}
}

func TestMinRevision(t *testing.T) {
	rev1, rev2 := exampleSnapshot(t, "rev1"), exampleSnapshot(t, "rev2")
	path := checkPath("alice", "documents/d1", "documents:read")
	const wait = 150 * time.Millisecond

	t.Run("served", func(t *testing.T) {
		b := newBackend(rev1)
		base := startServer(t, NewHandler(b, Options{MinRevisionWait: wait}))
		resp := do(t, base, http.MethodGet, path, nil, map[string]string{HeaderMinRevision: "rev1"})
		if resp.status != 200 || b.reconciles.Load() != 0 {
			t.Errorf("%d, %d reconciles", resp.status, b.reconciles.Load())
		}
	})
	t.Run("arrives", func(t *testing.T) {
		b := newBackend(rev1)
		b.next.Store(rev2)
		base := startServer(t, NewHandler(b, Options{MinRevisionWait: 5 * time.Second}))
		resp := do(t, base, http.MethodGet, path, nil, map[string]string{HeaderMinRevision: "rev2"})
		if resp.status != 200 || resp.header.Get(HeaderRevision) != "rev2" || !jsonEqual(resp.body, []byte(`{"allowed":true,"revision":"rev2"}`)) {
			t.Errorf("%d %v %s", resp.status, resp.header, resp.body)
		}
		if b.reconciles.Load() != 1 {
			t.Errorf("%d reconciles, want 1", b.reconciles.Load())
		}
	})
	t.Run("behind", func(t *testing.T) {
		b := newBackend(rev1)
		base := startServer(t, NewHandler(b, Options{MinRevisionWait: wait}))
		began := time.Now()
		for _, c := range []struct {
			method, path, body string
		}{
			{http.MethodGet, path, ""},
			{http.MethodGet, userPath("bob", "documents", "roles"), ""},
			{http.MethodPost, "/v1/check", `{"checks":[]}`},
			{http.MethodPost, "/v1/explain", `{"userId":"a","resourceUri":"b","action":"c"}`},
		} {
			start := time.Now()
			resp := do(t, base, c.method, c.path, []byte(c.body), map[string]string{HeaderMinRevision: "rev9"})
			if elapsed := time.Since(start); elapsed < wait {
				t.Errorf("%s answered after %v, before the wait of %v", c.path, elapsed, wait)
			}
			if resp.status != http.StatusConflict || errorCode(resp.body) != codeRevisionBehind || resp.header.Get(HeaderRevision) != "rev1" {
				t.Errorf("%s: %d %v %s", c.path, resp.status, resp.header, resp.body)
			}
		}
		// These requests ask for a fetch, at most one a second between them.
		if got, most := b.reconciles.Load(), int32(time.Since(began)/minRevisionFetchInterval)+1; got < 1 || got > most {
			t.Errorf("%d reconciles, want 1 to %d", got, most)
		}
	})
	t.Run("no snapshot", func(t *testing.T) {
		base := startServer(t, NewHandler(newBackend(nil), Options{MinRevisionWait: wait}))
		resp := do(t, base, http.MethodGet, path, nil, map[string]string{HeaderMinRevision: "rev1"})
		if resp.status != http.StatusServiceUnavailable || errorCode(resp.body) != codeNoSnapshot {
			t.Errorf("%d %s", resp.status, resp.body)
		}
	})
	t.Run("descendant", func(t *testing.T) {
		b := newBackend(rev2)
		base := startServer(t, NewHandler(b, Options{MinRevisionWait: wait,
			RevisionIncludes: func(_ context.Context, served, min string) (bool, error) {
				return served == "rev2" && min == "rev1", nil
			}}))
		resp := do(t, base, http.MethodGet, path, nil, map[string]string{HeaderMinRevision: "rev1"})
		if resp.status != 200 || resp.header.Get(HeaderRevision) != "rev2" || b.reconciles.Load() != 0 {
			t.Errorf("%d %v, %d reconciles", resp.status, resp.header, b.reconciles.Load())
		}
	})
}

func TestEnvironment(t *testing.T) {
	s := exampleSnapshot(t, "rev1")
	prod := startServer(t, NewHandler(newBackend(s), Options{Environment: "production"}))
	none := startServer(t, NewHandler(newBackend(s), Options{}))
	for _, c := range []struct {
		base, user string
		status     int
	}{
		{prod, "sam", 200}, {prod, "tina", 404}, {prod, "alice", 200},
		// Without an environment no record is excluded (the engine's reading of SPEC 2.7).
		{none, "sam", 200}, {none, "tina", 200},
	} {
		resp := do(t, c.base, http.MethodGet, checkPath(c.user, "documents/d1", "documents:update"), nil, nil)
		if resp.status != c.status {
			t.Errorf("%s (%s): %d, want %d", c.user, c.base, resp.status, c.status)
		}
	}
	resp := do(t, prod, http.MethodPost, "/v1/check", []byte(`{"checks":[{"userId":"sam","resourceUri":"documents","action":"documents:read"}]}`), nil)
	if !jsonEqual(resp.body, []byte(`{"revision":"rev1","results":[{"allowed":true}]}`)) {
		t.Errorf("batch in production: %s", resp.body)
	}
	resp = do(t, prod, http.MethodGet, userPath("sam", "documents", "roles"), nil, nil)
	if !jsonEqual(resp.body, []byte(`{"roles":["Admin"],"revision":"rev1"}`)) {
		t.Errorf("roles in production: %s", resp.body)
	}
}

func sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestReconcile(t *testing.T) {
	s := exampleSnapshot(t, "rev1")
	t.Run("loopback", func(t *testing.T) {
		b := newBackend(s)
		h := NewHandler(b, Options{})
		base := startServer(t, h)
		resp := do(t, base, http.MethodPost, "/v1/reconcile", nil, nil)
		if resp.status != http.StatusAccepted || !jsonEqual(resp.body, []byte(`{"status":"accepted"}`)) || b.reconciles.Load() != 1 {
			t.Fatalf("%d %s, %d reconciles", resp.status, resp.body, b.reconciles.Load())
		}
		if resp := do(t, base, http.MethodGet, "/v1/reconcile", nil, nil); resp.status != 405 || errorCode(resp.body) != codeMethodNotAllowed {
			t.Errorf("GET: %d %s", resp.status, resp.body)
		}
		// The listener only takes loopback clients, so remote ones go through ServeHTTP.
		for addr, want := range map[string]int{
			"192.0.2.7:4000": 403, "[2001:db8::1]:80": 403, "10.0.0.1:1": 403, "garbage": 403,
			"[::1]:5000": 202, "127.0.0.2:80": 202, "[::ffff:127.0.0.1]:9": 202,
		} {
			req := httptest.NewRequest(http.MethodPost, "/v1/reconcile", nil)
			req.RemoteAddr = addr
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want || (want == 403 && errorCode(w.Body.Bytes()) != codeForbidden) {
				t.Errorf("from %s: %d %s, want %d", addr, w.Code, w.Body, want)
			}
		}
	})
	t.Run("webhook", func(t *testing.T) {
		secret := []byte("It's a Secret to Everybody")
		b := newBackend(s)
		h := NewHandler(b, Options{WebhookSecret: secret})
		base := startServer(t, h)
		body := []byte(`{"ref":"refs/heads/main","after":"abc"}`)
		// GitHub's documented example: secret and payload give this signature.
		if got := sign(secret, []byte("Hello, World!")); got != "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" {
			t.Fatalf("HMAC helper: %s", got)
		}
		good := sign(secret, body)
		for _, c := range []struct {
			name, sig string
			status    int
		}{
			{"valid", good, 202},
			{"missing", "", 401},
			{"other body", sign(secret, []byte("{}")), 401},
			{"other secret", sign([]byte("nope"), body), 401},
			{"sha1 prefix", "sha1=" + strings.TrimPrefix(good, "sha256="), 401},
			{"not hex", "sha256=zz", 401},
			{"short", good[:len(good)-2], 401},
			{"upper hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), 202},
		} {
			hdr := map[string]string{}
			if c.sig != "" {
				hdr[HeaderSignature] = c.sig
			}
			before := b.reconciles.Load()
			resp := do(t, base, http.MethodPost, "/v1/reconcile", body, hdr)
			if resp.status != c.status {
				t.Errorf("%s: %d %s, want %d", c.name, resp.status, resp.body, c.status)
			}
			if c.status == 401 {
				if errorCode(resp.body) != codeInvalidSignature {
					t.Errorf("%s: %s", c.name, resp.body)
				}
				if got := resp.header.Get("WWW-Authenticate"); got != webhookChallenge {
					t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, webhookChallenge)
				}
			}
			if reconciled := b.reconciles.Load() != before; reconciled != (c.status == 202) {
				t.Errorf("%s: reconciled %v", c.name, reconciled)
			}
		}
		// With a secret, a remote client with a valid signature is accepted.
		req := httptest.NewRequest(http.MethodPost, "/v1/reconcile", bytes.NewReader(body))
		req.RemoteAddr = "192.0.2.7:4000"
		req.Header.Set(HeaderSignature, good)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 202 {
			t.Errorf("remote with signature: %d %s", w.Code, w.Body)
		}
		// And one without is refused as unauthenticated, not as a stranger.
		req = httptest.NewRequest(http.MethodPost, "/v1/reconcile", bytes.NewReader(body))
		req.RemoteAddr = "192.0.2.7:4000"
		w = httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 401 || errorCode(w.Body.Bytes()) != codeInvalidSignature {
			t.Errorf("remote without signature: %d %s", w.Code, w.Body)
		}
	})
}

// TestBadInputBurst: a burst of bad requests gets 4xx JSON answers and the
// server answers a good request afterwards.
func TestBadInputBurst(t *testing.T) {
	base := startServer(t, NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{}))
	bad := []struct{ method, path, body string }{
		{"GET", checkPath("", "d", "a"), ""},
		{"GET", checkPath("bob", "documents", "documents:*"), ""},
		{"GET", "/v1/users/bob/resources/%ff/permissions/%fe", ""},
		{"GET", checkPath("bob", "a//b", "x"), ""},
		{"POST", "/v1/check", `{"checks":[{"userId":1}]}`},
		{"POST", "/v1/check", `{"checks":`},
		{"POST", "/v1/check", `{"nope":true}`},
		{"POST", "/v1/explain", `{"userId":"bob"}`},
		{"POST", "/v1/explain", strings.Repeat("[", 10000)},
		{"DELETE", "/v1/check", ""},
		{"GET", "/nowhere", ""},
	}
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				c := bad[(w+i)%len(bad)]
				req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 || resp.StatusCode >= 500 || errorCode(b) == "" {
					errs <- fmt.Sprintf("%s %s: %d %s", c.method, c.path, resp.StatusCode, b)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if resp := do(t, base, http.MethodGet, checkPath("alice", "documents/d1", "documents:read"), nil, nil); resp.status != 200 {
		t.Fatalf("good request after the burst: %d %s", resp.status, resp.body)
	}
}

// TestSnapshotSwap: while snapshots are swapped, every answer's header and
// body name the same revision (the per-snapshot cache is never torn).
func TestSnapshotSwap(t *testing.T) {
	snaps := []*engine.Snapshot{exampleSnapshot(t, "rev-a"), exampleSnapshot(t, "rev-b"), exampleSnapshot(t, "rev-c")}
	b := newBackend(snaps[0])
	h := NewHandler(b, Options{})
	paths := []string{checkPath("alice", "documents/d1", "documents:read"), checkPath("carol", "documents/d1", "documents:update"),
		userPath("bob", "documents/d1", "assignable", "User")}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				b.snap.Store(snaps[i%len(snaps)])
			}
		}
	})
	var fails sync.Map
	var checkers sync.WaitGroup
	for g := range 6 {
		checkers.Go(func() {
			for i := range 300 {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, paths[(g+i)%len(paths)], nil))
				var body struct{ Revision string }
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Revision != w.Header().Get(HeaderRevision) {
					fails.Store(fmt.Sprintf("%d %v %s", w.Code, w.Header(), w.Body), true)
				}
			}
		})
	}
	checkers.Wait()
	close(stop)
	wg.Wait()
	fails.Range(func(k, _ any) bool { t.Error(k); return true })
}

// panicBackend panics where a backend must not, to prove the last resort.
type panicBackend struct{ testBackend }

func (b *panicBackend) Snapshot() *engine.Snapshot { panic("backend broke") }

func TestPanicRecovered(t *testing.T) {
	b := &panicBackend{}
	base := startServer(t, NewHandler(b, Options{Logger: newTestLogger(t)}))
	resp := do(t, base, http.MethodGet, checkPath("alice", "documents/d1", "documents:read"), nil, nil)
	if resp.status != 500 || errorCode(resp.body) != codeInternal {
		t.Fatalf("%d %s", resp.status, resp.body)
	}
	if resp := do(t, base, http.MethodGet, "/healthz", nil, nil); resp.status != 200 {
		t.Fatalf("after a panic: %d", resp.status)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newBackend(exampleSnapshot(t, "rev1"))
	h := NewHandler(b, Options{Registerer: reg, Gatherer: reg})
	// A second handler on the same registry shares the collectors.
	h2 := NewHandler(b, Options{Registerer: reg})
	serve := func(h http.Handler, method, path, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	}
	serve(h, "GET", checkPath("alice", "documents/d1", "documents:read"), "")
	serve(h2, "GET", checkPath("alice", "documents/d1", "documents:read"), "")
	serve(h, "GET", checkPath("carol", "documents/d1", "documents:update"), "")
	serve(h, "GET", checkPath("carol", "documents/d1", "documents:*"), "")
	serve(h, "POST", "/v1/check", `{"checks":[{"userId":"alice","resourceUri":"documents","action":"documents:read"},`+
		`{"userId":"x","resourceUri":"documents","action":"documents:read"},{"userId":"y","resourceUri":"documents","action":"documents:read"}]}`)
	serve(h, "POST", "/v1/explain", `{`)
	serve(h, "GET", "/nowhere", "")

	hm := h.(*handler).m
	for _, c := range []struct {
		ep   endpoint
		d    decision
		want float64
	}{
		{epCheck, decAllow, 2}, {epCheck, decDeny, 1}, {epCheck, decError, 1},
		{epBatch, decAllow, 1}, {epBatch, decDeny, 2}, {epBatch, decError, 0},
		{epExplain, decError, 1}, {epRoles, decAllow, 0},
	} {
		if got := testutil.ToFloat64(hm.requests[c.ep][c.d]); got != c.want {
			t.Errorf("requests{%s,%s} = %v, want %v", c.ep, decisionNames[c.d], got, c.want)
		}
	}
	if n := testutil.CollectAndCount(hm.requestsVec); n != int(numEndpoints)*int(numDecisions) {
		t.Errorf("%d request series, want every one pre-resolved (%d)", n, int(numEndpoints)*int(numDecisions))
	}
	for _, c := range []prometheus.Collector{hm.requestsVec, hm.durationVec} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %+v", err, problems)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint of the registry: %v %+v", err, problems)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "charter_check_duration_seconds_bucket{endpoint=\"check_batch\"") {
		t.Errorf("/metrics: %d\n%s", w.Code, w.Body)
	}
	// Without a Gatherer there is no /metrics route.
	w = httptest.NewRecorder()
	h2.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 404 || errorCode(w.Body.Bytes()) != codeNotFound {
		t.Errorf("/metrics without a gatherer: %d %s", w.Code, w.Body)
	}
}

func TestSplitPath(t *testing.T) {
	for _, target := range []string{
		"/v1/users/bob/resources/documents%2Fd1/permissions/documents:read",
		"/v1/users/a%20b/resources/%2Fdocs%2F%C3%BC%20%C3%B1%2F100%25%2Fa+b%2F%2541%2Fx%3Fy%23z%2F/permissions/docs:read",
		"/v1/users/%ff/resources/%FF%2f/roles",
		"/v1/users//resources//permissions/",
		"/v1/users/bob/resources/a/b/c/d/e/f",
		"/v1/users/bob/resources/a%2Fb/c/d/e/f",
		"/v1/users/%2F%2F%2F/resources",
		"/",
	} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatal(err)
		}
		checkSplitPath(t, u)
	}
	// Path and RawPath that disagree (a URL built by hand): Path wins, as in
	// url.URL.EscapedPath.
	for _, raw := range []string{"/v1/users/bob/resources/a%2Fb", "/v1/users/%zz/resources/y", "/v1/users/%41/resources/y"} {
		u := &url.URL{Path: "/v1/users/x/resources/y", RawPath: raw}
		var segs [maxSegments]string
		n, e := splitPath(u, &segs)
		if e != nil || n != 5 || segs[2] != "x" || segs[4] != "y" {
			t.Errorf("RawPath %q: %d %v %q", raw, n, e, segs)
		}
	}
}

// TestResourcesPaging pages through listings over HTTP, 1 to 3 at a time,
// following pagination.next.cursor, and compares the pages joined with the
// engine's whole listing (one page of MaxListLimit): nothing lost, nothing
// repeated, never more than limit.
func TestResourcesPaging(t *testing.T) {
	s := exampleSnapshot(t, "rev1")
	base := startServer(t, NewHandler(newBackend(s), Options{}))
	users := []string{"alice", "bob", "carol", "dave", "fiona", "amara", "nina", "paula", "quinn", "sam", "tina", "stan", "nobody"}
	colls := []string{"documents", "organizations", "hospitals", "hospitals/h1", "acme"}
	actions := []string{"documents:read", "documents:update", "org:invoices:read", "patients:read", "read", "audit-trail:read"}
	listed := 0
	for _, u := range users {
		for _, c := range colls {
			for _, a := range actions {
				want, err := s.Resources(engine.ResourceQuery{User: u, Action: a, Collection: c, Limit: engine.MaxListLimit})
				if err != nil || want.Cursor != "" {
					t.Fatalf("%s %s %s: %v", u, c, a, err)
				}
				limit := 1 + len(u+c+a)%3
				var got []string
				cursor := ""
				for page := 0; ; page++ {
					path := "/v1/users/" + url.PathEscape(u) + "/resources?permissions=" + url.QueryEscape(a) +
						"&resourceUri=" + url.QueryEscape(c) + "&limit=" + fmt.Sprint(limit)
					if cursor != "" {
						path += "&cursor=" + url.QueryEscape(cursor)
					}
					resp := do(t, base, http.MethodGet, path, nil, nil)
					var body struct {
						Resources []struct {
							ResourceURI string `json:"resourceUri"`
						} `json:"resources"`
						Access     bool `json:"accessToAllSubResources"`
						Pagination *struct {
							Next struct {
								Cursor string `json:"cursor"`
							} `json:"next"`
						} `json:"pagination"`
						Links struct {
							Self struct {
								Href string `json:"href"`
							} `json:"self"`
						} `json:"links"`
					}
					if resp.status != 200 || json.Unmarshal(resp.body, &body) != nil {
						t.Fatalf("GET %s: %d %s", path, resp.status, resp.body)
					}
					if len(body.Resources) > limit || (body.Pagination != nil && len(body.Resources) != limit) || body.Links.Self.Href != path || body.Access != want.AccessToAllSubResources {
						t.Fatalf("GET %s: page breaks the rules: %s", path, resp.body)
					}
					for _, r := range body.Resources {
						got = append(got, r.ResourceURI)
					}
					if body.Pagination == nil {
						break
					}
					cursor = body.Pagination.Next.Cursor
					if page > 100 {
						t.Fatalf("%s %s %s: paging does not end", u, c, a)
					}
				}
				if strings.Join(got, " ") != strings.Join(want.Resources, " ") {
					t.Errorf("%s %s %s by %d: pages hold %q, the whole listing %q", u, c, a, limit, got, want.Resources)
				}
				listed += len(got)
			}
		}
	}
	if listed < 20 {
		t.Errorf("only %d resources listed in all: the cases do not exercise paging", listed)
	}
}
