package engine

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// naiveServerURIMatches is the server URI table by its definition: for each
// non-wildcard pattern of any server, every non-wildcard resource pattern
// that covers it, in server, resource and pattern order.
func naiveServerURIMatches(servers []*serverRow) map[string][]serverMatch {
	var plain []serverMatch
	for _, srv := range servers {
		for _, res := range srv.resources {
			for _, p := range res.patterns {
				if !p.Wildcard() {
					plain = append(plain, serverMatch{srv: srv, res: res, pattern: p})
				}
			}
		}
	}
	out := map[string][]serverMatch{}
	for _, row := range plain {
		if _, ok := out[row.pattern.String()]; ok {
			continue
		}
		out[row.pattern.String()] = []serverMatch{}
		for _, m := range plain {
			if m.pattern.Covers(row.pattern.String()) {
				out[row.pattern.String()] = append(out[row.pattern.String()], m)
			}
		}
	}
	return out
}

// checkServerURIs compares the snapshot's server URI table with the naive one.
func checkServerURIs(t *testing.T, s *Snapshot, what string) {
	t.Helper()
	want := naiveServerURIMatches(s.servers)
	got := map[string][]serverMatch{}
	for _, raw := range s.all(tableServerURIs) {
		row := raw.(*serverURIRow)
		got[row.pattern] = row.matches
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d server URI rows, want %d", what, len(got), len(want))
	}
	for p, w := range want {
		if !slices.Equal(got[p], w) {
			t.Fatalf("%s: row %q holds %d matches, want %d (or another order)", what, p, len(got[p]), len(w))
		}
	}
}

// TestServerURITable: the indexed server URI table equals the naive one,
// in content and order (the order of trace steps), after builds and
// applies of random policies and of the 10,000-resource server.
func TestServerURITable(t *testing.T) {
	for seed := range uint64(100) {
		g := &gen{r: rand.New(rand.NewPCG(seed, 99))}
		p1 := g.policy()
		p2 := g.mutate(p1)
		s1, err := Build(p1, "one")
		if err != nil {
			t.Fatal(err)
		}
		checkServerURIs(t, s1, "build")
		s2, err := s1.Apply(change.Between(p1, p2), "two")
		if err != nil {
			t.Fatal(err)
		}
		checkServerURIs(t, s2, "apply")
	}
	p := serverPolicy(2_000)
	s, err := Build(p, "big")
	if err != nil {
		t.Fatal(err)
	}
	checkServerURIs(t, s, "server of 2,000 resources")
	s, err = s.Apply(change.Between(p, schema.NewPolicySet()), "empty")
	if err != nil {
		t.Fatal(err)
	}
	checkServerURIs(t, s, "all removed")
}
