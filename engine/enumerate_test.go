package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// buildChunked builds p with statement-index rows of at most chunkMax
// entries, so that small policies exercise splits and merges.
func buildChunked(p *schema.PolicySet, revision string, chunkMax int) (*Snapshot, error) {
	e := Empty("")
	e.chunkMax = chunkMax
	return e.Apply(change.Between(nil, p), revision)
}

// chunkEntries checks the invariants of a chunked table (rows of 1 to max
// entries, at least max/4 but in the last row, keyed by their last entry,
// entries strictly increasing across rows) and returns its entries in order.
func chunkEntries[E indexEntry[E]](t *testing.T, s *Snapshot, table string, max int) []E {
	t.Helper()
	it, err := s.txn.Get(table, indexID)
	if err != nil {
		t.Fatal(err)
	}
	var out []E
	var prev, key []byte
	small := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		row := raw.(*chunkRow[E])
		if n := len(row.entries); n == 0 || n > max || small > 0 {
			t.Fatalf("%s: a row of %d entries (max %d), or one of %d before it", table, n, max, small)
		}
		if len(row.entries) < max/4 {
			small = len(row.entries)
		}
		for _, e := range row.entries {
			key = e.appendKey(key[:0])
			if prev != nil && bytes.Compare(prev, key) >= 0 {
				t.Fatalf("%s: entries out of order: %q then %q", table, prev, key)
			}
			prev = append(prev[:0], key...)
		}
		if !bytes.Equal(row.key, key) {
			t.Fatalf("%s: row key %q, its last entry's %q", table, row.key, key)
		}
		out = append(out, row.entries...)
	}
	return out
}

// checkIndexes compares the statement indexes of s with p, entry by entry.
func checkIndexes(t *testing.T, s *Snapshot, p *schema.PolicySet, max int) {
	t.Helper()
	var got, want []string
	for _, e := range chunkEntries[patternRef](t, s, tablePatternStatements, max) {
		got = append(got, refRow(e.rec, int(e.stmt), e.pattern()))
	}
	refRows(p, "", func(r *schema.Record, i int, pattern string) { want = append(want, refRow(r, i, pattern)) })
	if want = refOrder(want); !slices.Equal(got, want) {
		t.Fatalf("pattern index of %s:\n got %q\nwant %q", s.Revision(), got, want)
	}
	got, want = nil, nil
	for _, e := range chunkEntries[roleRef](t, s, tableRoleStatements, max) {
		got = append(got, fmt.Sprintf("%s %s %d", e.roleID(), e.rec.ID, e.stmt))
	}
	for _, r := range p.Records {
		for i, st := range r.Statements {
			for _, role := range st.Roles {
				want = append(want, fmt.Sprintf("%s %s %d", role, r.ID, i))
			}
		}
	}
	key := func(row string) string {
		f := strings.Fields(row)
		n, _ := strconv.Atoi(f[2])
		return fmt.Sprintf("%s\x00%s\x00%08d", f[0], f[1], n)
	}
	sort.Slice(want, func(i, j int) bool { return key(want[i]) < key(want[j]) })
	if want = slices.Compact(want); !slices.Equal(got, want) {
		t.Fatalf("role index of %s:\n got %q\nwant %q", s.Revision(), got, want)
	}
}

func renderStatement(ps PolicyStatement) string {
	return fmt.Sprintf("%s %s[%d] roles=%s users=%s groups=%s env=%s at %s", ps.Pattern, ps.Record, ps.Statement,
		strings.Join(ps.Roles, ","), strings.Join(ps.Users, ","), strings.Join(ps.Groups, ","), ps.Environment, ps.Source)
}

// universe is what a random policy mentions, plus one unmentioned of each.
type universe struct {
	users     []string
	groups    []string
	roles     []string
	patterns  []string // as written, "*" segments kept
	resources []string // concrete URIs: the patterns with "*" segments filled in
	actions   []string
}

