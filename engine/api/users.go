package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charter-policy/charter/engine"
)

const usersPrefix = "/v1/users/"

// maxUserRunes bounds a user ID (the schema's #UserID).
const maxUserRunes = 256

// serveUsers routes /v1/users/{userId}/resources[/{resourceUri}/...] from
// the escaped path, so that a segment holding "%2F" stays one segment, and
// unescapes each segment only when it holds a "%".
func (h *handler) serveUsers(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path, escaped := r.URL.Path, false
	if r.URL.RawPath != "" {
		path, escaped = r.URL.RawPath, true
	}
	var segs [8]string // "v1", "users", then at most 5
	n := 0
	rest := strings.TrimPrefix(path, "/")
	for more := true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		if n == len(segs) {
			h.notFound(w, r)
			return
		}
		if escaped && strings.IndexByte(seg, '%') >= 0 {
			u, err := url.PathUnescape(seg)
			if err != nil {
				badRequest(codeInvalidPath, "malformed escape in path segment").write(w)
				return
			}
			seg = u
		}
		segs[n] = seg
		n++
	}
	if n < 4 || segs[0] != "v1" || segs[1] != "users" || segs[3] != "resources" {
		h.notFound(w, r)
		return
	}
	var ep endpoint
	switch {
	case n == 4:
		ep = epResources
	case n == 6 && segs[5] == "permissions":
		ep = epPermissions
	case n == 6 && segs[5] == "roles":
		ep = epRoles
	case n == 7 && segs[5] == "permissions":
		ep = epCheck
	case n == 7 && segs[5] == "assignable":
		ep = epAssignable
	default:
		h.notFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	user := segs[2]
	if e := checkPathSegments(segs[2:n]); e != nil {
		h.fail(w, ep, e, start)
		return
	}
	if e := checkUser(user); e != nil {
		h.fail(w, ep, e, start)
		return
	}
	switch ep {
	case epCheck:
		h.serveCheck(w, r, user, segs[4], segs[6], start)
	case epAssignable:
		h.serveAssignable(w, r, user, segs[4], segs[6], start)
	case epPermissions:
		h.servePermissions(w, r, user, segs[4], start)
	case epRoles:
		h.serveRoles(w, r, user, segs[4], start)
	case epResources:
		h.serveResources(w, r, user, start)
	}
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, codeNotFound, "no route "+r.URL.Path)
}

// fail answers e and counts an error for ep.
func (h *handler) fail(w http.ResponseWriter, ep endpoint, e *apiError, start time.Time) {
	if e.Status >= 500 {
		h.log.Error("internal error", "endpoint", ep.String(), "error", e.Message)
	}
	e.write(w)
	h.m.observe(ep, decError, start)
}

// checkPathSegments rejects path parameters that are not UTF-8 once unescaped.
func checkPathSegments(segs []string) *apiError {
	for _, s := range segs {
		if !utf8.ValidString(s) {
			return badRequest(codeInvalidPath, "path segment is not valid UTF-8 once unescaped")
		}
	}
	return nil
}

// checkUser validates a user ID as the schema's #UserID does: 1 to 256
// characters of valid UTF-8, none of them a control character below 0x20.
func checkUser(u string) *apiError {
	if u == "" {
		return badRequest(codeInvalidUser, "userId is empty")
	}
	if !utf8.ValidString(u) {
		return badRequest(codeInvalidUser, "userId is not valid UTF-8")
	}
	n := 0
	for _, c := range u {
		if c < 0x20 {
			return badRequest(codeInvalidUser, "userId holds a control character")
		}
		n++
	}
	if n > maxUserRunes {
		return badRequest(codeInvalidUser, "userId is longer than 256 characters")
	}
	return nil
}

// serveCheck is the hot path: GET .../permissions/{action}. Its own work
// allocates nothing: the body and headers come from the snapshot's cache.
func (h *handler) serveCheck(w http.ResponseWriter, r *http.Request, user, resource, action string, start time.Time) {
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epCheck, decError, start)
		return
	}
	d, err := st.snap.Check(engine.Question{User: user, Resource: resource, Action: action, Environment: h.env})
	if err != nil {
		h.fail(w, epCheck, questionError(err), start)
		return
	}
	st.writeDecision(w, d.Allowed)
	h.m.observe(epCheck, allowDeny(d.Allowed), start)
}

