package engine

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// manyDocs returns a policy where alice holds User on n documents (one
// record each, half through a group), Writer below every fifth
// ("documents/dNNNNN/w", listed for reading too, being below a document
// she reads), and User on documentsx/d1, outside the collection.
func manyDocs(n int) *schema.PolicySet {
	b := std().group("team", "alice")
	for i := range n {
		who := "alice"
		if i%2 == 1 {
			who = "g:team"
		}
		b.rec(fmt.Sprintf("r%05d", i), who, stmt("User", fmt.Sprintf("documents/d%05d", i)))
		if i%5 == 0 {
			b.rec(fmt.Sprintf("e%05d", i), "alice", stmt("Writer", fmt.Sprintf("documents/d%05d/w", i)))
		}
	}
	return b.rec("x", "alice", stmt("User", "documentsx/d1")).p
}

func cursorOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestResourcesArguments(t *testing.T) {
	s, err := Build(manyDocs(30), "rev1")
	if err != nil {
		t.Fatal(err)
	}
	read := ResourceQuery{User: "alice", Action: "documents:read", Collection: "documents"}
	with := func(f func(q *ResourceQuery)) ResourceQuery {
		q := read
		f(&q)
		return q
	}
	for _, c := range []struct {
		name  string
		q     ResourceQuery
		arg   string // the QuestionError's argument, "" for no error
		is    error
		count int // resources on the page
		more  bool
	}{
		{name: "no limit: 20", q: read, count: DefaultListLimit, more: true},
		{name: "limit 1", q: with(func(q *ResourceQuery) { q.Limit = 1 }), count: 1, more: true},
		{name: "limit 35", q: with(func(q *ResourceQuery) { q.Limit = 35 }), count: 35, more: true},
		{name: "limit 36: all", q: with(func(q *ResourceQuery) { q.Limit = 36 }), count: 36},
		{name: "limit 1000", q: with(func(q *ResourceQuery) { q.Limit = MaxListLimit }), count: 36},
		{name: "limit 1001", q: with(func(q *ResourceQuery) { q.Limit = MaxListLimit + 1 }), arg: "limit", is: ErrBadLimit},
		{name: "limit -1", q: with(func(q *ResourceQuery) { q.Limit = -1 }), arg: "limit", is: ErrBadLimit},
		{name: "cursor after d00024", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("documents/d00024") }), count: 6},
		{name: "cursor of the collection", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("documents") }), count: 20, more: true},
		{name: "cursor of an unlisted resource", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("documents/d00024/zzz") }), count: 6},
		{name: "cursor of a pattern", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("documents/*") }), count: 20, more: true},
		{name: "cursor not base64", q: with(func(q *ResourceQuery) { q.Cursor = "!!" }), arg: "cursor", is: ErrBadCursor},
		{name: "cursor padded base64", q: with(func(q *ResourceQuery) { q.Cursor = base64.URLEncoding.EncodeToString([]byte("documents/d12")) }), arg: "cursor", is: ErrBadCursor},
		{name: "cursor outside the collection", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("documentsx/d1") }), arg: "cursor", is: ErrBadCursor},
		{name: "cursor not normalized", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("/documents/d1") }), arg: "cursor", is: ErrBadCursor},
		{name: "cursor with an empty segment", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("documents//d1") }), arg: "cursor", is: ErrBadCursor},
		{name: "cursor not UTF-8", q: with(func(q *ResourceQuery) { q.Cursor = cursorOf("documents/\xff") }), arg: "cursor", is: ErrBadCursor},
		{name: "bad collection", q: with(func(q *ResourceQuery) { q.Collection = "a//b" }), arg: "collection"},
		{name: "bad action", q: with(func(q *ResourceQuery) { q.Action = "documents:*" }), arg: "action"},
		{name: "bad user", q: with(func(q *ResourceQuery) { q.User = "" }), arg: "user"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := s.Resources(c.q)
			if c.arg != "" {
				var qe *QuestionError
				if !errors.As(err, &qe) || qe.Arg != c.arg || (c.is != nil && !errors.Is(err, c.is)) {
					t.Fatalf("err = %v, want a QuestionError about %s wrapping %v", err, c.arg, c.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Resources) != c.count || (l.Cursor != "") != c.more {
				t.Fatalf("%d resources, cursor %q; want %d, more %t", len(l.Resources), l.Cursor, c.count, c.more)
			}
			if c.more && l.Cursor != cursorOf(l.Resources[len(l.Resources)-1]) {
				t.Errorf("cursor %q is not that of the last resource %q", l.Cursor, l.Resources[len(l.Resources)-1])
			}
		})
	}
}

