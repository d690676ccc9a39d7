package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema/match"
	"github.com/charter-policy/charter/schema/quote"
)

// Check runs the checks of SPEC section 3.1 that the schema cannot express:
// entity IDs, references between entities, aggregate cycles, unique
// permission names, well-formed URIs and actions, statement subjects and
// test questions. It returns every problem found, unsorted.
func Check(p *PolicySet) Errors {
	return append(checkLocal(p), checkRefs(p, p)...)
}

// checkLocal runs the checks that need nothing outside p's own entities, so
// that the loader runs them once per unit and caches the result.
func checkLocal(p *PolicySet) Errors {
	c := &checker{p: p, all: p, local: true}
	c.run()
	return c.errs
}

// checkRefs runs the checks of references between entities that may be
// declared in different units: roles and groups named by the records,
// policies and tests of p must exist in all.
func checkRefs(p, all *PolicySet) Errors {
	c := &checker{p: p, all: all}
	c.run()
	return c.errs
}

// checker runs either the local checks or the reference checks over the
// entities of p; references are looked up in all.
type checker struct {
	p      *PolicySet
	all    *PolicySet
	local  bool
	broken *brokenUnits // when some unit failed: what the failed units declare
	errs   Errors
}

// brokenUnits is what the reference checks know of the units of a load
// that have errors: the roles and groups they declare (decoded or not), and
// the files of the units that did not parse, which may declare anything.
type brokenUnits struct {
	roles, groups map[string]bool
	unparsed      []string
}

// unresolved returns the message for a reference to the role or group id
// that all lacks, or "" when a unit with errors declares it (its own error
// is reported instead).
func (c *checker) unresolved(kind, id, hint string) string {
	msg := fmt.Sprintf("%s %s does not exist", kind, quote.String(id))
	b := c.broken
	if b == nil {
		return msg + hint
	}
	declared := b.groups
	if kind == "role" {
		declared = b.roles
	}
	if declared[id] {
		return ""
	}
	if hint == "" {
		hint = suggest(id, declared)
	}
	switch n := len(b.unparsed); {
	case n == 0:
		return msg + hint
	case n == 1:
		return fmt.Sprintf("%s in the files that loaded%s; %s did not parse and may declare it", msg, hint, b.unparsed[0])
	case n <= 3:
		return fmt.Sprintf("%s in the files that loaded%s; %s and %s did not parse and may declare it",
			msg, hint, strings.Join(b.unparsed[:n-1], ", "), b.unparsed[n-1])
	default:
		return fmt.Sprintf("%s in the files that loaded%s; %s and %d more files did not parse and may declare it",
			msg, hint, strings.Join(b.unparsed[:3], ", "), n-3)
	}
}

// references lists the role and group IDs that p's entities name, each
// once. The loader keeps them per unit, so that a reload checks a unit's
// references with a few lookups instead of walking its records again.
type references struct {
	roles  []string
	groups []string
}

func referencesOf(p *PolicySet) references {
	roles, groups := map[string]bool{}, map[string]bool{}
	for _, r := range p.Records {
		for _, g := range r.Groups {
			groups[g] = true
		}
		for i := range r.Statements {
			for _, role := range r.Statements[i].Roles {
				roles[role] = true
			}
			for _, g := range r.Statements[i].Groups {
				groups[g] = true
			}
		}
	}
	for _, s := range p.ResourceServers {
		for _, pol := range s.Policies {
			for _, role := range pol.Roles {
				roles[role] = true
			}
			for _, g := range pol.Groups {
				groups[g] = true
			}
		}
	}
	for _, t := range p.Tests {
		for _, role := range []string{t.Role, t.Assign} {
			if role != "" {
				roles[role] = true
			}
		}
	}
	return references{roles: slices.Sorted(maps.Keys(roles)), groups: slices.Sorted(maps.Keys(groups))}
}

// resolve reports whether every reference exists in all.
func (r references) resolve(all *PolicySet) bool {
	for _, role := range r.roles {
		if _, ok := all.Roles[role]; !ok {
			return false
		}
	}
	for _, g := range r.groups {
		if _, ok := all.Groups[g]; !ok {
			return false
		}
	}
	return true
}

