package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
)

// Target names (flag -target).
const (
	targetCheck   = "check"
	targetBatch   = "batch"
	targetHealthz = "healthz"
)

// request is one prepared request; bodies and URLs are built before the run
// so the loop itself only sends.
type request struct {
	method string
	url    string
	body   []byte
}

// target is what a phase sends: a ring of prepared requests and how to judge
// the answers.
type target struct {
	name     string
	requests []request
	perReq   int // checks answered by one successful request
}

// success reports whether a status is a successful answer for this target:
// a single check is answered 200 (allowed) or 404 (denied); the others 200.
func (t *target) success(status int) bool {
	if t.name == targetCheck {
		return status == 200 || status == 404
	}
	return status == 200
}

// checkPath is the single-check route with every parameter escaped as one
// path segment, so "documents/d1" travels as "documents%2Fd1".
func checkPath(q question) string {
	return "/v1/users/" + url.PathEscape(q.User) +
		"/resources/" + url.PathEscape(q.Resource) +
		"/permissions/" + url.PathEscape(q.Action)
}

// maxBatchBodies bounds the memory the prepared batch bodies take.
const maxBatchBodies = 1024

// newTarget prepares the requests of a target against base (e.g.
// "http://127.0.0.1:8181").
func newTarget(name, base string, qs []question, batch int) (*target, error) {
	switch name {
	case targetHealthz:
		return &target{name: name, perReq: 1, requests: []request{{method: "GET", url: base + "/healthz"}}}, nil
	case targetCheck:
		t := &target{name: name, perReq: 1, requests: make([]request, len(qs))}
		for i, q := range qs {
			t.requests[i] = request{method: "GET", url: base + checkPath(q)}
		}
		return t, nil
	case targetBatch:
		if batch < 1 {
			return nil, fmt.Errorf("-batch must be at least 1")
		}
		n := min(max(len(qs)/batch, 1), maxBatchBodies)
		t := &target{name: name, perReq: batch, requests: make([]request, n)}
		checks := make([]question, batch)
		for i := range t.requests {
			for k := range checks {
				checks[k] = qs[(i*batch+k)%len(qs)]
			}
			body, err := json.Marshal(struct {
				Checks []question `json:"checks"`
			}{checks})
			if err != nil {
				return nil, err
			}
			t.requests[i] = request{method: "POST", url: base + "/v1/check", body: body}
		}
		return t, nil
	}
	return nil, fmt.Errorf("unknown -target %q (want check, batch or healthz)", name)
}

// allowedKey is counted in a batch answer: one per result.
var allowedKey = []byte(`"allowed"`)

// batchBodyOK reports whether a batch answer holds one result per check.
func batchBodyOK(body []byte, checks int) bool {
	return bytes.Count(body, allowedKey) == checks
}
