package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
	"github.com/charter-policy/charter/schema/match"
)

// whoPolicy: alice is Editor on documents; the team group (bob, carol) is
// User on documents/d1, where dave, named by the statement itself, is
// Viewer; erin is User on documents/d1 in prod only. The api server
// governs api/reports: frank, whom only a user policy names, may read, and
// so may holders of Editor (gina, through a record); everyone but frank
// may write (a negative user policy).
func whoPolicy() *schema.PolicySet {
	b := std().group("team", "bob", "carol").
		rec("owners", "alice", stmt("Editor", "documents")).
		rec("d1", "g:team", stmt("User", "documents/d1"), stmt("Viewer", "documents/d1", "dave")).
		recEnv("prod-only", "prod", "erin", stmt("User", "documents/d1")).
		rec("api-editors", "gina", stmt("Editor", "api"))
	b.srv("api", "affirmative", "enforcing").res("reports", "report", "api/reports", "").
		pol(userPol("frank-only", "frank")).pol(rolePol("editors", "Editor", false)).pol(neg(userPol("not-frank", "frank"))).
		scopePerm("read", "reports:read", "", "frank-only,editors", "affirmative", "").
		scopePerm("write", "reports:write", "", "not-frank", "", "")
	return b.p
}

// renderUsers renders a listing: "user[roles](via, ...)" per user, then the
// groups and the users allowed besides, with each via's source checked
// against the policy.
func renderUsers(t *testing.T, p *schema.PolicySet, l UserList) string {
	t.Helper()
	via := func(vs []Via) string {
		var out []string
		for _, v := range vs {
			s := v.Kind + ":" + v.ID
			var want string
			switch v.Kind {
			case ViaRecord, ViaGroup:
				// The statement at the source, which must name the pattern.
				rec := p.Records[cmpOr(v.Record, v.ID)]
				want = "a statement of " + rec.ID + " on " + v.Pattern
				for i, st := range rec.Statements {
					if st.Pos.Short() == v.Source && slices.ContainsFunc(st.Resources, func(r string) bool { return normPattern(r) == v.Pattern }) {
						want = v.Source
						s += fmt.Sprintf("@%s[%d]", rec.ID, i)
					}
				}
				s += "@" + v.Pattern
			case ViaPermission:
				want = p.ResourceServers[v.Server].Permissions[v.ID].Pos.Short()
			case ViaResourceServer:
				want = p.ResourceServers[v.ID].Pos.Short()
			}
			if v.Source != want {
				t.Errorf("via %+v: source %q, want %q", v, v.Source, want)
			}
			out = append(out, s)
		}
		return strings.Join(out, ", ")
	}
	var parts []string
	for _, u := range l.Users {
		parts = append(parts, fmt.Sprintf("%s%v(%s)", u.User, u.Roles, via(u.Via)))
	}
	for _, g := range l.Groups {
		parts = append(parts, fmt.Sprintf("group %s%v(%s)", g.Group, g.Roles, via(g.Via)))
	}
	if l.AllUsers != nil {
		parts = append(parts, fmt.Sprintf("all but %v(%s)", l.AllUsers.Except, via(l.AllUsers.Via)))
	}
	return l.Layer + ": " + strings.Join(parts, "; ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestUsers(t *testing.T) {
	p := whoPolicy()
	s, err := Build(p, "one")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    UsersQuery
		want string
	}{
		{"read: records, groups, every environment", UsersQuery{Resource: "documents/d1", Action: "documents:read"},
			"records: alice[](record:owners@owners[0]@documents); bob[](group:team@d1[0]@documents/d1); carol[](group:team@d1[0]@documents/d1); " +
				"erin[](record:prod-only@prod-only[0]@documents/d1); group team[](group:team@d1[0]@documents/d1)"},
		{"another environment leaves erin out", UsersQuery{Resource: "/documents/d1/page/2/", Action: "DOCUMENTS:READ", Environment: "stg"},
			"records: alice[](record:owners@owners[0]@documents); bob[](group:team@d1[0]@documents/d1); carol[](group:team@d1[0]@documents/d1); " +
				"group team[](group:team@d1[0]@documents/d1)"},
		{"write: Editor only", UsersQuery{Resource: "documents/d1", Action: "documents:write"},
			"records: alice[](record:owners@owners[0]@documents)"},
		{"a role named by a statement's own users", UsersQuery{Resource: "documents/d1", Role: "Viewer"},
			"records: dave[](record:d1@d1[1]@documents/d1)"},
		{"every role held", UsersQuery{Resource: "documents/d1", Environment: "prod"},
			"records: alice[Editor](record:owners@owners[0]@documents); bob[User](group:team@d1[0]@documents/d1); carol[User](group:team@d1[0]@documents/d1); " +
				"dave[Viewer](record:d1@d1[1]@documents/d1); erin[User](record:prod-only@prod-only[0]@documents/d1); group team[User](group:team@d1[0]@documents/d1)"},
		{"nobody on an unmentioned resource", UsersQuery{Resource: "elsewhere", Action: "documents:read"}, "records: "},
		{"a server: a user only its user policy names, and a role holder", UsersQuery{Resource: "api/reports/r1", Action: "reports:read"},
			"resourceServer: frank[](permission:read); gina[](permission:read)"},
		{"a server's negative policy: everyone but frank", UsersQuery{Resource: "api/reports/r1", Action: "reports:write"},
			"resourceServer: gina[](permission:write); all but [frank](permission:write)"},
		{"a server with no applicable permission denies everyone", UsersQuery{Resource: "api/reports", Action: "reports:delete"}, "resourceServer: "},
		{"roles stay with the records under a server", UsersQuery{Resource: "api/reports", Role: "Editor"},
			"records: gina[](record:api-editors@api-editors[0]@api)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := s.Users(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := renderUsers(t, p, l); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if l.Revision != "one" || l.Cursor != "" {
				t.Errorf("revision %q, cursor %q", l.Revision, l.Cursor)
			}
		})
	}
}