func (c *checker) run() {
	c.roles()
	c.groups()
	c.records()
	for _, id := range slices.Sorted(maps.Keys(c.p.ResourceServers)) {
		c.server(c.p.ResourceServers[id])
	}
	c.tests()
}

func (c *checker) fail(pos Pos, p *fieldPath, format string, args ...any) {
	c.errs = append(c.errs, &Error{Pos: pos, Path: p.String(), Message: fmt.Sprintf(format, args...)})
}

// entityID checks an entity's key against #ID.
func (c *checker) entityID(pos Pos, p *fieldPath, id string) {
	if c.local && !isID(id) {
		c.fail(pos, p, "invalid ID %s: want a letter or digit, then up to 127 of letters, digits and _.:@-", quote.String(id))
	}
}

func (c *checker) roles() {
	if !c.local {
		return
	}
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
	if !c.local {
		return
	}
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
			c.roleRefs(s.Pos, sp.field("roles"), s.Roles)
			c.groupRefs(s.Pos, sp.field("groups"), s.Groups)
			if !c.local {
				continue
			}
			for j, res := range s.Resources {
				if _, err := match.ParseURIPattern(res); err != nil {
					c.fail(s.Pos, sp.field("resources").elem(j), "%v", err)
				}
			}
			if users, groups := s.Subjects(r); len(users) == 0 && len(groups) == 0 {
				c.fail(s.Pos, sp, "statement has no subjects: give the record or the statement users or groups")
			}
		}
	}
}

func (c *checker) roleRefs(pos Pos, p *fieldPath, roles []string) {
	if !c.local {
		crossRefs(c, pos, p, "role", roles, c.all.Roles)
	}
}

func (c *checker) groupRefs(pos Pos, p *fieldPath, groups []string) {
	if !c.local {
		crossRefs(c, pos, p, "group", groups, c.all.Groups)
	}
}

// crossRefs reports each of ids, roles or groups that another unit may
// declare, that m lacks.
func crossRefs[T any](c *checker, pos Pos, p *fieldPath, kind string, ids []string, m map[string]T) {
	for j, id := range ids {
		if _, ok := m[id]; !ok {
			if msg := c.unresolved(kind, id, suggest(id, m)); msg != "" {
				c.fail(pos, p.elem(j), "%s", msg)
			}
		}
	}
}

// missingRefs reports each of ids that m lacks: a reference to an entity of
// kind that does not exist (where says in which resource server, if any).
func missingRefs[T any](c *checker, pos Pos, p *fieldPath, kind, where string, ids []string, m map[string]T) {
	for j, id := range ids {
		if _, ok := m[id]; !ok {
			c.fail(pos, p.elem(j), "%s %s does not exist%s%s", kind, quote.String(id), where, suggest(id, m))
		}
	}
}

// scopeRefs reports each scope that the server s does not declare.
func (c *checker) scopeRefs(pos Pos, p *fieldPath, scopes []string, declared map[string]bool, s *ResourceServer) {
	for j, sc := range scopes {
		if !declared[sc] {
			c.fail(pos, p.elem(j), "scope %s is not among the scopes of resource server %s (%s)", quote.String(sc), quote.String(s.ID), listCut(s.Scopes))
		}
	}
}

