package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxBodyBytes bounds the body of every request; a longer one is answered
// 413, once the rest of it (up to 8 MiB in all, for up to 5 seconds) has
// been read and discarded so that the answer reaches a client that writes
// its whole body before it reads.
const MaxBodyBytes = 1 << 20

// MaxChecks bounds the checks of one POST /v1/check request.
const MaxChecks = 1000

// DefaultMinRevisionWait is how long a request with Charter-Min-Revision waits
// for that revision when Options.MinRevisionWait is zero.
const DefaultMinRevisionWait = 2 * time.Second

// Header names of the API (in canonical form, so that they can index an
// http.Header directly).
const (
	// HeaderRevision carries the revision of the snapshot that made a decision.
	HeaderRevision = "Charter-Revision"
	// HeaderMinRevision asks for a decision by that revision or a newer one.
	HeaderMinRevision = "Charter-Min-Revision"
	// HeaderSignature carries the webhook's HMAC-SHA256 of the body, as
	// "sha256=<hex>" (GitHub's X-Hub-Signature-256).
	HeaderSignature = "X-Hub-Signature-256"
)

// Options configure the handler returned by NewHandler.
type Options struct {
	// Environment applies to every question (SPEC 2.7): records tagged with
	// another environment are excluded. Empty: no record is excluded.
	Environment string
	// WebhookSecret, when set, is what POST /v1/reconcile must be
	// authenticated with: the HMAC-SHA256 key of X-Hub-Signature-256
	// (GitHub) and X-Gitea-Signature (Gitea), or the token of
	// X-Gitlab-Token (GitLab). When nil, POST /v1/reconcile is accepted only
	// from a loopback address.
	WebhookSecret []byte
	// Branch returns the short name of the branch the source follows
	// ("main"): a webhook's push event for another ref is answered 202
	// {"status":"ignored"} without a fetch. Nil, or "" (a directory, or a
	// remote HEAD not known yet): every push fetches.
	Branch func() string
	// Registerer receives charter_check_requests_total and
	// charter_check_duration_seconds. Nil: they are kept but not registered.
	Registerer prometheus.Registerer
	// Gatherer is served at GET /metrics. Nil: there is no /metrics route.
	Gatherer prometheus.Gatherer
	// Logger logs internal errors and recovered panics. Nil: nothing is logged.
	Logger *slog.Logger
	// MinRevisionWait bounds how long a request with Charter-Min-Revision
	// waits for that revision before it is answered 409. Zero:
	// DefaultMinRevisionWait.
	MinRevisionWait time.Duration
	// RevisionIncludes reports whether the served revision is min or a
	// descendant of it (git ancestry), for Charter-Min-Revision, under a
	// context that ends with the request or the MinRevisionWait (an error is
	// logged and taken as false). Nil: only the revision min itself
	// satisfies the header.
	RevisionIncludes func(ctx context.Context, served, min string) (bool, error)
	// ReconcileRate and ReconcileBurst bound POST /v1/reconcile, as a token
	// bucket of ReconcileBurst requests refilled at ReconcileRate per
	// second; over it, the answer is 429 rate_limited with Retry-After.
	// Zero: DefaultReconcileRate and DefaultReconcileBurst.
	ReconcileRate  float64
	ReconcileBurst int
}

// handler serves the API; see NewHandler.
type handler struct {
	b              Backend
	env            string
	secret         []byte
	log            *slog.Logger
	wait           time.Duration
	includes       func(ctx context.Context, served, min string) (bool, error)
	branch         func() string
	mux            *http.ServeMux
	m              *metrics
	state          atomic.Pointer[snapState]
	reconcileLimit *tokenBucket
	// ancestry memoises RevisionIncludes per (served, wanted) pair.
	ancestry ancestryCache
	// lastMinRevFetch is when a Charter-Min-Revision request last asked for
	// a fetch (UnixNano); at most one per minRevisionFetchInterval.
	lastMinRevFetch atomic.Int64
	// drainTimeout bounds the drain of an oversized body (drainTooLarge):
	// defaultDrainTimeout; tests set their own before serving.
	drainTimeout time.Duration
}