func universeOf(p *schema.PolicySet) universe {
	set := func(ss ...[]string) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s...)
		}
		sort.Strings(out)
		return slices.Compact(out)
	}
	u := universe{users: slices.Clone(genQUsers), groups: append(slices.Clone(genGroups), "g-none"),
		roles: append(slices.Clone(genRoles), "R-none"), patterns: []string{"elsewhere/x"},
		resources: append(slices.Clone(genQRes), "elsewhere/x"), actions: append(slices.Clone(genQActions), "unmentioned:act")}
	for _, g := range p.Groups {
		u.users = append(u.users, g.Users...)
	}
	addPattern := func(res string) {
		n, ok := refURI(res)
		if !ok {
			return
		}
		segs := strings.Split(n, "/")
		for i, seg := range segs {
			if seg == "*" {
				segs[i] = "w"
			}
		}
		concrete := strings.Join(segs, "/")
		u.patterns = append(u.patterns, n, "/"+n)
		u.resources = append(u.resources, concrete, concrete+"/deeper")
	}
	for _, r := range p.Records {
		u.users = append(u.users, r.Users...)
		for _, st := range r.Statements {
			u.users = append(u.users, st.Users...)
			for _, res := range st.Resources {
				addPattern(res)
			}
		}
	}
	for _, r := range p.Roles {
		for _, rp := range r.Permissions {
			if a := strings.TrimSuffix(strings.TrimSuffix(rp.Action, "*"), ":"); a != "" {
				u.actions = append(u.actions, a, a+":sub")
			}
		}
	}
	for _, s := range p.ResourceServers {
		u.actions = append(u.actions, s.Scopes...)
		for _, res := range s.Resources {
			for _, uri := range res.URIs {
				addPattern(uri)
			}
		}
		for _, pol := range s.Policies {
			u.users = append(u.users, pol.Users...)
		}
	}
	u.users = set(u.users)
	u.patterns, u.actions, u.resources = set(u.patterns), set(u.actions), set(u.resources)
	return u
}

var envs = []string{"", "prod", "stg"}

// enumerateDifferential checks, for one seed, every enumeration of a random
// policy and of three random changes applied to it against the naive
// reference, and the user listings against Check.
func enumerateDifferential(t *testing.T, seed uint64, full bool) {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed>>32|1))}
	chunkMax := []int{3, 4, 8, 12, defaultChunkMax}[seed%5]
	ps := []*schema.PolicySet{g.policy()}
	for range 3 {
		ps = append(ps, g.mutate(ps[len(ps)-1]))
	}
	s, err := buildChunked(ps[0], "rev0", chunkMax)
	if err != nil {
		t.Fatalf("seed %d: build: %v", seed, err)
	}
	snaps := []*Snapshot{s}
	for i := 1; i < len(ps); i++ {
		if s, err = s.Apply(change.Between(ps[i-1], ps[i]), fmt.Sprintf("rev%d", i)); err != nil {
			t.Fatalf("seed %d: apply: %v", seed, err)
		}
		snaps = append(snaps, s)
	}
	at := mustTime(g.pick(genTimes))
	for i, s := range snaps {
		p := ps[i]
		checkIndexes(t, s, p, chunkMax)
		if !full && i > 0 && i < len(snaps)-1 {
			continue // the indexes of every revision; the questions of the first and last
		}
		u := universeOf(p)
		fail := func(what string, got, want any) {
			t.Helper()
			t.Fatalf("seed %d revision %s: %s:\n got %q\nwant %q", seed, s.Revision(), what, got, want)
		}
		for _, env := range envs {
			for _, kind := range []string{SubjectUser, SubjectGroup} {
				ids := u.users
				if kind == SubjectGroup {
					ids = u.groups
				}
				for _, id := range ids {
					gs, err := s.Grants(Subject{kind, id}, env)
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, g := range gs {
						got = append(got, renderStatement(g.PolicyStatement)+" via "+g.Via.Kind+":"+g.Via.ID)
					}
					if want := refGrants(p, kind, id, env); !slices.Equal(got, want) {
						fail(fmt.Sprintf("grants of %s %s in %q", kind, id, env), got, want)
					}
				}
			}
			for _, role := range u.roles {
				var got []string
				for _, h := range s.RoleHolders(role, env) {
					got = append(got, h.Subject.Kind+":"+h.Subject.ID+" "+renderStatement(h.PolicyStatement))
				}
				if want := refHolders(p, role, env); !slices.Equal(got, want) {
					fail(fmt.Sprintf("holders of %s in %q", role, env), got, want)
				}
			}
			for _, pattern := range u.patterns {
				norm, _ := refURI(pattern)
				for _, q := range []struct {
					name string
					fn   func(string, string) ([]PolicyStatement, error)
					ref  func(*schema.PolicySet, string, string) []string
				}{{"covering", s.StatementsCovering, refCovering}, {"below", s.StatementsBelow, refBelow}} {
					sts, err := q.fn(pattern, env)
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, st := range sts {
						got = append(got, renderStatement(st))
					}
					if want := q.ref(p, norm, env); !slices.Equal(got, want) {
						fail(fmt.Sprintf("statements %s %s in %q", q.name, pattern, env), got, want)
					}
				}
			}
		}
		for _, res := range u.resources {
			env := g.pick(genEnvs)
			limit := 1 + g.r.IntN(3)
			if g.chance(0.2) {
				limit = MaxListLimit
			}
			for _, act := range u.actions {
				checkUsers(t, seed, s, p, u, UsersQuery{Resource: res, Action: act, Environment: env, Time: at}, limit)
			}
			for _, role := range genRoles {
				checkUsers(t, seed, s, p, u, UsersQuery{Resource: res, Role: role, Environment: env, Time: at}, limit)
			}
			checkUsers(t, seed, s, p, u, UsersQuery{Resource: res, Environment: env, Time: at}, limit)
		}
	}
}