func (c *checker) server(s *ResourceServer) {
	p := (*fieldPath)(nil).field("resourceServers").field(s.ID)
	if !c.local {
		for _, id := range slices.Sorted(maps.Keys(s.Policies)) {
			pol := s.Policies[id]
			pp := p.field("policies").field(id)
			c.roleRefs(pol.Pos, pp.field("roles"), pol.Roles)
			c.groupRefs(pol.Pos, pp.field("groups"), pol.Groups)
		}
		return
	}
	c.entityID(s.Pos, p, s.ID)
	scopes := map[string]bool{}
	for _, sc := range s.Scopes {
		scopes[sc] = true
	}
	for _, id := range slices.Sorted(maps.Keys(s.Resources)) {
		r := s.Resources[id]
		rp := p.field("resources").field(id)
		c.entityID(r.Pos, rp, id)
		for j, uri := range r.URIs {
			if _, err := match.ParseURIPattern(uri); err != nil {
				c.fail(r.Pos, rp.field("uris").elem(j), "%v", err)
			}
		}
		c.scopeRefs(r.Pos, rp.field("scopes"), r.Scopes, scopes, s)
	}
	for _, id := range slices.Sorted(maps.Keys(s.Policies)) {
		pol := s.Policies[id]
		pp := p.field("policies").field(id)
		c.entityID(pol.Pos, pp, id)
		missingRefs(c, pol.Pos, pp.field("policies"), "policy", " in resource server "+quote.String(s.ID), pol.Policies, s.Policies)
		if pol.Type == PolicyTime {
			if _, err := time.LoadLocation(pol.Timezone); err != nil || pol.Timezone == "" || pol.Timezone == "Local" {
				c.fail(pol.Pos, pp.field("timezone"), "unknown time zone %s: want an IANA name such as \"Europe/Berlin\" or \"UTC\"", quote.String(pol.Timezone))
			}
			if pol.NotBefore != nil && pol.NotOnOrAfter != nil && !pol.NotBefore.Before(*pol.NotOnOrAfter) {
				c.fail(pol.Pos, pp.field("notOnOrAfter"), "must be later than notBefore, or the policy never grants")
			}
		}
	}
	c.cycles(s, p)
	names := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(s.Permissions)) {
		perm := s.Permissions[id]
		pp := p.field("permissions").field(id)
		c.entityID(perm.Pos, pp, id)
		if other, dup := names[perm.Name]; dup {
			c.fail(perm.Pos, pp.field("name"), "permission name %s is already used by permission %s of resource server %s: names are unique within a server", quote.String(perm.Name), quote.String(other), quote.String(s.ID))
		} else {
			names[perm.Name] = id
		}
		c.scopeRefs(perm.Pos, pp.field("scopes"), perm.Scopes, scopes, s)
		where := " in resource server " + quote.String(s.ID)
		missingRefs(c, perm.Pos, pp.field("resources"), "resource", where, perm.Resources, s.Resources)
		missingRefs(c, perm.Pos, pp.field("policies"), "policy", where, perm.Policies, s.Policies)
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
			c.fail(first.Pos, p.field("policies").field(cycle[0]).field("policies"), "aggregate policies form a cycle: %s", joinCut(cycle, " -> "))
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
	for _, id := range slices.Sorted(maps.Keys(s.Policies)) {
		visit(id)
	}
}

func (c *checker) tests() {
	for name, t := range c.p.Tests {
		p := (*fieldPath)(nil).field("tests").field(name)
		if !c.local {
			for label, role := range map[string]string{"role": t.Role, "assign": t.Assign} {
				if role != "" {
					if _, ok := c.all.Roles[role]; !ok {
						if msg := c.unresolved("role", role, suggest(role, c.all.Roles)); msg != "" {
							c.fail(t.Pos, p.field(label), "%s", msg)
						}
					}
				}
			}
			continue
		}
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
	}
}

// isID reports whether s matches #ID, ^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$,
// without the cost of a regular expression on every one of 100,000 records.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != ':' && c != '@' && c != '-') {
			return false
		}
	}
	return true
}

// suggest returns ` (did you mean "X"?)` for the closest key of m to s, if one is close.
func suggest[T any](s string, m map[string]T) string {
	if len(m) > 10_000 {
		return ""
	}
	const far = 3 // an edit distance from which a name is no longer a likely typo
	best, bestDist := "", far
	for k := range m {
		d := editDistance(strings.ToLower(s), strings.ToLower(k), far)
		if d < bestDist || d == bestDist && d < far && k < best {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", quote.String(best))
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

// maxListed bounds how many of a user's names one message lists.
const maxListed = 10

// listCut lists names for a message, each cut (quote.Cut), at most
// maxListed of them and then how many more there are.
func listCut(names []string) string {
	if len(names) <= maxListed {
		return joinCut(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", joinCut(names[:maxListed], ", "), len(names)-maxListed)
}

// joinCut joins names, each cut (quote.Cut), with sep.
func joinCut(names []string, sep string) string {
	cut := make([]string, len(names))
	for i, n := range names {
		cut[i] = quote.Cut(n)
	}
	return strings.Join(cut, sep)
}