// NewHandler returns the HTTP API of SPEC section 5 as far as it is built
// (not yet: /v1/audit and /v1/resources/{resourceUri}/users), answered from
// b; engine/api/README.md is its reference:
//
//	GET  /v1/users/{userId}/resources/{resourceUri}/permissions/{action}  200 or 404 {"allowed","revision"}
//	GET  /v1/users/{userId}/resources/{resourceUri}/permissions           {"permissions":[{"action","allow","grant","delegate"}],"revision"}
//	GET  /v1/users/{userId}/resources/{resourceUri}/roles                 {"roles":[...],"revision"}
//	GET  /v1/users/{userId}/resources/{resourceUri}/assignable/{roleId}   200 or 404 {"allowed","revision"}
//	GET  /v1/users/{userId}/resources?permissions=A&resourceUri=P&limit=N&cursor=K
//	     {"resources":[{"resourceUri"}],"accessToAllSubResources","pagination":{"next":{"cursor"}}|null,"links":{"self":{"href"}},"revision"}
//	POST /v1/check     {"checks":[{"userId","resourceUri","action"}],"time"?} → {"revision","results":[{"allowed"}]}
//	POST /v1/explain   {"userId","resourceUri","action"|"role"|"assign","time"?} → {"allowed","revision","layer","trace"}
//	GET  /v1/status    Backend.Status
//	POST /v1/reconcile 202 {"status":"accepted"}; ?wait=true: 202 {"status","revision","error"} after the reconcile;
//	                   a webhook push to another branch: 202 {"status":"ignored"}; GitHub ping: 200 {"status":"pong"}
//	GET  /healthz, /readyz, /metrics
//
// {resourceUri} is one URL-encoded path segment ("documents%2Fd1"). Every
// response made from a snapshot carries the Charter-Revision header; so does
// a 409. Request bodies are decoded strictly: field names match exactly,
// unknown or repeated fields and trailing data are errors, null leaves a
// field unset.
//
// Errors are {"error":{"code","message"}}: 400 for bad input (codes
// invalid_json, unknown_field, invalid_path, invalid_user, invalid_resource,
// invalid_action, invalid_question, unknown_role, invalid_time,
// invalid_argument, invalid_cursor, too_many_checks), 401
// (invalid_signature), 403 (forbidden), 404 (not_found), 405
// (method_not_allowed), 409 (revision_behind), 413 (body_too_large),
// 429 (rate_limited, with Retry-After), 503 (no_snapshot) and, for a bug only, 500 (internal).
//
// NewHandler registers its metrics on opts.Registerer, reusing collectors
// that an earlier handler registered there; it panics if another collector
// of the same name conflicts with them.
func NewHandler(b Backend, opts Options) http.Handler {
	h := &handler{
		b:        b,
		env:      opts.Environment,
		secret:   opts.WebhookSecret,
		log:      opts.Logger,
		wait:     opts.MinRevisionWait,
		includes: opts.RevisionIncludes,
		branch:   opts.Branch,
		mux:      http.NewServeMux(),
		m:        newMetrics(opts.Registerer),

		drainTimeout: defaultDrainTimeout,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.wait <= 0 {
		h.wait = DefaultMinRevisionWait
	}
	rate, burst := opts.ReconcileRate, opts.ReconcileBurst
	if rate <= 0 {
		rate = DefaultReconcileRate
	}
	if burst <= 0 {
		burst = DefaultReconcileBurst
	}
	h.reconcileLimit = newTokenBucket(rate, burst)
	h.route("POST", "/v1/check", h.serveBatch)
	h.route("POST", "/v1/explain", h.serveExplain)
	h.route("GET", "/v1/status", h.serveStatus)
	h.route("POST", "/v1/reconcile", h.serveReconcile)
	h.route("GET", "/healthz", h.serveHealthz)
	h.route("GET", "/readyz", h.serveReadyz)
	if opts.Gatherer != nil {
		h.route("GET", "/metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no route "+r.URL.Path)
	})
	return h
}

// route registers f for method and path, and a JSON 405 for every other
// method on path (ServeMux's own 405 is plain text).
func (h *handler) route(method, path string, f http.HandlerFunc) {
	h.mux.HandleFunc(method+" "+path, f)
	allow := method
	if method == http.MethodGet {
		allow = "GET, HEAD"
	}
	h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		methodNotAllowed(w, r, allow)
	})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "method "+r.Method+" not allowed; allowed: "+allow)
}

// ServeHTTP routes the user routes itself (the hot path: no ServeMux
// matching, no clean-path redirects of empty or dot segments) and the rest
// through a ServeMux.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer h.recoverPanic(w, r)
	if strings.HasPrefix(r.URL.Path, usersPrefix) {
		h.serveUsers(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// recoverPanic is the last resort: it logs a panic and answers 500 (when
// nothing was written yet, otherwise the client sees a cut response).
func (h *handler) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // sentinel value, compared as net/http does
		panic(v)
	}
	h.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
	writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
}

