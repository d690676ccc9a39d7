package engine

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// Random policies over a small universe, so that random questions hit.
var (
	genUsers     = []string{"u0", "u1", "u2", "u3", "u4"}
	genGroups    = []string{"g0", "g1", "g2"}
	genRoles     = []string{"R0", "R1", "R2", "R3", "R4"}
	genActions   = []string{"docs", "docs:read", "docs:write", "docs:read:x", "docs:*", "*", "org:inv", "Docs:Read"}
	genPatterns  = []string{"docs", "docs/d1", "docs/d1/c", "docs/d2", "*/d1", "org/*/inv", "*", "/docs/d2/", "org", "org/a", "org/*"}
	genEnvs      = []string{"", "", "prod", "stg"}
	genSrvURIs   = []string{"docs/d1", "org", "org/*/inv", "docs", "acme", "docs/d1/c", "*/d2"}
	genScopes    = []string{"docs:read", "docs:write", "org:inv"}
	genQUsers    = []string{"u0", "u1", "u2", "u3", "u4", "u5"}
	genQRes      = []string{"docs/d1", "docs/d1/c/2", "docs/d2", "org/a/inv/1", "org/a", "docsx/d1", "acme/z", "docs", "org/b/inv"}
	genQActions  = []string{"docs:read", "docs:write", "docs:read:x", "org:inv", "docs", "DOCS:READ", "other"}
	genQColl     = []string{"docs", "org", "docs/d1", "org/a"}
	genTimes     = []string{"2026-01-15T10:00:00Z", "2026-01-17T23:30:00Z", "2026-03-01T00:00:00Z", "2025-06-01T05:00:00Z"}
	genTimezones = []string{"UTC", "Europe/Berlin", "Asia/Tokyo", "America/New_York"}
)

type gen struct {
	r    *rand.Rand
	line int
}

func (g *gen) pick(ss []string) string { return ss[g.r.IntN(len(ss))] }
func (g *gen) chance(p float64) bool   { return g.r.Float64() < p }

func (g *gen) subset(ss []string, min int) []string {
	var out []string
	for _, s := range ss {
		if g.chance(0.35) {
			out = append(out, s)
		}
	}
	for len(out) < min {
		out = append(out, g.pick(ss))
	}
	return out
}

func (g *gen) pos() schema.Pos {
	g.line++
	return schema.Pos{File: "gen.cue", Line: g.line}
}

func (g *gen) role(id string) *schema.Role {
	r := &schema.Role{ID: id, Name: id, Pos: g.pos()}
	for range 1 + g.r.IntN(3) {
		r.Permissions = append(r.Permissions, schema.RolePermission{Action: g.pick(genActions),
			Allow: g.chance(0.8), Grant: g.chance(0.3), Delegate: g.chance(0.2), Pos: g.pos()})
	}
	return r
}

func (g *gen) group(id string) *schema.Group {
	return &schema.Group{ID: id, Name: id, Users: g.subset(genUsers, 0), Pos: g.pos()}
}

func (g *gen) record(id string) *schema.Record {
	r := &schema.Record{ID: id, Name: id, Users: g.subset(genUsers, 0), Groups: g.subset(genGroups, 0), Pos: g.pos()}
	if len(r.Users)+len(r.Groups) == 0 {
		r.Users = []string{g.pick(genUsers)}
	}
	if env := g.pick(genEnvs); env != "" {
		r.Tags = map[string]string{"environment": env}
	}
	for range 1 + g.r.IntN(3) {
		st := schema.Statement{Roles: g.subset(genRoles, 1), Resources: g.subset(genPatterns, 1), Pos: g.pos()}
		if g.chance(0.3) {
			st.Users = g.subset(genUsers, 0)
			st.Groups = g.subset(genGroups, 0)
		}
		r.Statements = append(r.Statements, st)
	}
	return r
}

