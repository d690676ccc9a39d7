package engine

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// benchPolicy generates the benchmark policy: users, documents
// under documents/<id> with one owner record each (Editor), 100 Admins on
// documents, every user User on about 10 random documents, 20 groups of 50
// users with a record each, and one resource server with 5 permissions over
// acme/... Nothing of it is committed: it is made on the fly.
func benchPolicy(users, docs int) *schema.PolicySet {
	r := rand.New(rand.NewPCG(7, 11))
	p := schema.NewPolicySet()
	pos := func(file string, line int) schema.Pos { return schema.Pos{File: file, Line: line} }
	p.Roles["User"] = &schema.Role{ID: "User", Name: "User", Permissions: []schema.RolePermission{{Action: "documents:read", Allow: true}}, Pos: pos("roles.cue", 1)}
	p.Roles["Editor"] = &schema.Role{ID: "Editor", Name: "Editor", Permissions: []schema.RolePermission{
		{Action: "documents:read", Allow: true, Grant: true}, {Action: "documents:write", Allow: true}}, Pos: pos("roles.cue", 5)}
	p.Roles["Admin"] = &schema.Role{ID: "Admin", Name: "Admin", Permissions: []schema.RolePermission{{Action: "documents", Allow: true, Delegate: true}}, Pos: pos("roles.cue", 10)}
	p.Roles["Billing"] = &schema.Role{ID: "Billing", Name: "Billing", Permissions: []schema.RolePermission{{Action: "billing", Allow: true}}, Pos: pos("roles.cue", 15)}
	user := func(i int) string { return fmt.Sprintf("user-%05d", i) }
	doc := func(i int) string { return fmt.Sprintf("documents/doc-%06d", i) }

	for i := range docs {
		id := fmt.Sprintf("owner-%06d", i)
		p.Records[id] = &schema.Record{ID: id, Name: id, Users: []string{user(r.IntN(users))},
			Statements: []schema.Statement{{Roles: []string{"Editor"}, Resources: []string{doc(i)}, Pos: pos("owners.json", i+2)}},
			Pos:        pos("owners.json", i+1)}
	}
	admins := make([]string, 100)
	for i := range admins {
		admins[i] = user(i * (users / 100))
	}
	p.Records["admins"] = &schema.Record{ID: "admins", Name: "admins", Users: admins,
		Statements: []schema.Statement{{Roles: []string{"Admin"}, Resources: []string{"documents"}, Pos: pos("admins.cue", 2)}}, Pos: pos("admins.cue", 1)}
	for u := range users {
		id := "readers-" + user(u)
		st := schema.Statement{Roles: []string{"User"}, Pos: pos("readers.json", 2*u+2)}
		for range 10 {
			st.Resources = append(st.Resources, doc(r.IntN(docs)))
		}
		p.Records[id] = &schema.Record{ID: id, Name: id, Users: []string{user(u)}, Statements: []schema.Statement{st}, Pos: pos("readers.json", 2*u+1)}
	}
	for gi := range 20 {
		gid := fmt.Sprintf("group-%02d", gi)
		g := &schema.Group{ID: gid, Name: gid, Pos: pos("groups.cue", gi+1)}
		for range 50 {
			g.Users = append(g.Users, user(r.IntN(users)))
		}
		p.Groups[gid] = g
		rid := "team-" + gid
		p.Records[rid] = &schema.Record{ID: rid, Name: rid, Groups: []string{gid},
			Statements: []schema.Statement{{Roles: []string{"User"}, Resources: []string{fmt.Sprintf("documents/team-%02d", gi)}, Pos: pos("teams.cue", gi+1)}},
			Pos:        pos("teams.cue", gi+1)}
	}
	p.Records["billing"] = &schema.Record{ID: "billing", Name: "billing", Groups: []string{"group-00"},
		Statements: []schema.Statement{{Roles: []string{"Billing"}, Resources: []string{"acme"}, Pos: pos("billing.cue", 2)}}, Pos: pos("billing.cue", 1)}

	nb := mustTime("2020-01-01T00:00:00Z")
	p.ResourceServers["acme-api"] = &schema.ResourceServer{ID: "acme-api", Name: "acme", DecisionStrategy: "unanimous", EnforcementMode: "enforcing",
		Scopes: []string{"billing:read", "billing:write", "projects:read", "projects:write"}, Pos: pos("acme.cue", 1),
		Resources: map[string]*schema.Resource{
			"invoices": {ID: "invoices", Name: "invoices", Type: "billing", URIs: []string{"acme/billing/invoices"}, Pos: pos("acme.cue", 3)},
			"billing":  {ID: "billing", Name: "billing", Type: "billing", URIs: []string{"acme/billing"}, Scopes: []string{"billing:read", "billing:write"}, Pos: pos("acme.cue", 4)},
			"projects": {ID: "projects", Name: "projects", Type: "project", URIs: []string{"acme/projects", "acme/*/projects"}, Pos: pos("acme.cue", 5)},
		},
		Policies: map[string]*schema.AuthzPolicy{
			"billers":  {ID: "billers", Name: "billers", Type: "role", Roles: []string{"Billing"}, Logic: "positive", Pos: pos("acme.cue", 10)},
			"team":     {ID: "team", Name: "team", Type: "group", Groups: []string{"group-01", "group-02"}, Logic: "positive", Pos: pos("acme.cue", 11)},
			"boss":     {ID: "boss", Name: "boss", Type: "user", Users: []string{user(0)}, Logic: "positive", Pos: pos("acme.cue", 12)},
			"office":   {ID: "office", Name: "office", Type: "time", NotBefore: &nb, Hours: &schema.HourRange{From: 8, To: 18}, Weekdays: []string{"mon", "tue", "wed", "thu", "fri"}, Timezone: "Europe/Berlin", Logic: "positive", Pos: pos("acme.cue", 13)},
			"billable": {ID: "billable", Name: "billable", Type: "aggregate", Policies: []string{"billers", "office"}, DecisionStrategy: "unanimous", Logic: "positive", Pos: pos("acme.cue", 14)},
		},
		Permissions: map[string]*schema.Permission{
			"read-billing":   {ID: "read-billing", Name: "read billing", Type: "scope", Scopes: []string{"billing:read"}, Policies: []string{"billers", "boss"}, DecisionStrategy: "affirmative", Logic: "positive", Pos: pos("acme.cue", 20)},
			"write-billing":  {ID: "write-billing", Name: "write billing", Type: "scope", Scopes: []string{"billing:write"}, Policies: []string{"billable"}, DecisionStrategy: "unanimous", Logic: "positive", Pos: pos("acme.cue", 21)},
			"projects":       {ID: "projects", Name: "projects", Type: "resource", Resources: []string{"projects"}, Policies: []string{"team", "boss"}, DecisionStrategy: "affirmative", Logic: "positive", Pos: pos("acme.cue", 22)},
			"invoices":       {ID: "invoices", Name: "invoices", Type: "resource", ResourceType: "billing", Policies: []string{"billers", "team", "boss"}, DecisionStrategy: "consensus", Logic: "positive", Pos: pos("acme.cue", 23)},
			"no-contractors": {ID: "no-contractors", Name: "no contractors", Type: "scope", Scopes: []string{"projects:write"}, Policies: []string{"team"}, DecisionStrategy: "unanimous", Logic: "negative", Pos: pos("acme.cue", 24)},
		},
	}
	return p
}