// serveAssignable answers GET .../assignable/{roleId} (SPEC 2.5).
func (h *handler) serveAssignable(w http.ResponseWriter, r *http.Request, user, resource, role string, start time.Time) {
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epAssignable, decError, start)
		return
	}
	d, err := st.snap.Assignable(user, role, resource, h.env)
	if err != nil {
		h.fail(w, epAssignable, questionError(err), start)
		return
	}
	st.writeDecision(w, d.Allowed)
	h.m.observe(epAssignable, allowDeny(d.Allowed), start)
}

type permissionsBody struct {
	Permissions []engine.Entry `json:"permissions"`
	Revision    string         `json:"revision"`
}

// servePermissions answers GET .../permissions: the entries user holds on
// resource. It counts as "allow" when the user holds any entry.
func (h *handler) servePermissions(w http.ResponseWriter, r *http.Request, user, resource string, start time.Time) {
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epPermissions, decError, start)
		return
	}
	entries, err := st.snap.Permissions(user, resource, h.env)
	if err != nil {
		h.fail(w, epPermissions, questionError(err), start)
		return
	}
	if entries == nil {
		entries = []engine.Entry{}
	}
	w.Header()[HeaderRevision] = st.revHeader
	writeJSON(w, http.StatusOK, permissionsBody{Permissions: entries, Revision: st.snap.Revision()})
	h.m.observe(epPermissions, allowDeny(len(entries) > 0), start)
}

type rolesBody struct {
	Roles    []string `json:"roles"`
	Revision string   `json:"revision"`
}

// serveRoles answers GET .../roles: the roles user holds on resource.
// It counts as "allow" when the user holds any role.
func (h *handler) serveRoles(w http.ResponseWriter, r *http.Request, user, resource string, start time.Time) {
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epRoles, decError, start)
		return
	}
	roles, err := st.snap.Roles(user, resource, h.env)
	if err != nil {
		h.fail(w, epRoles, questionError(err), start)
		return
	}
	if roles == nil {
		roles = []string{}
	}
	w.Header()[HeaderRevision] = st.revHeader
	writeJSON(w, http.StatusOK, rolesBody{Roles: roles, Revision: st.snap.Revision()})
	h.m.observe(epRoles, allowDeny(len(roles) > 0), start)
}

type resourceRef struct {
	ResourceURI string `json:"resourceUri"`
}

type resourcesBody struct {
	Resources               []resourceRef `json:"resources"`
	AccessToAllSubResources bool          `json:"accessToAllSubResources"`
	Revision                string        `json:"revision"`
}

// serveResources answers GET /v1/users/{userId}/resources?permission=A&collectionResource=P.
// Both parameters are required. It counts as "allow" when the user may act
// on the collection or on anything listed.
func (h *handler) serveResources(w http.ResponseWriter, r *http.Request, user string, start time.Time) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.fail(w, epResources, badRequest(codeInvalidArgument, "malformed query string"), start)
		return
	}
	action, collection := q.Get("permission"), q.Get("collectionResource")
	switch {
	case action == "":
		h.fail(w, epResources, badRequest(codeInvalidArgument, "query parameter permission is required"), start)
		return
	case collection == "":
		h.fail(w, epResources, badRequest(codeInvalidArgument, "query parameter collectionResource is required"), start)
		return
	case !utf8.ValidString(action) || !utf8.ValidString(collection):
		h.fail(w, epResources, badRequest(codeInvalidArgument, "query parameter is not valid UTF-8"), start)
		return
	}
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epResources, decError, start)
		return
	}
	list, err := st.snap.Resources(user, action, collection, h.env, time.Time{})
	if err != nil {
		h.fail(w, epResources, questionError(err), start)
		return
	}
	body := resourcesBody{
		Resources:               make([]resourceRef, len(list.Resources)),
		AccessToAllSubResources: list.AccessToAllSubResources,
		Revision:                st.snap.Revision(),
	}
	for i, uri := range list.Resources {
		body.Resources[i].ResourceURI = uri
	}
	w.Header()[HeaderRevision] = st.revHeader
	writeJSON(w, http.StatusOK, body)
	h.m.observe(epResources, allowDeny(list.AccessToAllSubResources || len(list.Resources) > 0), start)
}