func TestUsersBadQuestions(t *testing.T) {
	s, err := Build(whoPolicy(), "one")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    UsersQuery
		arg  string
		want error
	}{
		{UsersQuery{Resource: "documents/*", Action: "documents:read"}, "resource", match.ErrWildcardURI},
		{UsersQuery{Resource: "documents/d1", Action: "documents:*"}, "action", match.ErrWildcardAction},
		{UsersQuery{Resource: "documents/d1", Action: "documents:read", Role: "User"}, "question", ErrActionAndRole},
		{UsersQuery{Resource: "documents/d1", Role: "Nope"}, "role", ErrUnknownRole},
		{UsersQuery{Resource: "documents/d1", Limit: -1}, "limit", ErrBadLimit},
		{UsersQuery{Resource: "documents/d1", Limit: MaxListLimit + 1}, "limit", ErrBadLimit},
		{UsersQuery{Resource: "documents/d1", Cursor: "not a cursor"}, "cursor", ErrBadCursor},
		{UsersQuery{Resource: "documents/d1", Cursor: "AAAA"}, "cursor", ErrBadCursor},
		{UsersQuery{Resource: "documents/d1", Cursor: strings.Repeat("A", maxUsersCursor+1)}, "cursor", ErrBadCursor},
	}
	for _, tt := range tests {
		_, err := s.Users(tt.q)
		var qe *QuestionError
		if !errors.As(err, &qe) || qe.Arg != tt.arg || !errors.Is(err, tt.want) {
			t.Errorf("%+v: error %v, want a QuestionError on %s wrapping %v", tt.q, err, tt.arg, tt.want)
		}
	}
	for _, sub := range []Subject{{"robot", "x"}, {SubjectUser, ""}, {SubjectUser, "a\x01b"}} {
		var qe *QuestionError
		if _, err := s.Grants(sub, ""); !errors.As(err, &qe) {
			t.Errorf("Grants(%+v): error %v, want a QuestionError", sub, err)
		}
	}
	for _, r := range []string{"", "a//b", "a/../b", "a/b*"} {
		if _, err := s.StatementsCovering(r, ""); err == nil {
			t.Errorf("StatementsCovering(%q) accepted", r)
		}
		if _, err := s.StatementsBelow(r, ""); err == nil {
			t.Errorf("StatementsBelow(%q) accepted", r)
		}
	}
}