// TestResourcesPagedDifferential pages through large listings at several
// page sizes and compares the pages, joined, with the naive reference's
// whole answer: nothing lost, nothing repeated.
func TestResourcesPagedDifferential(t *testing.T) {
	p := manyDocs(500)
	s, err := Build(p, "rev1")
	if err != nil {
		t.Fatal(err)
	}
	at := mustTime("2026-01-15T10:00:00Z")
	for _, action := range []string{"documents:read", "documents:write", "other"} {
		want := renderList(refResources(p, "alice", "documents", action, "", at))
		for _, limit := range []int{1, 7, DefaultListLimit, 599, 600, MaxListLimit} {
			l, err := listAll(s, ResourceQuery{User: "alice", Action: action, Collection: "documents", Time: at}, limit)
			if err != nil {
				t.Fatalf("%s limit %d: %v", action, limit, err)
			}
			if got := renderList(l); got != want {
				t.Errorf("%s limit %d: paged listing differs from the reference:\n got %.200s\nwant %.200s", action, limit, got, want)
			}
		}
	}
}

// TestResourcesCursorAcrossRevisions: a cursor from one revision resumes
// on the next after the same resource, even when that resource is gone.
func TestResourcesCursorAcrossRevisions(t *testing.T) {
	p1 := manyDocs(10)
	s1, err := Build(p1, "one")
	if err != nil {
		t.Fatal(err)
	}
	q := ResourceQuery{User: "alice", Action: "documents:read", Collection: "documents", Limit: 4}
	page1, err := s1.Resources(q)
	if err != nil || len(page1.Resources) != 4 || page1.Resources[3] != "documents/d00002" {
		t.Fatalf("page 1: %+v %v", page1, err)
	}
	p2 := schema.NewPolicySet()
	p2.Roles, p2.Groups = p1.Roles, p1.Groups
	for id, r := range p1.Records {
		if id != "r00002" && id != "r00003" { // the last listed and the next
			p2.Records[id] = r
		}
	}
	p2.Records["new"] = std().rec("new", "alice", stmt("User", "documents/d00002a")).p.Records["new"]
	s2, err := s1.Apply(change.Between(p1, p2), "two")
	if err != nil {
		t.Fatal(err)
	}
	q.Cursor = page1.Cursor
	page2, err := s2.Resources(q)
	want := []string{"documents/d00002a", "documents/d00004", "documents/d00005", "documents/d00005/w"}
	if err != nil || !slices.Equal(page2.Resources, want) || page2.Revision != "two" {
		t.Errorf("page 2 on the next revision: %+v %v; want %v", page2, err, want)
	}
}

// TestResourcesWork: the first page of a listing of thousands keeps only
// limit+1 candidates to decide, not all of them.
func TestResourcesWork(t *testing.T) {
	s, err := Build(manyDocs(5_000), "rev1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Resources(ResourceQuery{User: "alice", Action: "documents:read", Collection: "documents"})
	if err != nil || len(l.Resources) != DefaultListLimit || l.Resources[0] != "documents/d00000" || l.Cursor == "" {
		t.Fatalf("%+v %v", l, err)
	}
	ls := &lister{s: s, e: s.newEval(&Question{User: "alice"}, "documents", nil), uri: "documents", act: "documents:read"}
	w := ls.window("", DefaultListLimit+1)
	if len(w.heap) != DefaultListLimit+1 || len(w.direct) != DefaultListLimit+1 || !w.full() {
		t.Errorf("the first window holds %d resources (%d flags, full %t), want %d", len(w.heap), len(w.direct), w.full(), DefaultListLimit+1)
	}
	if got, want := w.sorted()[DefaultListLimit], "documents/d00016"; got != want {
		t.Errorf("the window's last is %q, want %q (the 21st in order)", got, want)
	}
}