// listUsers pages through a user listing, limit at a time, checking the
// paging rules, and returns the pages joined.
func listUsers(s *Snapshot, q UsersQuery, limit int) (UserList, error) {
	q.Limit = limit
	var all UserList
	for page := 0; ; page++ {
		l, err := s.Users(q)
		if err != nil {
			return UserList{}, err
		}
		switch {
		case len(l.Users) > limit:
			return all, fmt.Errorf("page %d: %d users, limit %d", page, len(l.Users), limit)
		case l.Cursor != "" && len(l.Users) != limit:
			return all, fmt.Errorf("page %d: %d users before a cursor, limit %d", page, len(l.Users), limit)
		case page > 0 && (l.Groups != nil || l.AllUsers != nil):
			return all, fmt.Errorf("page %d repeats the groups or allUsers of the first", page)
		case l.Revision != s.Revision() || page > 0 && (l.Layer != all.Layer || l.Resource != all.Resource):
			return all, fmt.Errorf("page %d: revision %q, layer %q, resource %q", page, l.Revision, l.Layer, l.Resource)
		}
		if page == 0 {
			all = l
		} else {
			all.Users = append(all.Users, l.Users...)
		}
		if l.Cursor == "" {
			break
		}
		if page > 1000 {
			return all, fmt.Errorf("more than 1000 pages")
		}
		q.Cursor = l.Cursor
	}
	for i := 1; i < len(all.Users); i++ {
		if all.Users[i-1].User >= all.Users[i].User {
			return all, fmt.Errorf("users out of order or repeated: %q then %q", all.Users[i-1].User, all.Users[i].User)
		}
	}
	return all, nil
}

func renderVias(vias []Via) []string {
	var out []string
	for _, v := range vias {
		switch v.Kind {
		case ViaRecord:
			out = append(out, fmt.Sprintf("record:%s@%s@%s", v.ID, v.Pattern, v.Source))
		case ViaGroup:
			out = append(out, fmt.Sprintf("group:%s@%s@%s@%s", v.ID, v.Record, v.Pattern, v.Source))
		case ViaPermission:
			out = append(out, "permission:"+v.ID+"@"+v.Server)
		default:
			out = append(out, v.Kind+":"+v.ID)
		}
	}
	n := len(out)
	sort.Strings(out)
	if len(slices.Compact(slices.Clone(out))) != n {
		return append(out, "(repeated)")
	}
	return out
}

