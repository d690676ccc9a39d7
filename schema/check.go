package schema

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema/match"
)

// Check runs the checks of SPEC section 3.1 that the schema cannot express:
// entity IDs, references between entities, aggregate cycles, unique
// permission names, well-formed URIs and actions, statement subjects and
// test questions. It returns every problem found, unsorted.
func Check(p *Policy) Errors {
	c := &checker{p: p}
	c.roles()
	c.groups()
	c.records()
	for _, id := range sortedKeys(p.ResourceServers) {
		c.server(p.ResourceServers[id])
	}
	c.tests()
	return c.errs
}

type checker struct {
	p    *Policy
	errs Errors
}

func (c *checker) fail(pos Pos, p *fieldPath, format string, args ...any) {
	c.errs = append(c.errs, &Error{Pos: pos, Path: p.String(), Message: fmt.Sprintf(format, args...)})
}

// entityID checks an entity's key against #ID.
func (c *checker) entityID(pos Pos, p *fieldPath, id string) {
	if !idPattern.MatchString(id) {
		c.fail(pos, p, "invalid ID %q: want a letter or digit, then up to 127 of letters, digits and _.:@-", id)
	}
}

func (c *checker) roles() {
	for id, r := range c.p.Roles {
		p := (*fieldPath)(nil).field("roles").field(id)
		c.entityID(r.Pos, p, id)
		for i, perm := range r.Permissions {
			if _, err := match.ParseActionPattern(perm.Action); err != nil {
				c.fail(perm.Pos, p.field("permissions").elem(i).field("action"), "%v", err)
			}
		}
	}
}

func (c *checker) groups() {
	for id, g := range c.p.Groups {
		c.entityID(g.Pos, (*fieldPath)(nil).field("groups").field(id), id)
	}
}

func (c *checker) records() {
	for id, r := range c.p.Records {
		p := (*fieldPath)(nil).field("records").field(id)
		c.entityID(r.Pos, p, id)
		c.groupRefs(r.Pos, p.field("groups"), r.Groups)
		for i := range r.Statements {
			s := &r.Statements[i]
			sp := p.field("statements").elem(i)
			for j, role := range s.Roles {
				if _, ok := c.p.Roles[role]; !ok {
					c.fail(s.Pos, sp.field("roles").elem(j), "role %q does not exist%s", role, suggest(role, c.p.Roles))
				}
			}
			for j, res := range s.Resources {
				if _, err := match.ParseURIPattern(res); err != nil {
					c.fail(s.Pos, sp.field("resources").elem(j), "%v", err)
				}
			}
			c.groupRefs(s.Pos, sp.field("groups"), s.Groups)
			if users, groups := s.Subjects(r); len(users) == 0 && len(groups) == 0 {
				c.fail(s.Pos, sp, "statement has no subjects: give the record or the statement users or groups")
			}
		}
	}
}

func (c *checker) groupRefs(pos Pos, p *fieldPath, groups []string) {
	for j, g := range groups {
		if _, ok := c.p.Groups[g]; !ok {
			c.fail(pos, p.elem(j), "group %q does not exist%s", g, suggest(g, c.p.Groups))
		}
	}
}