func (g *gen) server(id string) *schema.ResourceServer {
	s := &schema.ResourceServer{ID: id, Name: id, Pos: g.pos(),
		DecisionStrategy: g.pick([]string{"unanimous", "affirmative"}),
		EnforcementMode:  g.pick([]string{"enforcing", "enforcing", "permissive", "disabled"}),
		Scopes:           genScopes,
		Resources:        map[string]*schema.Resource{}, Policies: map[string]*schema.AuthzPolicy{}, Permissions: map[string]*schema.Permission{}}
	var resIDs []string
	for i := range 1 + g.r.IntN(3) {
		rid := fmt.Sprintf("res%d", i)
		resIDs = append(resIDs, rid)
		var scopes []string
		if g.chance(0.4) {
			scopes = g.subset(genScopes, 1)
		}
		s.Resources[rid] = &schema.Resource{ID: rid, Name: rid, Type: g.pick([]string{"", "t1", "t2"}),
			URIs: g.subset(genSrvURIs, 1), Scopes: scopes, Pos: g.pos()}
	}
	var polIDs []string
	for i := range 1 + g.r.IntN(4) {
		pid := fmt.Sprintf("pol%d", i)
		p := &schema.AuthzPolicy{ID: pid, Name: pid, Logic: g.pick([]string{"positive", "positive", "negative"}), Pos: g.pos()}
		kinds := []string{"role", "user", "group", "time"}
		if len(polIDs) > 0 {
			kinds = append(kinds, "aggregate")
		}
		p.Type = g.pick(kinds)
		switch p.Type {
		case "role":
			p.Roles, p.RequireAll = g.subset(genRoles, 1), g.chance(0.4)
		case "user":
			p.Users = g.subset(genUsers, 1)
		case "group":
			p.Groups = g.subset(genGroups, 1)
		case "time":
			p.Timezone = g.pick(genTimezones)
			if g.chance(0.4) {
				t := mustTime(g.pick(genTimes))
				p.NotBefore = &t
			}
			if g.chance(0.4) {
				t := mustTime(g.pick(genTimes))
				p.NotOnOrAfter = &t
			}
			if g.chance(0.5) {
				p.Hours = &schema.HourRange{From: g.r.IntN(24), To: g.r.IntN(24)}
			}
			if g.chance(0.4) {
				p.Weekdays = g.subset([]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, 1)
			}
		case "aggregate":
			p.Policies = g.subset(polIDs, 1)
			p.DecisionStrategy = g.pick([]string{"unanimous", "affirmative", "consensus"})
		}
		s.Policies[pid] = p
		polIDs = append(polIDs, pid)
	}
	for i := range g.r.IntN(4) {
		pid := fmt.Sprintf("perm%d", i)
		p := &schema.Permission{ID: pid, Name: pid, Pos: g.pos(),
			DecisionStrategy: g.pick([]string{"unanimous", "affirmative", "consensus"}),
			Logic:            g.pick([]string{"positive", "positive", "negative"})}
		if g.chance(0.2) {
			p.Policies = nil
		} else {
			p.Policies = g.subset(polIDs, 1)
		}
		if g.chance(0.5) {
			p.Type = schema.PermissionScope
			p.Scopes = g.subset(genScopes, 1)
			if g.chance(0.4) {
				p.Resources = g.subset(resIDs, 1)
			}
		} else {
			p.Type = schema.PermissionResource
			if g.chance(0.6) {
				p.Resources = g.subset(resIDs, 1)
			} else {
				p.ResourceType = g.pick([]string{"t1", "t2"})
			}
		}
		s.Permissions[pid] = p
	}
	return s
}

func (g *gen) policy() *schema.PolicySet {
	p := schema.NewPolicySet()
	for _, id := range genRoles {
		p.Roles[id] = g.role(id)
	}
	for _, id := range genGroups {
		p.Groups[id] = g.group(id)
	}
	for i := range g.r.IntN(7) {
		id := fmt.Sprintf("rec%d", i)
		p.Records[id] = g.record(id)
	}
	for i := range g.r.IntN(3) {
		id := fmt.Sprintf("S%d", i)
		p.ResourceServers[id] = g.server(id)
	}
	return p
}

