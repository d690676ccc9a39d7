package engine

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/charter-policy/charter/schema/match"
)

// Bounds of a page of Resources.
const (
	// DefaultListLimit is the page size of a ResourceQuery without Limit.
	DefaultListLimit = 20
	// MaxListLimit is the largest page size a ResourceQuery may ask for.
	MaxListLimit = 1000
)

// ErrBadLimit and ErrBadCursor are wrapped by the QuestionError of a
// ResourceQuery whose Limit or Cursor is not valid.
var (
	ErrBadLimit  = fmt.Errorf("limit must be between 1 and %d", MaxListLimit)
	ErrBadCursor = errors.New("not a cursor of this listing")
)

// ResourceQuery asks which resources at or below Collection User is
// allowed Action on (the Authress resource listing), one page at a time.
type ResourceQuery struct {
	User        string
	Action      string
	Collection  string
	Environment string
	// Time is the time of time policies; zero means now.
	Time time.Time
	// Limit is the page size: 1 to MaxListLimit; zero means DefaultListLimit.
	Limit int
	// Cursor is ResourceList.Cursor of the previous page; empty for the first.
	Cursor string
}

// ResourceList answers a ResourceQuery: one page of the listing.
type ResourceList struct {
	// Resources are the resource URIs, sorted, named in statements that
	// apply to the user at or below the collection, on which the user is
	// allowed the action. A statement pattern with a "*" segment is listed
	// as the pattern itself. There are at most Limit.
	Resources []string `json:"resources"`
	// AccessToAllSubResources is true when the user is allowed the action
	// on the collection itself, and so on everything below it.
	AccessToAllSubResources bool `json:"accessToAllSubResources"`
	// Cursor asks for the next page; it is empty when this page is the
	// last. It is opaque to clients (the base64url of the last resource
	// listed): the next page lists what sorts after that resource in the
	// snapshot it is asked of, so that paging across a new revision skips
	// nothing that is still there and repeats nothing.
	Cursor   string `json:"cursor,omitempty"`
	Revision string `json:"revision"`
}