func (c *checker) server(s *ResourceServer) {
	p := (*fieldPath)(nil).field("resourceServers").field(s.ID)
	c.entityID(s.Pos, p, s.ID)
	scopes := map[string]bool{}
	for _, sc := range s.Scopes {
		scopes[sc] = true
	}
	for _, id := range sortedKeys(s.Resources) {
		r := s.Resources[id]
		rp := p.field("resources").field(id)
		c.entityID(r.Pos, rp, id)
		for j, uri := range r.URIs {
			if _, err := match.ParseURIPattern(uri); err != nil {
				c.fail(r.Pos, rp.field("uris").elem(j), "%v", err)
			}
		}
		for j, sc := range r.Scopes {
			if !scopes[sc] {
				c.fail(r.Pos, rp.field("scopes").elem(j), "scope %q is not among the scopes of resource server %q (%s)", sc, s.ID, strings.Join(s.Scopes, ", "))
			}
		}
	}
	for _, id := range sortedKeys(s.Policies) {
		pol := s.Policies[id]
		pp := p.field("policies").field(id)
		c.entityID(pol.Pos, pp, id)
		for j, role := range pol.Roles {
			if _, ok := c.p.Roles[role]; !ok {
				c.fail(pol.Pos, pp.field("roles").elem(j), "role %q does not exist%s", role, suggest(role, c.p.Roles))
			}
		}
		c.groupRefs(pol.Pos, pp.field("groups"), pol.Groups)
		for j, sub := range pol.Policies {
			if _, ok := s.Policies[sub]; !ok {
				c.fail(pol.Pos, pp.field("policies").elem(j), "policy %q does not exist in resource server %q%s", sub, s.ID, suggest(sub, s.Policies))
			}
		}
		if pol.Type == PolicyTime {
			if _, err := time.LoadLocation(pol.Timezone); err != nil || pol.Timezone == "" || pol.Timezone == "Local" {
				c.fail(pol.Pos, pp.field("timezone"), "unknown time zone %q: want an IANA name such as \"Europe/Berlin\" or \"UTC\"", pol.Timezone)
			}
			if pol.NotBefore != nil && pol.NotOnOrAfter != nil && !pol.NotBefore.Before(*pol.NotOnOrAfter) {
				c.fail(pol.Pos, pp.field("notOnOrAfter"), "must be later than notBefore, or the policy never grants")
			}
		}
	}
	c.cycles(s, p)
	names := map[string]string{}
	for _, id := range sortedKeys(s.Permissions) {
		perm := s.Permissions[id]
		pp := p.field("permissions").field(id)
		c.entityID(perm.Pos, pp, id)
		if other, dup := names[perm.Name]; dup {
			c.fail(perm.Pos, pp.field("name"), "permission name %q is already used by permission %q of resource server %q: names are unique within a server", perm.Name, other, s.ID)
		} else {
			names[perm.Name] = id
		}
		for j, sc := range perm.Scopes {
			if !scopes[sc] {
				c.fail(perm.Pos, pp.field("scopes").elem(j), "scope %q is not among the scopes of resource server %q (%s)", sc, s.ID, strings.Join(s.Scopes, ", "))
			}
		}
		for j, res := range perm.Resources {
			if _, ok := s.Resources[res]; !ok {
				c.fail(perm.Pos, pp.field("resources").elem(j), "resource %q does not exist in resource server %q%s", res, s.ID, suggest(res, s.Resources))
			}
		}
		for j, pol := range perm.Policies {
			if _, ok := s.Policies[pol]; !ok {
				c.fail(perm.Pos, pp.field("policies").elem(j), "policy %q does not exist in resource server %q%s", pol, s.ID, suggest(pol, s.Policies))
			}
		}
		switch perm.Type {
		case PermissionScope:
			if len(perm.Scopes) == 0 {
				c.fail(perm.Pos, pp.field("scopes"), "a scope permission needs at least one scope")
			}
		case PermissionResource:
			if len(perm.Resources) == 0 && perm.ResourceType == "" {
				c.fail(perm.Pos, pp, "a resource permission needs resources or a resourceType")
			}
		}
	}
}

// cycles reports every aggregate policy that reaches itself.
func (c *checker) cycles(s *ResourceServer, p *fieldPath) {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(id string)
	visit = func(id string) {
		pol, ok := s.Policies[id]
		if !ok || state[id] == done {
			return
		}
		if state[id] == active {
			i := slices.Index(stack, id)
			cycle := append(slices.Clone(stack[i:]), id)
			first := s.Policies[cycle[0]]
			c.fail(first.Pos, p.field("policies").field(cycle[0]).field("policies"), "aggregate policies form a cycle: %s", strings.Join(cycle, " -> "))
			return
		}
		state[id] = active
		stack = append(stack, id)
		for _, sub := range pol.Policies {
			visit(sub)
		}
		stack = stack[:len(stack)-1]
		state[id] = done
	}
	for _, id := range sortedKeys(s.Policies) {
		visit(id)
	}
}

func (c *checker) tests() {
	for name, t := range c.p.Tests {
		p := (*fieldPath)(nil).field("tests").field(name)
		asked := 0
		for _, q := range []string{t.Action, t.Role, t.Assign} {
			if q != "" {
				asked++
			}
		}
		if asked != 1 {
			c.fail(t.Pos, p, "a test asks exactly one of action, role and assign, found %d", asked)
		}
		if _, err := match.ParseURI(t.Resource); err != nil {
			c.fail(t.Pos, p.field("resource"), "%v", err)
		}
		if t.Action != "" {
			if _, err := match.ParseAction(t.Action); err != nil {
				c.fail(t.Pos, p.field("action"), "%v", err)
			}
		}
		for label, role := range map[string]string{"role": t.Role, "assign": t.Assign} {
			if _, ok := c.p.Roles[role]; role != "" && !ok {
				c.fail(t.Pos, p.field(label), "role %q does not exist%s", role, suggest(role, c.p.Roles))
			}
		}
	}
}

// suggest returns ` (did you mean "X"?)` for the closest key of m to s, if one is close.
func suggest[T any](s string, m map[string]T) string {
	if len(m) > 10_000 {
		return ""
	}
	best, bestDist := "", 3
	for k := range m {
		if d := editDistance(strings.ToLower(s), strings.ToLower(k), bestDist); d < bestDist || d == bestDist && best != "" && k < best {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b, or limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