// mutate returns a copy of p with some entities changed, removed or added;
// unchanged entities are shared, as the loader shares them.
func (g *gen) mutate(p *schema.PolicySet) *schema.PolicySet {
	q := schema.NewPolicySet()
	for id, r := range p.Roles {
		q.Roles[id] = r
		if g.chance(0.2) {
			q.Roles[id] = g.role(id)
		}
	}
	for id, gr := range p.Groups {
		switch {
		case g.chance(0.15):
		case g.chance(0.2):
			q.Groups[id] = g.group(id)
		default:
			q.Groups[id] = gr
		}
	}
	for id, r := range p.Records {
		switch {
		case g.chance(0.2):
		case g.chance(0.25):
			q.Records[id] = g.record(id)
		case g.chance(0.1):
			moved := *r
			moved.Pos.Line += 100
			q.Records[id] = &moved
		default:
			q.Records[id] = r
		}
	}
	for i := range g.r.IntN(3) {
		id := fmt.Sprintf("new%d", i)
		q.Records[id] = g.record(id)
	}
	for id, s := range p.ResourceServers {
		switch {
		case g.chance(0.2):
		case g.chance(0.3):
			q.ResourceServers[id] = g.server(id)
		default:
			q.ResourceServers[id] = s
		}
	}
	if g.chance(0.3) {
		q.ResourceServers["Snew"] = g.server("Snew")
	}
	for _, id := range genGroups {
		if q.Groups[id] == nil && g.chance(0.5) {
			q.Groups[id] = g.group(id)
		}
	}
	return q
}

func (g *gen) question() (Question, string) {
	q := Question{User: g.pick(genQUsers), Resource: g.pick(genQRes), Environment: g.pick(genEnvs),
		Time: mustTime(g.pick(genTimes))}
	switch g.r.IntN(10) {
	case 0, 1, 2, 3:
		q.Action = g.pick(genQActions)
		return q, ""
	case 4:
		q.Role = g.pick(genRoles)
		return q, ""
	case 5, 6:
		q.Assign = g.pick(genRoles)
		return q, ""
	case 7:
		return q, "roles"
	case 8:
		return q, "perms"
	default:
		q.Action = g.pick(genQActions)
		q.Resource = g.pick(genQColl)
		return q, "resources"
	}
}

// differential checks, for one seed, that the engine agrees with the
// reference evaluator on a random policy, and that applying a random diff
// gives the same answers as building the changed policy from scratch.
func differential(t *testing.T, seed uint64, questions int) {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed>>32|1))}
	p1 := g.policy()
	p2 := g.mutate(p1)
	s1, err := Build(p1, "one")
	if err != nil {
		t.Fatalf("seed %d: build: %v", seed, err)
	}
	s2, err := s1.Apply(change.Between(p1, p2), "two")
	if err != nil {
		t.Fatalf("seed %d: apply: %v", seed, err)
	}
	for i := range questions {
		q, kind := g.question()
		c := specCase{q: q, kind: kind}
		for _, v := range []struct {
			s *Snapshot
			p *schema.PolicySet
		}{{s1, p1}, {s2, p2}} {
			got := quietAnswer(v.s, c)
			want := refAnswer(v.p, q, kind)
			if got != want {
				d, _ := v.s.Explain(q)
				var b strings.Builder
				_ = WriteTrace(&b, "  ", d.Trace)
				t.Fatalf("seed %d question %d (%s %+v) on revision %s: engine %q, reference %q\n%s",
					seed, i, kind, q, v.s.Revision(), got, want, b.String())
			}
		}
	}
	// s1 is unchanged by the apply: old readers stay valid.
	s1again, _ := Build(p1, "one")
	for range 20 {
		q, kind := g.question()
		c := specCase{q: q, kind: kind}
		if a, b := quietAnswer(s1, c), quietAnswer(s1again, c); a != b {
			t.Fatalf("seed %d: old snapshot changed by apply: %q vs rebuilt %q for %+v", seed, a, b, q)
		}
	}
}

// quietAnswer is answer without the test hooks.
func quietAnswer(s *Snapshot, c specCase) string {
	if out, ok := listAnswer(s, c); ok {
		return out
	}
	d, err := s.Decide(c.q)
	if err != nil {
		return "error"
	}
	ex, err := s.Explain(c.q)
	if err != nil || ex.Allowed != d.Allowed {
		return "explain disagrees"
	}
	return allowDeny(d.Allowed)
}

// TestDifferential is the short seed run of FuzzDifferential.
func TestDifferential(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	for seed := range uint64(n) {
		differential(t, seed, 60)
	}
}

// FuzzDifferential compares the engine with the naive reference evaluator
// on random policies, diffs and questions drawn from the fuzzed seed.
// Run it with: go test ./engine -run '^$' -fuzz FuzzDifferential -fuzztime 2m
func FuzzDifferential(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(binary.LittleEndian.AppendUint64(nil, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf [8]byte
		copy(buf[:], data)
		differential(t, binary.LittleEndian.Uint64(buf[:]), 40)
	})
}

var _ = time.Now