// benchQuestions returns n questions, about half of them allowed: every
// other one asks about a document the user was given.
func benchQuestions(p *schema.PolicySet, users, docs, n int) []Question {
	r := rand.New(rand.NewPCG(3, 5))
	var given []Question
	for id, rec := range p.Records {
		if len(given) >= 4*n {
			break
		}
		if rec.Users == nil {
			continue
		}
		st := rec.Statements[0]
		action := "documents:read"
		if st.Roles[0] == "Editor" && r.IntN(2) == 0 {
			action = "documents:write"
		}
		_ = id
		given = append(given, Question{User: rec.Users[r.IntN(len(rec.Users))], Resource: st.Resources[r.IntN(len(st.Resources))] + "/page/2", Action: action})
	}
	qs := make([]Question, n)
	for i := range qs {
		if i%2 == 0 {
			qs[i] = given[r.IntN(len(given))]
		} else {
			qs[i] = Question{User: fmt.Sprintf("user-%05d", r.IntN(users)), Resource: fmt.Sprintf("documents/doc-%06d", r.IntN(docs)),
				Action: []string{"documents:read", "documents:write"}[r.IntN(2)]}
		}
	}
	return qs
}

const (
	benchUsers = 10_000
	benchDocs  = 100_000
)

func benchSnapshot(b *testing.B) (*schema.PolicySet, *Snapshot) {
	b.Helper()
	p := benchPolicy(benchUsers, benchDocs)
	s, err := Build(p, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return p, s
}

func BenchmarkCheck(b *testing.B) {
	p, s := benchSnapshot(b)
	qs := benchQuestions(p, benchUsers, benchDocs, 4096)
	allowed := 0
	for _, q := range qs {
		if d, _ := s.Check(q); d.Allowed {
			allowed++
		}
	}
	benchChecks(b, s, qs)
	b.ReportMetric(float64(allowed)/float64(len(qs)), "allowed/op")
}

// benchChecks asks the 4,096 questions in turn.
func benchChecks(b *testing.B, s *Snapshot, qs []Question) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Check(qs[i&4095]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCheckResourceServer(b *testing.B) {
	_, s := benchSnapshot(b)
	r := rand.New(rand.NewPCG(9, 9))
	resources := []string{"acme/billing/invoices/2026-01", "acme/billing", "acme/projects/p1", "acme/eu/projects/p2", "acme/billing/invoices"}
	actions := []string{"billing:read", "billing:write", "projects:read", "projects:write"}
	at := mustTime("2026-01-14T10:00:00Z")
	qs := make([]Question, 1024)
	for i := range qs {
		qs[i] = Question{User: fmt.Sprintf("user-%05d", r.IntN(benchUsers)), Resource: resources[r.IntN(len(resources))], Action: actions[r.IntN(len(actions))], Time: at}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Check(qs[i&1023]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkBuildSnapshot(b *testing.B) {
	start := heapAfterGC()
	p := benchPolicy(benchUsers, benchDocs)
	policyHeap := heapAfterGC() - start
	b.ReportAllocs()
	var s *Snapshot
	for b.Loop() {
		var err error
		if s, err = Build(p, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.KeepAlive(s)
	s = nil //nolint:ineffassign // drop the last loop's snapshot before measuring
	before := heapAfterGC()
	s, _ = Build(p, "bench")
	after := heapAfterGC()
	runtime.KeepAlive(s)
	b.ReportMetric(float64(after-before)/(1<<20), "MB-retained")
	b.ReportMetric(float64(policyHeap)/(1<<20), "MB-policy")
	b.ReportMetric(float64(len(p.Records)), "records")
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// changedPolicy returns p with n owner records given to other users.
func changedPolicy(p *schema.PolicySet, n int) *schema.PolicySet {
	q := schema.NewPolicySet()
	q.Roles, q.Groups, q.ResourceServers = p.Roles, p.Groups, p.ResourceServers
	for id, r := range p.Records {
		q.Records[id] = r
	}
	for i := range n {
		id := fmt.Sprintf("owner-%06d", i*(benchDocs/n))
		r := *q.Records[id]
		r.Users = []string{fmt.Sprintf("user-%05d", (i*7919)%benchUsers)}
		q.Records[id] = &r
	}
	return q
}

func BenchmarkApplyDiff(b *testing.B) {
	p, s := benchSnapshot(b)
	q := changedPolicy(p, 1000)
	d := change.Between(p, q)
	if n := len(d.Records.Changed); n != 1000 {
		b.Fatalf("%d records changed, want 1000", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Apply(d, "next"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiffPolicies(b *testing.B) {
	p := benchPolicy(benchUsers, benchDocs)
	q := changedPolicy(p, 1000)
	b.ReportAllocs()
	for b.Loop() {
		change.Between(p, q)
	}
}

func BenchmarkResources(b *testing.B) {
	_, s := benchSnapshot(b)
	b.ReportAllocs()
	i := 0
	n := 0
	for b.Loop() {
		l, err := s.Resources(ResourceQuery{User: fmt.Sprintf("user-%05d", (i*37)%benchUsers), Action: "documents:read", Collection: "documents"})
		if err != nil {
			b.Fatal(err)
		}
		n += len(l.Resources)
		i++
	}
	b.ReportMetric(float64(n)/float64(i), "resources/op")
}

// serverPolicy returns a policy with one resource server of n resources:
// every tenth a group "items/gNNNN" and the others below their group
// ("items/gNNNN/rNNNNN"), so that patterns cover one another, plus a
// wildcard resource; with a role, a record and two permissions.
func serverPolicy(n int) *schema.PolicySet {
	p := schema.NewPolicySet()
	pos := func(line int) schema.Pos { return schema.Pos{File: "big.cue", Line: line} }
	p.Roles["Reader"] = &schema.Role{ID: "Reader", Name: "Reader", Permissions: []schema.RolePermission{{Action: "read", Allow: true}}, Pos: pos(1)}
	p.Records["readers"] = &schema.Record{ID: "readers", Name: "readers", Users: []string{"ann"},
		Statements: []schema.Statement{{Roles: []string{"Reader"}, Resources: []string{"items"}, Pos: pos(3)}}, Pos: pos(2)}
	srv := &schema.ResourceServer{ID: "big", Name: "big", DecisionStrategy: "affirmative", EnforcementMode: "enforcing",
		Scopes: []string{"read", "write"}, Pos: pos(10),
		Resources: map[string]*schema.Resource{}, Policies: map[string]*schema.AuthzPolicy{}, Permissions: map[string]*schema.Permission{}}
	for i := range n {
		id := fmt.Sprintf("r%05d", i)
		uri := fmt.Sprintf("items/g%04d", i/10)
		if i%10 != 0 {
			uri += "/" + id
		}
		srv.Resources[id] = &schema.Resource{ID: id, Name: id, Type: "item", URIs: []string{uri}, Pos: pos(100 + i)}
	}
	srv.Resources["archive"] = &schema.Resource{ID: "archive", Name: "archive", URIs: []string{"items/*/archive"}, Pos: pos(11)}
	srv.Policies["readers"] = &schema.AuthzPolicy{ID: "readers", Name: "readers", Type: "role", Roles: []string{"Reader"}, Logic: "positive", Pos: pos(12)}
	srv.Permissions["read"] = &schema.Permission{ID: "read", Name: "read", Type: "scope", Scopes: []string{"read"}, Policies: []string{"readers"}, Logic: "positive", Pos: pos(13)}
	srv.Permissions["items"] = &schema.Permission{ID: "items", Name: "items", Type: "resource", ResourceType: "item", Policies: []string{"readers"}, Logic: "positive", Pos: pos(14)}
	p.ResourceServers[srv.ID] = srv
	return p
}

// BenchmarkApplyServer10kResources applies a change of one resource of a
// resource server with 10,000 resources: the server is recompiled and its
// URI table rewritten.
func BenchmarkApplyServer10kResources(b *testing.B) {
	p := serverPolicy(10_000)
	s, err := Build(p, "one")
	if err != nil {
		b.Fatal(err)
	}
	q := schema.NewPolicySet()
	q.Roles, q.Records = p.Roles, p.Records
	srv := *p.ResourceServers["big"]
	srv.Resources = maps.Clone(srv.Resources)
	res := *srv.Resources["r00042"]
	res.Scopes = []string{"read"}
	srv.Resources["r00042"] = &res
	q.ResourceServers["big"] = &srv
	d := change.Between(p, q)
	if len(d.ResourceServers.Changed) != 1 {
		b.Fatalf("diff: %+v", d.ResourceServers)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Apply(d, "two"); err != nil {
			b.Fatal(err)
		}
	}
}

// heavyUserSnapshot returns a snapshot where user "heavy" holds User on n
// documents (one record each) and a group of 50 users holds User on n
// others, and everyone else on few.
func heavyUserSnapshot(b *testing.B, n int) *Snapshot {
	b.Helper()
	p := benchPolicy(1000, 10_000)
	p.Groups["heavy-team"] = &schema.Group{ID: "heavy-team", Name: "heavy team", Users: []string{"heavy"}}
	for i := range n {
		id := fmt.Sprintf("heavy-%06d", i)
		p.Records[id] = &schema.Record{ID: id, Name: id, Users: []string{"heavy"},
			Statements: []schema.Statement{{Roles: []string{"User"}, Resources: []string{fmt.Sprintf("documents/heavy/h%06d", (i*7919)%n)}}}}
		gid := fmt.Sprintf("team-%06d", i)
		p.Records[gid] = &schema.Record{ID: gid, Name: gid, Groups: []string{"heavy-team"},
			Statements: []schema.Statement{{Roles: []string{"User"}, Resources: []string{fmt.Sprintf("documents/team/t%06d", i)}}}}
	}
	s, err := Build(p, "heavy")
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkResourcesHeavyUser asks for the first page (20) of the listing of
// a user allowed 20,000 resources.
func BenchmarkResourcesHeavyUser(b *testing.B) {
	s := heavyUserSnapshot(b, 10_000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		l, err := s.Resources(ResourceQuery{User: "heavy", Action: "documents:read", Collection: "documents"})
		if err != nil {
			b.Fatal(err)
		}
		n = len(l.Resources)
	}
	b.ReportMetric(float64(n), "resources/op")
}

// BenchmarkResourcesHeavyUserAllPages pages through the whole listing of a
// user allowed 20,000 resources, 1,000 at a time (one op is all 20 pages).
func BenchmarkResourcesHeavyUserAllPages(b *testing.B) {
	s := heavyUserSnapshot(b, 10_000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		q := ResourceQuery{User: "heavy", Action: "documents:read", Collection: "documents", Limit: MaxListLimit}
		for {
			l, err := s.Resources(q)
			if err != nil {
				b.Fatal(err)
			}
			n += len(l.Resources)
			if l.Cursor == "" {
				break
			}
			q.Cursor = l.Cursor
		}
	}
	b.ReportMetric(float64(n), "resources/op")
}

// BenchmarkEnumerate runs the enumerations on one snapshot of the
// benchmark policy:
//   - users/doc: who may read one document: its owner, the users given it
//     to read (about 10) and the 100 Admins of documents, about 102 users;
//     the first page (20) and all of them in one page (1,000);
//   - users/server: who may read the invoices, which the acme server
//     decides: each candidate (the billing group's 50 users and the users
//     the server's user and group policies name) decided as Check does;
//   - grants: every statement that applies to a user (about 10 to read,
//     about 10 owned, and its group's when it is in one);
//   - holders: the holders of a rare role (Billing: one group) and of a
//     common one (Admin: 100 users on documents);
//   - covering: the statements that give roles on one document.
func BenchmarkEnumerate(b *testing.B) {
	p, s := benchSnapshot(b)
	doc := func(i int) string { return fmt.Sprintf("documents/doc-%06d", (i*7919)%benchDocs) }
	for _, limit := range []int{DefaultListLimit, MaxListLimit} {
		b.Run(fmt.Sprintf("users/doc/limit=%d", limit), func(b *testing.B) {
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				l, err := s.Users(UsersQuery{Resource: doc(i), Action: "documents:read", Limit: limit})
				if err != nil {
					b.Fatal(err)
				}
				n += len(l.Users)
				i++
			}
			b.ReportMetric(float64(n)/float64(i), "users/op")
		})
	}
	b.Run("users/server", func(b *testing.B) {
		at := mustTime("2026-01-14T10:00:00Z")
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			l, err := s.Users(UsersQuery{Resource: "acme/billing/invoices/2026-01", Action: "billing:read", Time: at, Limit: MaxListLimit})
			if err != nil {
				b.Fatal(err)
			}
			n = len(l.Users)
		}
		b.ReportMetric(float64(n), "users/op")
	})
	b.Run("grants", func(b *testing.B) {
		b.ReportAllocs()
		i, n := 0, 0
		for b.Loop() {
			gs, err := s.Grants(Subject{SubjectUser, fmt.Sprintf("user-%05d", (i*37)%benchUsers)}, "")
			if err != nil {
				b.Fatal(err)
			}
			n += len(gs)
			i++
		}
		b.ReportMetric(float64(n)/float64(i), "grants/op")
	})
	for _, role := range []string{"Billing", "Admin"} {
		b.Run("holders/"+role, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = len(s.RoleHolders(role, ""))
			}
			b.ReportMetric(float64(n), "holdings/op")
		})
	}
	b.Run("covering", func(b *testing.B) {
		b.ReportAllocs()
		i, n := 0, 0
		for b.Loop() {
			st, err := s.StatementsCovering(doc(i), "")
			if err != nil {
				b.Fatal(err)
			}
			n += len(st)
			i++
		}
		b.ReportMetric(float64(n)/float64(i), "statements/op")
	})
	// Check in the same run, for scale on a shared machine.
	b.Run("check", func(b *testing.B) { benchChecks(b, s, benchQuestions(p, benchUsers, benchDocs, 4096)) })
}
