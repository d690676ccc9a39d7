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
	var s *engine.Snapshot
	if v := r.Header[HeaderMinRevision]; len(v) > 0 && v[0] != "" {
		min := v[0]
		var ok bool
		if s, ok = h.awaitRevision(r.Context(), min); !ok && s != nil {
			w.Header()[HeaderRevision] = []string{s.Revision()}
			writeError(w, http.StatusConflict, codeRevisionBehind,
				"served revision "+strconv.Quote(s.Revision())+" is not "+strconv.Quote(min)+" or newer after waiting "+h.wait.String())
			return nil
		}
	} else {
		s = h.b.Snapshot()
	}
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, codeNoSnapshot, "no policy snapshot loaded yet")
		return nil
	}
	return h.stateFor(s)
}

// awaitRevision returns the served snapshot once it is min or a descendant
// of it, with true. When the one served is not, it asks the backend for a
// fetch and waits, for at most h.wait, for each new snapshot to be served
// (no polling: it sleeps until the backend signals a change), and it
// returns false with the snapshot served last (nil when there is none) if
// none of them satisfies min in time or the client goes away. The ancestry
// questions are bounded by the same wait.
func (h *handler) awaitRevision(ctx context.Context, min string) (*engine.Snapshot, bool) {
	ctx, cancel := context.WithTimeout(ctx, h.wait)
	defer cancel()
	asked := false
	for {
		changed := h.b.SnapshotChanged() // before Snapshot: a swap in between closes it
		s := h.b.Snapshot()
		if s != nil && h.satisfies(ctx, s.Revision(), min) {
			if asked {
				h.m.minRevWaited.Inc()
			} else {
				h.m.minRevSatisfied.Inc()
			}
			return s, true
		}
		if !asked {
			h.askFetch()
			asked = true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			h.m.minRevTimeout.Inc()
			return h.b.Snapshot(), false
		}
	}
}

// askFetch asks the backend for a fetch on behalf of a Charter-Min-Revision
// request, unless one was asked for less than minRevisionFetchInterval
// ago: a crowd of clients naming an unknown commit costs one fetch a
// second, not one per request. A request that does not ask still waits for
// the next snapshot served.
func (h *handler) askFetch() {
	now := time.Now().UnixNano()
	last := h.lastMinRevFetch.Load()
	if now-last < int64(minRevisionFetchInterval) || !h.lastMinRevFetch.CompareAndSwap(last, now) {
		return
	}
	h.b.Reconcile()
}

// satisfies reports whether served is min or, by the source's ancestry, a
// descendant of it. A history that cannot be read does not satisfy min; it
// is logged unless the wait ran out.
func (h *handler) satisfies(ctx context.Context, served, min string) bool {
	if served == min {
		return true
	}
	if h.includes == nil {
		return false
	}
	key := ancestryKey{served, min}
	if ok, found := h.ancestry.get(key); found {
		return ok
	}
	ok, err := h.includes(ctx, served, min)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("Charter-Min-Revision: reading the history failed", "served", served, "min", min, "err", err)
		}
		return false // not memoised: the next request asks again
	}
	// A commit's history never changes: the answer holds as long as the pair.
	h.ancestry.put(key, ok)
	return ok
}
