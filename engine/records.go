package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charter-policy/charter/schema/match"
)

// Entry is a permission entry a user holds on a resource: entries of the
// same action merged with allow, grant and delegate OR-ed (SPEC 2.4).
//
// Action is shown as a role declares it ("records:*" stays "records:*",
// SPEC 5). Entries merge when their actions stand for the same pattern
// ("Records", "records" and "records:*" do); the merged entry shows the
// smallest of the declared spellings in byte order ("Records" before
// "records" before "records:*"), so the answer does not depend on the
// order of roles or files.
type Entry struct {
	Action   string `json:"action"`
	Allow    bool   `json:"allow"`
	Grant    bool   `json:"grant"`
	Delegate bool   `json:"delegate"`
}

// recordEval returns the evaluation of the record layer for user on
// resource, once both are validated.
func (s *Snapshot) recordEval(user, resource, environment string) (*evalCtx, error) {
	uri, err := parseUserResource(user, "resource", resource)
	if err != nil {
		return nil, err
	}
	q := Question{User: user, Environment: environment}
	return s.newEval(&q, uri, nil), nil
}

// Roles returns the IDs of the roles user holds on resource through the
// record layer (SPEC 2.4), sorted.
func (s *Snapshot) Roles(user, resource, environment string) ([]string, error) {
	e, err := s.recordEval(user, resource, environment)
	if err != nil {
		return nil, err
	}
	return append([]string{}, e.heldRoles()...), nil
}

// Permissions returns the entries user holds on resource (SPEC 2.4),
// merged per action and sorted by the normalized action (lower case,
// without a trailing ":*"), each shown as declared (see Entry).
func (s *Snapshot) Permissions(user, resource, environment string) ([]Entry, error) {
	e, err := s.recordEval(user, resource, environment)
	if err != nil {
		return nil, err
	}
	held := e.heldEntries()
	out := make([]Entry, len(held))
	for i, h := range held {
		out[i] = Entry{Action: h.action, Allow: h.allow, Grant: h.grant, Delegate: h.delegate}
	}
	return out, nil
}

// Assignable answers whether user may assign role on resource to others (SPEC 2.5).
func (s *Snapshot) Assignable(user, role, resource, environment string) (Decision, error) {
	return s.Decide(Question{User: user, Resource: resource, Assign: role, Environment: environment})
}

// walkGrants calls fn for every statement that applies to the user, covers
// the URI and belongs to a record of the question's environment (SPEC 2.3,
// 2.4, 2.7), for the user and then each of its groups, nearest ancestor
// first, then the subjects' wildcard patterns. It stops when fn returns
// false and reports whether it ran to the end.
func (e *evalCtx) walkGrants(fn func(g *grant, kind byte, subject, pattern string) bool) bool {
	if !e.walkSubject(kindUser, e.user, fn) {
		return false
	}
	e.loadGroups()
	for _, g := range e.groups {
		if !e.walkSubject(kindGroup, g, fn) {
			return false
		}
	}
	if !e.s.hasWildcards {
		return true
	}
	if !e.walkWildcards(kindUser, e.user, fn) {
		return false
	}
	for _, g := range e.groups {
		if !e.walkWildcards(kindGroup, g, fn) {
			return false
		}
	}
	return true
}

// walkSubject visits the grants of one subject on the URI and its
// ancestors: a longest-prefix lookup of the URI's key finds the nearest
// ancestor (or the URI itself) with a row, and the walk goes on from that
// row's parent. A subject without grants on the path costs one lookup,
// whatever the depth of the URI.
func (e *evalCtx) walkSubject(kind byte, subject string, fn func(*grant, byte, string, string) bool) bool {
	e.kb.b = grantKey(e.kb.b[:0], kind, subject, e.uri)
	for n := len(e.kb.b); n > subjectKeyLen; {
		e.kb.b = e.kb.b[:n]
		raw, err := e.s.txn.LongestPrefix(tableGrants, indexIDPrefix, e.kb)
		if err != nil {
			panic(fmt.Sprintf("engine: grant lookup: %v", err))
		}
		row, ok := raw.(*grantRow)
		if !ok {
			return true
		}
		anc := uriPrefix(e.uri, keySegments(row.key))
		for r := row; r != nil; r = r.next {
			if !identIs(r.ident, kind, subject, anc) {
				continue // a hash collision
			}
			for i := range r.grants {
				g := &r.grants[i]
				if !g.inEnv(e.env) {
					e.traceExcluded(g)
					continue
				}
				if !fn(g, kind, subject, anc) {
					return false
				}
			}
		}
		n = len(row.key) - segmentKeyLen
	}
	return true
}

func (e *evalCtx) walkWildcards(kind byte, subject string, fn func(*grant, byte, string, string) bool) bool {
	e.kb.b = subjectKey(e.kb.b[:0], kind, subject)
	row, _ := e.s.lookup(tableWildcardGrants, e.kb).(*wildcardRow)
	for r := row; r != nil; r = r.next {
		if !subjectIdentIs(r.ident, kind, subject) {
			continue // a hash collision
		}
		for i := range r.grants {
			g := &r.grants[i]
			if !g.pattern.Covers(e.uri) {
				continue
			}
			if !g.inEnv(e.env) {
				e.traceExcluded(&g.grant)
				continue
			}
			if !fn(&g.grant, kind, subject, g.pattern.String()) {
				return false
			}
		}
	}
	return true
}

