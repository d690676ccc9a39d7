package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/charter-policy/charter/engine"
)

// checkRequest is the body of POST /v1/check.
type checkRequest struct {
	Checks []checkItem `json:"checks"`
	// Time is the RFC 3339 time of every check, for time policies; empty: now.
	Time string `json:"time"`
}

// checkItem is one check of a batch.
type checkItem struct {
	UserID      string `json:"userId"`
	ResourceURI string `json:"resourceUri"`
	Action      string `json:"action"`
}

// explainRequest is the body of POST /v1/explain.
type explainRequest struct {
	UserID      string `json:"userId"`
	ResourceURI string `json:"resourceUri"`
	Action      string `json:"action"`
	Role        string `json:"role"`
	Assign      string `json:"assign"`
	Time        string `json:"time"`
}

// explainBody is the answer of POST /v1/explain; unlike engine.Decision it
// always holds "trace".
type explainBody struct {
	Allowed  bool          `json:"allowed"`
	Revision string        `json:"revision"`
	Layer    string        `json:"layer"`
	Trace    []engine.Step `json:"trace"`
}

// decodeCheckRequest decodes and validates a batch: at most MaxChecks
// checks, each with a valid user, and a valid time. The resources and
// actions are checked by the engine.
func decodeCheckRequest(body []byte) (*checkRequest, time.Time, *apiError) {
	req, e := decodeChecks(body)
	if e != nil {
		return nil, time.Time{}, e
	}
	return validateCheckRequest(req)
}

func validateCheckRequest(req *checkRequest) (*checkRequest, time.Time, *apiError) {
	if req.Checks == nil {
		return nil, time.Time{}, badRequest(codeInvalidArgument, "checks is required")
	}
	if len(req.Checks) > MaxChecks {
		return nil, time.Time{}, badRequest(codeTooManyChecks,
			strconv.Itoa(len(req.Checks))+" checks in one request; at most "+strconv.Itoa(MaxChecks))
	}
	at, e := parseTime(req.Time)
	if e != nil {
		return nil, time.Time{}, e
	}
	for i := range req.Checks {
		if e := checkUser(req.Checks[i].UserID); e != nil {
			e.Message = "checks[" + strconv.Itoa(i) + "]: " + e.Message
			return nil, time.Time{}, e
		}
	}
	return req, at, nil
}

// decodeExplainRequest decodes and validates an explanation request;
// exactly one of action, role and assign is checked by the engine.
func decodeExplainRequest(body []byte) (*explainRequest, time.Time, *apiError) {
	req, e := decodeExplain(body)
	if e != nil {
		return nil, time.Time{}, e
	}
	return validateExplainRequest(req)
}

func validateExplainRequest(req *explainRequest) (*explainRequest, time.Time, *apiError) {
	if e := checkUser(req.UserID); e != nil {
		return nil, time.Time{}, e
	}
	at, e := parseTime(req.Time)
	if e != nil {
		return nil, time.Time{}, e
	}
	return req, at, nil
}

// parseTime parses an optional RFC 3339 time; empty is the zero time (now).
func parseTime(s string) (time.Time, *apiError) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badRequest(codeInvalidTime, "time "+strconv.Quote(s)+" is not RFC 3339: "+err.Error())
	}
	return t, nil
}

var errBodyTooLarge = &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeBodyTooLarge, Message: bodyTooLargeMsg}

// serveBatch answers POST /v1/check: every check in order, all or nothing
// (one bad check fails the request with 400 naming its index).
func (h *handler) serveBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, e := h.readBody(w, r)
	if e != nil {
		h.fail(w, epBatch, e, start)
		return
	}
	req, at, e := decodeCheckRequest(body)
	if e != nil {
		h.fail(w, epBatch, e, start)
		return
	}
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epBatch, decError, start)
		return
	}
	results := make([]bool, len(req.Checks))
	allowed := 0
	for i, c := range req.Checks {
		d, err := st.snap.Check(engine.Question{User: c.UserID, Resource: c.ResourceURI, Action: c.Action, Environment: h.env, Time: at})
		if err != nil {
			e := questionError(err)
			e.Message = "checks[" + strconv.Itoa(i) + "]: " + e.Message
			h.fail(w, epBatch, e, start)
			return
		}
		results[i] = d.Allowed
		if d.Allowed {
			allowed++
		}
	}
	const allowItem, denyItem = `{"allowed":true}`, `{"allowed":false}`
	out := make([]byte, 0, len(`{"revision":,"results":[]}`)+len(st.revJSON)+len(results)*(len(denyItem)+1)+1)
	out = append(out, `{"revision":`...)
	out = append(out, st.revJSON...)
	out = append(out, `,"results":[`...)
	for i, ok := range results {
		if i > 0 {
			out = append(out, ',')
		}
		if ok {
			out = append(out, allowItem...)
		} else {
			out = append(out, denyItem...)
		}
	}
	out = append(out, "]}\n"...)
	w.Header()[HeaderRevision] = st.revHeader
	writeBody(w, http.StatusOK, out)
	h.m.requests[epBatch][decAllow].Add(float64(allowed))
	h.m.requests[epBatch][decDeny].Add(float64(len(results) - allowed))
	h.m.duration[epBatch].Observe(time.Since(start).Seconds())
}

// serveExplain answers POST /v1/explain: one question of any kind with its
// decision trace.
func (h *handler) serveExplain(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, e := h.readBody(w, r)
	if e != nil {
		h.fail(w, epExplain, e, start)
		return
	}
	req, at, e := decodeExplainRequest(body)
	if e != nil {
		h.fail(w, epExplain, e, start)
		return
	}
	st := h.current(w, r)
	if st == nil {
		h.m.observe(epExplain, decError, start)
		return
	}
	d, err := st.snap.Explain(engine.Question{
		User: req.UserID, Resource: req.ResourceURI,
		Action: req.Action, Role: req.Role, Assign: req.Assign,
		Environment: h.env, Time: at,
	})
	if err != nil {
		h.fail(w, epExplain, questionError(err), start)
		return
	}
	if d.Trace == nil {
		d.Trace = []engine.Step{}
	}
	w.Header()[HeaderRevision] = st.revHeader
	writeJSON(w, http.StatusOK, explainBody{Allowed: d.Allowed, Revision: d.Revision, Layer: d.Layer, Trace: d.Trace})
	h.m.observe(epExplain, allowDeny(d.Allowed), start)
}
