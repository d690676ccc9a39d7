package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charter-policy/charter/engine"
)

const usersPrefix = "/v1/users/"

// serveUsers routes /v1/users/{userId}/resources[/{resourceUri}/...] by
// the escaped path, so that a segment holding "%2F" stays one segment.
func (h *handler) serveUsers(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var segs [maxSegments]string
	n, e := splitPath(r.URL, &segs)
	if e != nil {
		e.write(w)
		return
	}
	if n < 0 {
		h.notFound(w, r)
		return
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

// maxSegments bounds the segments of a user route: "v1", "users" and at
// most 5 more.
const maxSegments = 7

// splitPath splits a request path into its unescaped segments, in segs; it
// returns -1 when there are more than len(segs).
//
// When u.RawPath is empty, u.Path needed only the default escapes and its
// "/" all separate segments. Otherwise the segments are cut along RawPath's
// "/" (a "%2F" stays inside its segment) and their text is sliced out of
// Path, which net/http already unescaped: each raw segment unescapes to
// len(seg) - 2*count("%") bytes. Nothing is unescaped twice and nothing
// allocates. Should Path and RawPath disagree (a URL built by hand), Path
// wins as in url.URL.EscapedPath, and each segment of the escaped path is
// unescaped on its own.
func splitPath(u *url.URL, segs *[maxSegments]string) (int, *apiError) {
	if u.RawPath == "" {
		return cutSegments(u.Path, segs), nil
	}
	if n, ok := sliceSegments(u.Path, u.RawPath, segs); ok {
		return n, nil
	}
	n := cutSegments(u.EscapedPath(), segs)
	for i := range max(n, 0) {
		if strings.IndexByte(segs[i], '%') < 0 {
			continue
		}
		s, err := url.PathUnescape(segs[i])
		if err != nil {
			return 0, badRequest(codeInvalidPath, "malformed escape in path segment")
		}
		segs[i] = s
	}
	return n, nil
}

// cutSegments splits p at every "/" after the leading one.
func cutSegments(p string, segs *[maxSegments]string) int {
	rest := strings.TrimPrefix(p, "/")
	n := 0
	for more := true; more; n++ {
		if n == len(segs) {
			return -1
		}
		segs[n], rest, more = strings.Cut(rest, "/")
	}
	return n
}

// sliceSegments cuts raw into segments and slices their unescaped text out
// of path; it reports false when path is not raw unescaped.
func sliceSegments(path, raw string, segs *[maxSegments]string) (int, bool) {
	if !strings.HasPrefix(path, "/") || !strings.HasPrefix(raw, "/") {
		return 0, false
	}
	path, raw = path[1:], raw[1:]
	off, n := 0, 0
	for more := true; more; n++ {
		var seg string
		seg, raw, more = strings.Cut(raw, "/")
		ulen := len(seg) - 2*strings.Count(seg, "%")
		end := off + ulen
		if ulen < 0 || end > len(path) || (more && (end == len(path) || path[end] != '/')) || (!more && end != len(path)) {
			return 0, false
		}
		if n == len(segs) {
			return -1, true
		}
		segs[n] = path[off:end]
		off = end + 1
	}
	return n, true
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

// checkUser validates a user ID as the engine does (engine.CheckUserID,
// the schema's #UserID), before any snapshot is needed.
func checkUser(u string) *apiError {
	if err := engine.CheckUserID(u); err != nil {
		return badRequest(codeInvalidUser, err.Error())
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

// resourcesBody is the answer of the resource listing.
type resourcesBody struct {
	Resources               []resourceRef `json:"resources"`
	AccessToAllSubResources bool          `json:"accessToAllSubResources"`
	// Pagination is null on the last page.
	Pagination *pagination `json:"pagination"`
	Links      links       `json:"links"`
	Revision   string      `json:"revision"`
}

type pagination struct {
	Next cursorRef `json:"next"`
}

type cursorRef struct {
	Cursor string `json:"cursor"`
}

type links struct {
	Self link `json:"self"`
}

type link struct {
	Href string `json:"href"`
}

// Query parameters of the resource listing. Each has the Authress name and
// the name charter answered first; either may be given, not both.
var (
	paramAction     = []string{"permissions", "permission"}
	paramCollection = []string{"resourceUri", "collectionResource"}
	paramLimit      = []string{"limit"}
	paramCursor     = []string{"cursor"}
)

// queryParam returns the value of a query parameter given by any of its
// names, "" when it is absent; given more than once, or not as UTF-8, it is
// a bad request.
func queryParam(q url.Values, names []string) (string, *apiError) {
	var v []string
	for _, n := range names {
		v = append(v, q[n]...)
	}
	switch {
	case len(v) == 0:
		return "", nil
	case len(v) > 1:
		return "", badRequest(codeInvalidArgument, "query parameter "+strings.Join(names, " or ")+" is given more than once")
	case !utf8.ValidString(v[0]):
		return "", badRequest(codeInvalidArgument, "query parameter "+names[0]+" is not valid UTF-8")
	}
	return v[0], nil
}

// serveResources answers GET /v1/users/{userId}/resources?permissions=A&resourceUri=P&limit=N&cursor=K
// (permission and collectionResource are the same parameters): one page
// of the resources at or below P on which the user is allowed A. A and P
// are required. It counts as "allow" when the user may act on the
// collection or on anything listed.
func (h *handler) serveResources(w http.ResponseWriter, r *http.Request, user string, start time.Time) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.fail(w, epResources, badRequest(codeInvalidArgument, "malformed query string"), start)
		return
	}
	var args [4]string
	for i, names := range [][]string{paramAction, paramCollection, paramLimit, paramCursor} {
		v, e := queryParam(q, names)
		if e == nil && v == "" && i < 2 {
			e = badRequest(codeInvalidArgument, "query parameter "+names[0]+" (or "+names[1]+") is required")
		}
		if e != nil {
			h.fail(w, epResources, e, start)
			return
		}
		args[i] = v
	}
	limit := 0
	if args[2] != "" {
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 || n > engine.MaxListLimit {
			h.fail(w, epResources, badRequest(codeInvalidArgument,
				"query parameter limit must be a whole number from 1 to "+strconv.Itoa(engine.MaxListLimit)+", got "+strconv.Quote(args[2])), start)
			return
		}
		limit = n
	}
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epResources, decError, start)
		return
	}
	list, err := st.snap.Resources(engine.ResourceQuery{
		User: user, Action: args[0], Collection: args[1], Environment: h.env, Limit: limit, Cursor: args[3],
	})
	if err != nil {
		h.fail(w, epResources, questionError(err), start)
		return
	}
	body := resourcesBody{
		Resources:               make([]resourceRef, len(list.Resources)),
		AccessToAllSubResources: list.AccessToAllSubResources,
		Links:                   links{Self: link{Href: r.URL.RequestURI()}},
		Revision:                st.snap.Revision(),
	}
	for i, uri := range list.Resources {
		body.Resources[i].ResourceURI = uri
	}
	if list.Cursor != "" {
		body.Pagination = &pagination{Next: cursorRef{Cursor: list.Cursor}}
	}
	w.Header()[HeaderRevision] = st.revHeader
	writeJSON(w, http.StatusOK, body)
	h.m.observe(epResources, allowDeny(list.AccessToAllSubResources || len(list.Resources) > 0), start)
}
