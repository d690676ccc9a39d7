package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestDotSegmentsRejected is the attack row of issue 8: carol holds only
// documents/d1 in the example policies, and "documents/d1/../../secret"
// must not be a URI below documents/d1 that she may read. A "." or ".."
// segment is a bad request (400 invalid_resource) on every route that
// takes a resource, as SPEC 2.2 says.
func TestDotSegmentsRejected(t *testing.T) {
	srv := httptest.NewServer(NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{}))
	t.Cleanup(srv.Close)
	const attack = "documents/d1/../../secret"
	runRouteCases(t, srv.URL, []routeCase{
		// The control: carol may read documents/d1 and what lies below it.
		{name: "holds d1", path: checkPath("carol", "documents/d1", "documents:read"), status: 200, decided: true},
		{name: "holds below d1", path: checkPath("carol", "documents/d1/comments/2", "documents:read"), status: 200, decided: true},
		{name: "does not hold secret", path: checkPath("carol", "secret", "documents:read"), status: 404, decided: true},

		{name: "check dot-dot", path: checkPath("carol", attack, "documents:read"), status: 400, code: codeInvalidResource},
		{name: "check dot-dot escaped dots", path: "/v1/users/carol/resources/documents%2Fd1%2F%2E%2E%2F%2E%2E%2Fsecret/permissions/documents:read", status: 400, code: codeInvalidResource},
		{name: "check trailing dot-dot", path: checkPath("carol", "documents/d1/..", "documents:read"), status: 400, code: codeInvalidResource},
		{name: "check dot", path: checkPath("carol", "documents/./d1", "documents:read"), status: 400, code: codeInvalidResource},
		{name: "check leading dot", path: checkPath("carol", "./documents/d1", "documents:read"), status: 400, code: codeInvalidResource},
		{name: "check dots in a name", path: checkPath("carol", "documents/d1/...", "documents:read"), status: 200, decided: true},
		{name: "check empty segment", path: checkPath("carol", "documents/d1//x", "documents:read"), status: 400, code: codeInvalidResource},
		{name: "permissions", path: userPath("carol", attack, "permissions"), status: 400, code: codeInvalidResource},
		{name: "roles", path: userPath("carol", attack, "roles"), status: 400, code: codeInvalidResource},
		{name: "assignable", path: userPath("bob", attack, "assignable", "User"), status: 400, code: codeInvalidResource},
		{name: "listing collection", path: "/v1/users/carol/resources?permission=documents:read&collectionResource=" + url.QueryEscape("documents/.."), status: 400, code: codeInvalidResource},
		{name: "batch", method: http.MethodPost, path: "/v1/check",
			body:   `{"checks":[{"userId":"carol","resourceUri":"documents/d1","action":"documents:read"},{"userId":"carol","resourceUri":"` + attack + `","action":"documents:read"}]}`,
			status: 400, code: codeInvalidResource},
		{name: "explain", method: http.MethodPost, path: "/v1/explain",
			body: `{"userId":"carol","resourceUri":"` + attack + `","action":"documents:read"}`, status: 400, code: codeInvalidResource},
	})
}