func (h *handler) serveStatus(w http.ResponseWriter, _ *http.Request) {
	st := h.b.Status()
	if st.Counts == nil {
		st.Counts = map[string]int{}
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *handler) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	s := h.b.Snapshot()
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, codeNoSnapshot, "no policy snapshot loaded yet")
		return
	}
	w.Header()[HeaderRevision] = []string{s.Revision()}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "revision": s.Revision()})
}

// webhookChallenge is the WWW-Authenticate header of a 401 from
// /v1/reconcile (RFC 9110 asks a 401 to carry one): it names the header
// that must carry the HMAC-SHA256 signature of the body.
const webhookChallenge = `HMAC-SHA256 header="` + HeaderSignature + `"`

// serveReconcile asks the backend for a fetch now (SPEC 5, 6.1). With a
// webhook secret the request must be authenticated (webhookAuthentic), else
// the answer is 401; without one only loopback clients may ask, others get
// 403. A webhook's event then decides: GitHub's ping is answered 200
// {"status":"pong"}, a push to another branch and any other event 202
// {"status":"ignored"}, all without a fetch; a push whose body has no
// readable ref is 400. A push to the branch followed, or a request without
// an event header, asks for the fetch.
func (h *handler) serveReconcile(w http.ResponseWriter, r *http.Request) {
	if h.secret == nil && !isLoopback(r.RemoteAddr) {
		writeError(w, http.StatusForbidden, codeForbidden, "reconcile is accepted from loopback only (no webhook secret is set)")
		return
	}
	body, e := h.readBody(w, r)
	if e != nil {
		e.write(w)
		return
	}
	if h.secret != nil && !webhookAuthentic(h.secret, body, r.Header) {
		w.Header().Set("WWW-Authenticate", webhookChallenge)
		writeError(w, http.StatusUnauthorized, codeInvalidSignature,
			"missing or invalid webhook authentication: one of "+HeaderSignature+", "+HeaderGiteaSignature+" or "+HeaderGitLabToken+", each given once")
		return
	}
	switch eventOf(r.Header) {
	case eventPing:
		writeJSON(w, http.StatusOK, map[string]string{"status": "pong"})
		return
	case eventOther:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "ignored"})
		return
	case eventPush:
		ref, err := pushRef(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidJSON, err.Error())
			return
		}
		if branch := h.followedBranch(); branch != "" && ref != "refs/heads/"+branch {
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "ignored"})
			return
		}
	}
	h.reconcile(w, r)
}

// followedBranch is the branch the source follows, or "" when unknown.
func (h *handler) followedBranch() string {
	if h.branch == nil {
		return ""
	}
	return h.branch()
}

// reconcile answers an authorized POST /v1/reconcile: 202 once the fetch is
// asked for; with ?wait=true, 202 after the reconcile (SPEC 6.1), with the revision
// served then and, when the source's revision is not served, why.
func (h *handler) reconcile(w http.ResponseWriter, r *http.Request) {
	if ok, retry := h.reconcileLimit.take(time.Now()); !ok {
		h.m.reconcileLimited.Inc()
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(w, http.StatusTooManyRequests, codeRateLimited, "too many reconcile requests; retry after "+strconv.Itoa(retry)+" s")
		return
	}
	wait := false
	if v, ok := r.URL.Query()["wait"]; ok {
		var err error
		if wait, err = strconv.ParseBool(v[0]); err != nil || len(v) != 1 {
			writeError(w, http.StatusBadRequest, codeInvalidArgument, "query parameter wait must be given once, as true or false")
			return
		}
	}
	if !wait {
		if h.b.Reconcile() {
			h.m.reconcileAccepted.Inc()
		} else {
			h.m.reconcileCoalesced.Inc()
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted"})
		return
	}
	h.m.reconcileAccepted.Inc()
	err := h.b.ReconcileWait(r.Context())
	body := reconciled{Status: "served"}
	if err != nil {
		msg := err.Error()
		body.Status, body.Error = "not_served", &msg
	}
	if s := h.b.Snapshot(); s != nil {
		body.Revision = s.Revision()
		w.Header()[HeaderRevision] = []string{body.Revision}
	}
	writeJSON(w, http.StatusAccepted, body)
}

// reconciled is the body of POST /v1/reconcile?wait=true.
type reconciled struct {
	// Status is "served" when the source's revision is served, else
	// "not_served".
	Status string `json:"status"`
	// Revision is the revision served after the reconcile; empty when none is.
	Revision string `json:"revision"`
	// Error is why the source's revision is not served; null when it is.
	Error *string `json:"error"`
}

// isLoopback reports whether a RemoteAddr ("host:port") is a loopback address.
func isLoopback(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}
