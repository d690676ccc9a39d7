package api

import (
	"fmt"
	"net/http/httptest"
	"testing"
)

func TestProbe(t *testing.T) {
	h := NewHandler(newBackend(exampleSnapshot(t, "rev1")), Options{})
	for _, p := range []string{
		"/v1/users/alice/resources/documents%2Fd1/permissions/documents:read",
		"/v1/users/carol/resources/documents%2Fd1/permissions/documents:update",
		"/v1/users/carol/resources/%2Fdocuments%2Fd1%2F/permissions/documents:read",
		"/v1/users/bob/resources/documents%2Fd1/permissions",
		"/v1/users/carol/resources/documents%2Fd1/roles",
		"/v1/users/carol/resources/documents%2Fd9/roles",
		"/v1/users/bob/resources/documents%2Fd1/assignable/User",
		"/v1/users/bob/resources/documents%2Fd1/assignable/Editor",
		"/v1/users/bob/resources/documents%2Fd1/assignable/Nope",
		"/v1/users/carol/resources?permission=documents:read&collectionResource=documents",
		"/v1/users/fiona/resources?permission=org:invoices:read&collectionResource=organizations",
		"/v1/users/bob/resources?permission=documents:read&collectionResource=documents",
		"/v1/users//resources/documents/permissions/documents:read",
		"/v1/users/bob/resources/documents%2F%2Fd1/permissions/documents:read",
		"/v1/users/bob/resources/documents/permissions/documents:*",
		"/v1/users/bob/resources/documents/permissions/%ff",
		"/v1/users/bob/resources/acme%2Fdocuments/permissions/write",
		"/v1/users/bob/resources/hospitals%2Fh1/permissions/patients:read",
		"/v1/users/nina/resources/hospitals%2Fh1/permissions/patients:read",
		"/v1/users/nina/resources/hospitals%2Fh1/assignable/clerk",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		fmt.Println(p, w.Code, w.Header(), w.Body.String())
	}
}