// checkUsers compares a user listing with Check (or with the roles held,
// for a role or no question) for every user of the universe and every
// user listed, and each user's vias with the reference.
func checkUsers(t *testing.T, seed uint64, s *Snapshot, p *schema.PolicySet, u universe, q UsersQuery, limit int) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d revision %s: users %+v (limit %d): %s", seed, s.Revision(), q, limit, fmt.Sprintf(format, args...))
	}
	l, err := listUsers(s, q, limit)
	if err != nil {
		fail("%v", err)
	}
	uri, _ := refURI(q.Resource)
	governed := false
	for _, srv := range p.ResourceServers {
		gov, _ := refServerDecides(p, srv, "", uri, "x", q.Environment, q.Time)
		governed = governed || gov
	}
	wantLayer := LayerRecords
	if q.Action != "" && governed {
		wantLayer = LayerResourceServer
	}
	if l.Layer != wantLayer {
		fail("layer %q, want %q", l.Layer, wantLayer)
	}
	wants := func(roles []string) bool {
		switch {
		case q.Action != "":
			return refRolesAllow(p, roles, strings.ToLower(q.Action))
		case q.Role != "":
			return slices.Contains(roles, q.Role)
		}
		return true
	}
	var recordVias map[string][]string
	if wantLayer == LayerRecords {
		recordVias = refRecordVias(p, uri, q.Environment, wants)
	}
	listed := map[string]UserAccess{}
	for _, ua := range l.Users {
		listed[ua.User] = ua
	}
	users := slices.Clone(u.users)
	for _, ua := range l.Users {
		users = append(users, ua.User)
	}
	if l.AllUsers != nil {
		users = append(users, l.AllUsers.Except...)
		if wantLayer != LayerResourceServer {
			fail("allUsers on the record layer")
		}
		if got, want := renderVias(l.AllUsers.Via), refServerVias(p, anonymousUser, uri, strings.ToLower(q.Action), q.Environment, q.Time); !slices.Equal(got, want) {
			fail("allUsers via %q, want %q", got, want)
		}
	}
	for _, user := range users {
		question := Question{User: user, Resource: q.Resource, Environment: q.Environment, Time: q.Time}
		var allowed bool
		var held []string
		switch {
		case q.Action != "":
			question.Action = q.Action
			d, err := s.Check(question)
			if err != nil {
				fail("check %s: %v", user, err)
			}
			allowed = d.Allowed
		default:
			held, err = s.Roles(user, q.Resource, q.Environment)
			if err != nil {
				fail("roles %s: %v", user, err)
			}
			allowed = len(held) > 0 && (q.Role == "" || slices.Contains(held, q.Role))
		}
		ua, isListed := listed[user]
		except := l.AllUsers != nil && slices.Contains(l.AllUsers.Except, user)
		if isListed && except || allowed != (isListed || l.AllUsers != nil && !except) {
			fail("user %s: check allows %t; listed %t, allUsers %t, except %t", user, allowed, isListed, l.AllUsers != nil, except)
		}
		if !isListed {
			continue
		}
		var want []string
		if wantLayer == LayerResourceServer {
			want = refServerVias(p, user, uri, strings.ToLower(q.Action), q.Environment, q.Time)
		} else {
			want = recordVias[user]
		}
		if got := renderVias(ua.Via); !slices.Equal(got, want) {
			fail("via of %s: %q, want %q", user, got, want)
		}
		if q.Action == "" && q.Role == "" && !slices.Equal(ua.Roles, held) || (q.Action != "" || q.Role != "") && ua.Roles != nil {
			fail("roles of %s: %q, held %q", user, ua.Roles, held)
		}
	}
	var gotGroups []string
	for _, ga := range l.Groups {
		for _, v := range renderVias(ga.Via) {
			if !strings.HasPrefix(v, "group:"+ga.Group+"@") {
				fail("group %s has via %s", ga.Group, v)
			}
			gotGroups = append(gotGroups, v)
		}
	}
	var wantGroups []string
	if wantLayer == LayerRecords {
		wantGroups = refGroupVias(p, uri, q.Environment, wants)
	}
	sort.Strings(gotGroups)
	if !slices.Equal(gotGroups, wantGroups) {
		fail("groups %q, want %q", gotGroups, wantGroups)
	}
}

// TestEnumerateDifferential is the seed run of FuzzEnumerate.
func TestEnumerateDifferential(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 20
	}
	for seed := range uint64(n) {
		enumerateDifferential(t, seed, seed%4 == 0)
	}
}

// FuzzEnumerate compares the enumerations and the user listings of random
// policies and changes, drawn from the fuzzed seed, with the naive
// reference and with Check. Seeds are in testdata/fuzz/FuzzEnumerate.
// Run it with: go test ./engine -run '^$' -fuzz FuzzEnumerate -fuzztime 2m
func FuzzEnumerate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf [8]byte
		copy(buf[:], data)
		enumerateDifferential(t, binary.LittleEndian.Uint64(buf[:]), false)
	})
}