// TestUsersCursor pages through a listing and then offers its cursor where
// it does not belong: another question, another revision, another
// process's snapshot, or altered. Each is an error, never a page.
func TestUsersCursor(t *testing.T) {
	p := whoPolicy()
	s, err := Build(p, "one")
	if err != nil {
		t.Fatal(err)
	}
	q := UsersQuery{Resource: "documents/d1", Limit: 2}
	first, err := s.Users(q)
	if err != nil || first.Cursor == "" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	var users []string
	for l := first; ; {
		for _, u := range l.Users {
			users = append(users, u.User)
		}
		if l.Cursor == "" {
			break
		}
		q.Cursor = l.Cursor
		if l, err = s.Users(q); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"alice", "bob", "carol", "dave", "erin"}; !slices.Equal(users, want) {
		t.Errorf("pages hold %q, want %q", users, want)
	}

	next, err := s.Apply(change.Between(p, p), "two")
	if err != nil {
		t.Fatal(err)
	}
	other, err := Build(p, "one")
	if err != nil {
		t.Fatal(err)
	}
	c := first.Cursor
	flipped := []byte(c)
	flipped[len(flipped)/2] ^= 1
	tests := []struct {
		name   string
		s      *Snapshot
		q      UsersQuery
		stale  bool
		reason string
	}{
		{"another revision", next, UsersQuery{Resource: "documents/d1", Cursor: c}, true, "another revision"},
		{"another question", s, UsersQuery{Resource: "documents/d1", Role: "User", Cursor: c}, false, "another question"},
		{"another resource", s, UsersQuery{Resource: "documents/d2", Cursor: c}, false, "another question"},
		{"another environment", s, UsersQuery{Resource: "documents/d1", Environment: "prod", Cursor: c}, false, "another question"},
		{"another process", other, UsersQuery{Resource: "documents/d1", Cursor: c}, false, "not issued by this server"},
		{"altered", s, UsersQuery{Resource: "documents/d1", Cursor: string(flipped)}, false, ""},
		{"cut short", s, UsersQuery{Resource: "documents/d1", Cursor: c[:len(c)-3]}, false, ""},
	}
	for _, tt := range tests {
		_, err := tt.s.Users(tt.q)
		var qe *QuestionError
		if !errors.As(err, &qe) || qe.Arg != "cursor" || !errors.Is(err, ErrBadCursor) || errors.Is(err, ErrStaleCursor) != tt.stale ||
			!strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: error %v, want a bad cursor (stale %t, %q)", tt.name, err, tt.stale, tt.reason)
		}
	}
}

// FuzzUsersCursor offers arbitrary cursors, and a real one with one byte
// changed: each is refused as a bad cursor, never answered with a page,
// unless it is the real one.
// Run it with: go test ./engine -run '^$' -fuzz FuzzUsersCursor -fuzztime 1m
func FuzzUsersCursor(f *testing.F) {
	s, err := Build(whoPolicy(), "one")
	if err != nil {
		f.Fatal(err)
	}
	q := UsersQuery{Resource: "documents/d1", Limit: 2}
	first, err := s.Users(q)
	if err != nil {
		f.Fatal(err)
	}
	q.Cursor = first.Cursor
	second, err := s.Users(q)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("", uint16(0), byte(0))
	f.Add("AQ", uint16(3), byte(1))
	f.Add(strings.Repeat("_", 60), uint16(59), byte(0x20))
	f.Fuzz(func(t *testing.T, cursor string, at uint16, flip byte) {
		for _, c := range []string{cursor, mutateAt(first.Cursor, int(at), flip)} {
			q.Cursor = c
			l, err := s.Users(q)
			switch {
			case c == first.Cursor:
				if err != nil || !slices.EqualFunc(l.Users, second.Users, func(a, b UserAccess) bool { return a.User == b.User }) {
					t.Fatalf("the real cursor: %+v, %v", l, err)
				}
			case c == "":
				if err != nil {
					t.Fatalf("no cursor: %v", err)
				}
			case !errors.Is(err, ErrBadCursor):
				t.Fatalf("cursor %q: page %+v, error %v; want a bad cursor", c, l, err)
			}
		}
	})
}

func mutateAt(s string, at int, flip byte) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	b[at%len(b)] ^= flip
	return string(b)
}