// Resources answers q: one page of the resources at or below q.Collection
// on which q.User is allowed q.Action, sorted.
//
// The work is bounded by the page, not by the listing: the user's grants
// below the collection are scanned once (their keys are hashed for the
// check path, so they come in no useful order), keeping only the smallest
// Limit+1 resources after the cursor in a bounded heap; only those are
// decided. When some of them are denied, the scan is repeated after the
// last one decided, with a window twice as large.
func (s *Snapshot) Resources(q ResourceQuery) (ResourceList, error) {
	uri, err := parseUserResource(q.User, "collection", q.Collection)
	if err != nil {
		return ResourceList{}, err
	}
	act, err := parseAction(q.Action)
	if err != nil {
		return ResourceList{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || limit > MaxListLimit {
		return ResourceList{}, &QuestionError{Arg: "limit", Err: fmt.Errorf("%w, got %d", ErrBadLimit, q.Limit)}
	}
	after, err := decodeCursor(q.Cursor, uri)
	if err != nil {
		return ResourceList{}, err
	}
	question := Question{User: q.User, Environment: q.Environment, Time: q.Time}
	e := s.newEval(&question, uri, nil)
	out := ResourceList{Revision: s.revision, Resources: []string{}}
	out.AccessToAllSubResources = e.decideAction(act).Allowed

	l := lister{s: s, e: e, uri: uri, act: act, env: q.Environment}
	for size := limit + 1; ; size *= 2 {
		w := l.window(after, size)
		for _, c := range w.sorted() {
			after = c
			var ce evalCtx
			s.initEval(&ce, &question, c, nil)
			if !(w.direct[c] && len(ce.governing()) == 0 || ce.decideAction(act).Allowed) {
				continue
			}
			if len(out.Resources) == limit {
				// One more is allowed: there is a next page.
				out.Cursor = encodeCursor(out.Resources[limit-1])
				return out, nil
			}
			out.Resources = append(out.Resources, c)
		}
		if !w.full() {
			return out, nil // every candidate was decided
		}
	}
}

// encodeCursor returns the cursor of the page after resource.
func encodeCursor(resource string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(resource))
}

// decodeCursor returns the resource a cursor resumes after: a URI or
// pattern at or below the collection; "" for no cursor.
func decodeCursor(cursor, collection string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	bad := func(reason string) error {
		return &QuestionError{Arg: "cursor", Err: fmt.Errorf("%w: %s", ErrBadCursor, reason)}
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", bad("not base64url")
	}
	r := string(raw)
	if !utf8.ValidString(r) {
		return "", bad("not UTF-8")
	}
	if p, err := match.ParseURIPattern(r); err != nil || p.String() != r {
		return "", bad("not a resource")
	}
	if !underURI(r, collection) {
		return "", bad("a resource outside " + collection)
	}
	return r, nil
}

// lister finds the candidates of a listing: the resources named by the
// grants of the user and its groups at or below the collection.
type lister struct {
	s   *Snapshot
	e   *evalCtx
	uri string
	act string
	env string
	kb  keyBuf
}

// window scans every candidate and keeps the smallest size of those that
// sort after after, each with whether a statement naming it allows the
// action directly (those need no further lookup unless a resource server
// governs them).
func (l *lister) window(after string, size int) *window {
	w := newWindow(after, size)
	s := l.s
	l.kb.b = l.kb.arr[:0]
	for _, sub := range l.e.subjects() {
		l.kb.b = grantKey(l.kb.b[:0], sub.kind, sub.id, l.uri)
		it, err := s.txn.Get(tableGrants, indexIDPrefix, &l.kb)
		if err != nil {
			// The table and index are static: a programming error.
			panic(fmt.Sprintf("engine: list grants: %v", err))
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			for r := raw.(*grantRow); r != nil; r = r.next {
				u, ok := identURI(r.ident, sub.kind, sub.id)
				if !ok || !underURI(u, l.uri) || !w.wants(u) {
					continue // another subject (a collision), another place, or outside the window
				}
				for i := range r.grants {
					if g := &r.grants[i]; g.inEnv(l.env) {
						w.add(u, s.grantAllows(g, l.act))
					}
				}
			}
		}
		if !s.hasWildcards {
			continue
		}
		l.kb.b = subjectKey(l.kb.b[:0], sub.kind, sub.id)
		raw, _ := s.lookup(tableWildcardGrants, &l.kb).(*wildcardRow)
		for r := raw; r != nil; r = r.next {
			if !subjectIdentIs(r.ident, sub.kind, sub.id) {
				continue
			}
			for i := range r.grants {
				g := &r.grants[i]
				if p := g.pattern.String(); g.inEnv(l.env) && underURI(p, l.uri) && w.wants(p) {
					w.add(p, s.grantAllows(&g.grant, l.act))
				}
			}
		}
	}
	return w
}

// window keeps the smallest size distinct resources that sort after a
// bound: a max-heap of them, and whether a statement allows each directly.
type window struct {
	after  string
	size   int
	heap   []string // max-heap
	direct map[string]bool
	// dropped is set once a resource in the window was pushed out or one
	// was refused for being too large: there may be more after the window.
	dropped bool
}

func newWindow(after string, size int) *window {
	return &window{after: after, size: size, direct: map[string]bool{}}
}

// wants reports whether u belongs in the window as it stands: after the
// bound, and either already in it, or small enough. It records a refusal.
func (w *window) wants(u string) bool {
	if u <= w.after {
		return false
	}
	if len(w.heap) < w.size || u < w.heap[0] {
		return true
	}
	if _, ok := w.direct[u]; ok {
		return true
	}
	w.dropped = true
	return false
}

// add puts u in the window (wants(u) must have said yes); allows is ORed.
func (w *window) add(u string, allows bool) {
	if d, ok := w.direct[u]; ok {
		w.direct[u] = d || allows
		return
	}
	if len(w.heap) == w.size {
		// Push out the largest.
		delete(w.direct, w.heap[0])
		w.heap[0] = w.heap[len(w.heap)-1]
		w.heap = w.heap[:len(w.heap)-1]
		w.down(0)
		w.dropped = true
	}
	w.direct[u] = allows
	w.heap = append(w.heap, u)
	w.up(len(w.heap) - 1)
}

// full reports whether there may be candidates after the window's last.
func (w *window) full() bool { return w.dropped }

// sorted returns the window's resources in order.
func (w *window) sorted() []string {
	out := slices.Clone(w.heap)
	slices.Sort(out)
	return out
}

func (w *window) up(i int) {
	h := w.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p] >= h[i] {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (w *window) down(i int) {
	h := w.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] > h[l] {
			m = r
		}
		if h[i] >= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// underURI reports whether uri equals prefix or lies below it.
func underURI(uri, prefix string) bool {
	if len(uri) == len(prefix) {
		return uri == prefix
	}
	return len(uri) > len(prefix) && uri[len(prefix)] == '/' && uri[:len(prefix)] == prefix
}