func (e *evalCtx) traceExcluded(g *grant) {
	if e.tr.on() {
		e.tr.add(Step{Kind: StepRecord, ID: g.rec.ID, Source: g.rec.Pos.Short(), Result: "excluded",
			Detail: "tagged environment " + g.env + ", question is for " + e.env})
	}
}

func (e *evalCtx) traceStatement(g *grant, kind byte, subject, pattern string) {
	if !e.tr.on() {
		return
	}
	via := subject
	if kind == kindGroup {
		via = "group " + subject
	}
	st := g.statement()
	e.tr.add(Step{Kind: StepStatement, ID: fmt.Sprintf("%s[%d]", g.rec.ID, g.stmt), Source: g.source(), Result: "applies",
		Detail: fmt.Sprintf("%s holds %s on %s", via, strings.Join(st.Roles, ", "), pattern)})
}

// grantAllows reports whether one of the grant's roles has an entry that
// matches action with allow.
func (s *Snapshot) grantAllows(g *grant, action string) bool { return s.rolesAllow(g.roles, action) }

// rolesAllow reports whether one of the roles has an entry that matches
// action with allow.
func (s *Snapshot) rolesAllow(roles []string, action string) bool {
	for _, id := range roles {
		if r := s.roles[id]; r != nil {
			for i := range r.entries {
				if en := &r.entries[i]; en.allow && en.pattern.Matches(action) {
					return true
				}
			}
		}
	}
	return false
}

// recordAllows decides by the record layer (SPEC 2.4).
func (e *evalCtx) recordAllows(action string) bool {
	allowed := false
	e.walkGrants(func(g *grant, kind byte, subject, pattern string) bool {
		e.traceStatement(g, kind, subject, pattern)
		for _, id := range g.roles {
			r := e.s.roles[id]
			if r == nil {
				continue
			}
			matched := false
			for i := range r.entries {
				en := &r.entries[i]
				if !en.pattern.Matches(action) {
					continue
				}
				matched = true
				if e.tr.on() {
					e.tr.add(Step{Kind: StepRole, ID: id, Source: r.entrySource(i), Depth: 1, Result: allowDeny(en.allow),
						Detail: fmt.Sprintf("entry %s matches %s with allow: %t", en.action, action, en.allow)})
				}
				if en.allow {
					allowed = true
					if !e.tr.on() {
						return false
					}
				}
			}
			if !matched && e.tr.on() {
				e.tr.add(Step{Kind: StepRole, ID: id, Source: r.role.Pos.Short(), Depth: 1, Result: "no match",
					Detail: "no entry matches " + action})
			}
		}
		return true
	})
	return allowed
}

// heldRoles returns the sorted roles the user holds on the URI (SPEC 2.4).
func (e *evalCtx) heldRoles() []string {
	if e.rolesDone {
		return e.roles
	}
	var roles []string
	e.walkGrants(func(g *grant, kind byte, subject, pattern string) bool {
		e.traceStatement(g, kind, subject, pattern)
		roles = append(roles, g.roles...)
		return true
	})
	slices.Sort(roles)
	e.roles, e.rolesDone = slices.Compact(roles), true
	return e.roles
}

// heldEntry is an entry held on a URI: the entries of one pattern merged.
type heldEntry struct {
	pattern                match.ActionPattern
	action                 string // the smallest declared spelling of pattern
	allow, grant, delegate bool
}

// heldEntries returns the entries the user holds on the URI, merged per
// pattern and sorted by pattern (SPEC 2.4), each with the smallest of its
// declared spellings (see Entry).
func (e *evalCtx) heldEntries() []heldEntry {
	var out []heldEntry
	for _, id := range e.heldRoles() {
		r := e.s.roles[id]
		if r == nil {
			continue
		}
		for _, en := range r.entries {
			i := slices.IndexFunc(out, func(h heldEntry) bool { return h.pattern == en.pattern })
			if i < 0 {
				out = append(out, heldEntry{pattern: en.pattern, action: en.action})
				i = len(out) - 1
			}
			if en.action < out[i].action {
				out[i].action = en.action
			}
			out[i].allow = out[i].allow || en.allow
			out[i].grant = out[i].grant || en.grant
			out[i].delegate = out[i].delegate || en.delegate
		}
	}
	slices.SortFunc(out, func(a, b heldEntry) int { return strings.Compare(a.pattern.String(), b.pattern.String()) })
	return out
}

// assignable decides SPEC 2.5 for role.
func (e *evalCtx) assignable(role *roleRow) bool {
	held := e.heldEntries()
	ok := true
	for i, p := range role.entries {
		needDelegate := p.grant || p.delegate
		found := ""
		for _, h := range held {
			if h.pattern.Covers(p.pattern) && (h.delegate || (!needDelegate && h.grant)) {
				found = h.action
				break
			}
		}
		if e.tr.on() {
			need := "grant or delegate"
			if needDelegate {
				need = "delegate"
			}
			detail := fmt.Sprintf("entry %s needs %s on a covering action: ", p.action, need)
			if found != "" {
				detail += "held through " + found
			} else {
				detail += "not held"
			}
			e.tr.add(Step{Kind: StepRole, ID: role.role.ID, Source: role.entrySource(i), Result: allowDeny(found != ""), Detail: detail})
		}
		if found == "" {
			ok = false
			if !e.tr.on() {
				break
			}
		}
	}
	return ok
}
