package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/charter-policy/charter/engine"
)

// snapState caches, per served snapshot, what every decision response
// repeats: the header value and the two possible bodies of a yes/no answer,
// so that the check route encodes nothing.
type snapState struct {
	snap      *engine.Snapshot
	revHeader []string // Charter-Revision value
	revJSON   []byte   // the revision as a JSON string
	allowBody []byte   // {"allowed":true,"revision":...}
	denyBody  []byte
	allowLen  []string // Content-Length values
	denyLen   []string
}

func newSnapState(s *engine.Snapshot) *snapState {
	rev := s.Revision()
	revJSON, _ := json.Marshal(rev) // a string always encodes
	st := &snapState{snap: s, revHeader: []string{rev}, revJSON: revJSON}
	st.allowBody = decisionBody(true, revJSON)
	st.denyBody = decisionBody(false, revJSON)
	st.allowLen = []string{strconv.Itoa(len(st.allowBody))}
	st.denyLen = []string{strconv.Itoa(len(st.denyBody))}
	return st
}

func decisionBody(allowed bool, revJSON []byte) []byte {
	b := []byte(`{"allowed":`)
	b = strconv.AppendBool(b, allowed)
	b = append(b, `,"revision":`...)
	b = append(b, revJSON...)
	return append(b, "}\n"...)
}

// stateFor returns the cached state of s, building it when s is not the
// snapshot cached last. Concurrent builders race harmlessly: the states they
// build are equal.
func (h *handler) stateFor(s *engine.Snapshot) *snapState {
	if st := h.state.Load(); st != nil && st.snap == s {
		return st
	}
	st := newSnapState(s)
	h.state.Store(st)
	return st
}

// writeDecision answers a yes/no question: 200 when allowed, else 404, with
// the cached body and the revision header. It allocates nothing itself.
func (st *snapState) writeDecision(w http.ResponseWriter, allowed bool) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	hdr[HeaderRevision] = st.revHeader
	if allowed {
		hdr["Content-Length"] = st.allowLen
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(st.allowBody)
		return
	}
	hdr["Content-Length"] = st.denyLen
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(st.denyBody)
}

// current returns the state of the snapshot to answer r from. It honors
// Charter-Min-Revision; when there is no snapshot (503) or not the one asked
// for (409), it answers the request itself and returns nil.
func (h *handler) current(w http.ResponseWriter, r *http.Request) *snapState {
	s := h.b.Snapshot()
	if v := r.Header[HeaderMinRevision]; len(v) > 0 && v[0] != "" {
		min := v[0]
		if s == nil || !h.satisfies(s.Revision(), min) {
			s = h.awaitRevision(r.Context(), min)
			if s != nil && !h.satisfies(s.Revision(), min) {
				w.Header()[HeaderRevision] = []string{s.Revision()}
				writeError(w, http.StatusConflict, codeMinRevision,
					"served revision "+strconv.Quote(s.Revision())+" is not "+strconv.Quote(min)+" or newer after waiting "+h.wait.String())
				return nil
			}
		}
	}
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, codeNoSnapshot, "no policy snapshot loaded yet")
		return nil
	}
	return h.stateFor(s)
}

func (h *handler) satisfies(served, min string) bool {
	if served == min {
		return true
	}
	return h.includes != nil && h.includes(served, min)
}

// minRevisionPoll is how often a request waiting for a revision looks again.
const minRevisionPoll = 10 * time.Millisecond

// awaitRevision asks the backend to fetch now and polls until it serves min
// (or a descendant), the wait passes or the client goes away. It returns the
// snapshot served last, which may still be behind, or nil.
func (h *handler) awaitRevision(ctx context.Context, min string) *engine.Snapshot {
	h.b.Reconcile()
	deadline := time.NewTimer(h.wait)
	defer deadline.Stop()
	tick := time.NewTicker(minRevisionPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return h.b.Snapshot()
		case <-deadline.C:
			return h.b.Snapshot()
		case <-tick.C:
			if s := h.b.Snapshot(); s != nil && h.satisfies(s.Revision(), min) {
				return s
			}
		}
	}
}
