package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charter-policy/charter/schema"
)

// maxPolicyDepth bounds the nesting of aggregate policies. Validation
// rejects cycles; the bound keeps a bad snapshot from recursing forever.
const maxPolicyDepth = 32

// governing returns the resource-server resources whose URI patterns cover
// the question's URI (SPEC 2.6): the longest-prefix row of the server URI
// table, which lists every non-wildcard pattern covering it, plus the few
// wildcard patterns. Most URIs fall outside every server's first segments
// and cost one map lookup.
func (e *evalCtx) governing() []serverMatch {
	s := e.s
	if len(s.servers) == 0 {
		return nil
	}
	var out []serverMatch
	root, _, _ := strings.Cut(e.uri, "/")
	if _, ok := s.serverRoots[root]; ok {
		e.kb.b = serverURIKey(e.kb.b[:0], e.uri)
		raw, err := s.txn.LongestPrefix(tableServerURIs, indexIDPrefix, e.kb)
		if err != nil {
			panic(fmt.Sprintf("engine: server URI lookup: %v", err))
		}
		if row, ok := raw.(*serverURIRow); ok {
			out = append(out, row.matches...)
		}
	}
	for _, m := range s.serverWildcard {
		if m.pattern.Covers(e.uri) {
			out = append(out, m)
		}
	}
	return out
}

// serversAllow decides by the governing servers: all must allow.
func (e *evalCtx) serversAllow(gov []serverMatch, action string) bool {
	allowed := true
	var buf [4]serverMatch
	for _, srv := range e.s.servers {
		ms := appendMatches(buf[:0], srv, gov)
		if len(ms) == 0 {
			continue
		}
		if !e.serverAllows(srv, ms, action) {
			allowed = false
			if !e.tr.on() {
				break
			}
		}
	}
	if e.tr.on() {
		detail := "every governing resource server allows"
		if !allowed {
			detail = "a governing resource server denies"
		}
		e.tr.add(Step{Kind: StepDecision, ID: LayerResourceServer, Result: allowDeny(allowed), Detail: detail + "; the record layer does not decide"})
	}
	return allowed
}

// appendMatches appends to ms the matches of srv among the governing
// matches, each resource once: R's matches in srv (SPEC 2.6). A check
// passes an array on its stack.
func appendMatches(ms []serverMatch, srv *serverRow, gov []serverMatch) []serverMatch {
	for _, m := range gov {
		if m.srv == srv && !slices.ContainsFunc(ms, func(x serverMatch) bool { return x.res == m.res }) {
			ms = append(ms, m)
		}
	}
	return ms
}

// appendApplicable appends to applicable the permissions of srv that apply
// to the matches and the action.
func appendApplicable(applicable []*compiledPermission, srv *serverRow, ms []serverMatch, action string) []*compiledPermission {
	for _, p := range srv.permissions {
		if permissionApplies(p, ms, action) {
			applicable = append(applicable, p)
		}
	}
	return applicable
}

// serverAllows decides one server (SPEC 2.6, "S decides").
func (e *evalCtx) serverAllows(srv *serverRow, ms []serverMatch, action string) bool {
	sv := srv.server
	tr := e.tr
	if tr.on() {
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.res.res.ID
		}
		tr.add(Step{Kind: StepServer, ID: sv.ID, Source: sv.Pos.Short(),
			Detail: fmt.Sprintf("governs %s through %s; %s, %s", e.uri, strings.Join(ids, ", "), sv.EnforcementMode, sv.DecisionStrategy)})
		tr.indent(1)
		defer tr.indent(-1)
		for _, m := range ms {
			tr.add(Step{Kind: StepResource, ID: m.res.res.ID, Source: m.res.res.Pos.Short(), Result: "matches",
				Detail: "pattern " + m.pattern.String() + " covers " + e.uri})
		}
	}
	if sv.EnforcementMode == schema.EnforcementDisabled {
		tr.add(Step{Kind: StepServer, ID: sv.ID, Source: sv.Pos.Short(), Result: "allow", Detail: "enforcement disabled"})
		return true
	}
	var buf [8]*compiledPermission
	applicable := appendApplicable(buf[:0], srv, ms, action)
	if len(applicable) == 0 {
		ok := sv.EnforcementMode == schema.EnforcementPermissive
		tr.add(Step{Kind: StepServer, ID: sv.ID, Source: sv.Pos.Short(), Result: allowDeny(ok),
			Detail: "no permission applies to " + action + "; enforcement " + sv.EnforcementMode})
		return ok
	}
	grants, denies := 0, 0
	for _, p := range applicable {
		if e.permissionGrants(srv, p) {
			grants++
		} else {
			denies++
		}
		if denies > 0 && sv.DecisionStrategy != schema.StrategyAffirmative && !tr.on() {
			return false
		}
		if grants > 0 && sv.DecisionStrategy == schema.StrategyAffirmative && !tr.on() {
			return true
		}
	}
	strategy := sv.DecisionStrategy
	if strategy == "" {
		strategy = schema.StrategyUnanimous
	}
	ok := combine(strategy, grants, denies)
	tr.add(Step{Kind: StepServer, ID: sv.ID, Source: sv.Pos.Short(), Result: allowDeny(ok), Detail: arithmetic(strategy, grants, denies, ok)})
	return ok
}

// permissionApplies reports whether a permission applies to the matches
// and the action (SPEC 2.6, first two bullets).
func permissionApplies(p *compiledPermission, ms []serverMatch, action string) bool {
	switch p.perm.Type {
	case schema.PermissionResource:
		for _, m := range ms {
			listed := slices.Contains(p.perm.Resources, m.res.res.ID) ||
				p.perm.ResourceType != "" && p.perm.ResourceType == m.res.res.Type
			if listed && (len(m.res.scopes) == 0 || slices.Contains(m.res.scopes, action)) {
				return true
			}
		}
		return false
	case schema.PermissionScope:
		if !slices.Contains(p.scopes, action) {
			return false
		}
		if len(p.perm.Resources) == 0 {
			return true
		}
		for _, m := range ms {
			if slices.Contains(p.perm.Resources, m.res.res.ID) {
				return true
			}
		}
		return false
	}
	return false
}

// permissionGrants evaluates a permission: its policies combined by its
// strategy, then its logic (SPEC 2.6, "A permission combines").
func (e *evalCtx) permissionGrants(srv *serverRow, p *compiledPermission) bool {
	perm := p.perm
	tr := e.tr
	strategy := strategyOr(perm.DecisionStrategy)
	idx := len(tr.stepsOrNil())
	tr.add(Step{Kind: StepPermission, ID: perm.ID, Source: perm.Pos.Short()})
	tr.indent(1)
	grants, denies := 0, 0
	for _, id := range perm.Policies {
		if e.policyGrants(srv, id, 0) {
			grants++
		} else {
			denies++
		}
	}
	tr.indent(-1)
	raw := len(perm.Policies) > 0 && combine(strategy, grants, denies)
	final := raw != (perm.Logic == schema.LogicNegative)
	if tr.on() {
		st := &tr.steps[idx]
		st.Result, st.Final = grantDeny(raw), grantDeny(final)
		if len(perm.Policies) == 0 {
			st.Detail = "no policies: deny"
		} else {
			st.Detail = arithmeticGrant(strategy, grants, denies, raw)
		}
		if perm.Logic == schema.LogicNegative {
			st.Detail += "; negative logic"
		}
	}
	return final
}

// policyGrants evaluates a policy of srv (SPEC 2.6, "A policy evaluates").
func (e *evalCtx) policyGrants(srv *serverRow, id string, depth int) bool {
	tr := e.tr
	cp := srv.policies[id]
	if cp == nil || depth > maxPolicyDepth {
		tr.add(Step{Kind: StepPolicy, ID: id, Result: "deny", Detail: "no such policy"})
		return false
	}
	pol := cp.pol
	idx := len(tr.stepsOrNil())
	tr.add(Step{Kind: StepPolicy, ID: id, Source: pol.Pos.Short()})
	var raw bool
	var detail string
	switch pol.Type {
	case schema.PolicyRole:
		tr.indent(1)
		held := e.heldRoles()
		tr.indent(-1)
		n := 0
		for _, r := range pol.Roles {
			if slices.Contains(held, r) {
				n++
			}
		}
		if pol.RequireAll {
			raw = n == len(pol.Roles)
		} else {
			raw = n > 0
		}
		if tr.on() {
			mode := "any"
			if pol.RequireAll {
				mode = "all"
			}
			detail = fmt.Sprintf("role: holds %d of %s (needs %s); holds [%s]", n, strings.Join(pol.Roles, ", "), mode, strings.Join(held, ", "))
		}
	case schema.PolicyUser:
		raw = slices.Contains(pol.Users, e.user)
		detail = "user: " + e.user + " " + listedOrNot(raw)
	case schema.PolicyGroup:
		e.loadGroups()
		for _, g := range pol.Groups {
			if slices.Contains(e.groups, g) {
				raw = true
				break
			}
		}
		if tr.on() {
			detail = fmt.Sprintf("group: %s in one of %s: %t", e.user, strings.Join(pol.Groups, ", "), raw)
		}
	case schema.PolicyTime:
		raw, detail = e.timeGrants(cp)
	case schema.PolicyAggregate:
		strategy := strategyOr(pol.DecisionStrategy)
		tr.indent(1)
		grants, denies := 0, 0
		for _, sub := range pol.Policies {
			if e.policyGrants(srv, sub, depth+1) {
				grants++
			} else {
				denies++
			}
		}
		tr.indent(-1)
		raw = combine(strategy, grants, denies)
		if tr.on() {
			detail = "aggregate: " + arithmeticGrant(strategy, grants, denies, raw)
		}
	default:
		detail = "unknown policy type " + pol.Type
	}
	final := raw != (pol.Logic == schema.LogicNegative)
	if tr.on() {
		st := &tr.steps[idx]
		st.Result, st.Final, st.Detail = grantDeny(raw), grantDeny(final), detail
		if pol.Logic == schema.LogicNegative {
			st.Detail += "; negative logic"
		}
	}
	return final
}

func listedOrNot(ok bool) string {
	if ok {
		return "is listed"
	}
	return "is not listed"
}

// timeGrants evaluates a time policy against the question's time.
func (e *evalCtx) timeGrants(cp *compiledPolicy) (bool, string) {
	pol := cp.pol
	t := e.now()
	if cp.locErr != nil {
		return false, "time: unknown timezone " + pol.Timezone
	}
	if pol.NotBefore != nil && t.Before(*pol.NotBefore) {
		return false, "time: " + t.Format("2006-01-02T15:04:05Z07:00") + " is before notBefore " + pol.NotBefore.Format("2006-01-02T15:04:05Z07:00")
	}
	if pol.NotOnOrAfter != nil && !t.Before(*pol.NotOnOrAfter) {
		return false, "time: " + t.Format("2006-01-02T15:04:05Z07:00") + " is not before notOnOrAfter " + pol.NotOnOrAfter.Format("2006-01-02T15:04:05Z07:00")
	}
	local := t.In(cp.loc)
	if h := pol.Hours; h != nil {
		hour := local.Hour()
		in := h.From <= hour && hour <= h.To
		if h.From > h.To {
			in = hour >= h.From || hour <= h.To
		}
		if !in {
			return false, fmt.Sprintf("time: hour %d in %s is outside [%d, %d]", hour, cp.loc, h.From, h.To)
		}
	}
	if len(pol.Weekdays) > 0 && !cp.weekdays[local.Weekday()] {
		return false, fmt.Sprintf("time: %s in %s is not one of %s", weekdayName(local.Weekday()), cp.loc, strings.Join(pol.Weekdays, ", "))
	}
	return true, fmt.Sprintf("time: %s (%s in %s) passes every bound", t.Format("2006-01-02T15:04:05Z07:00"), local.Format("Mon 15:04"), cp.loc)
}

func strategyOr(s string) string {
	if s == "" {
		return schema.StrategyUnanimous
	}
	return s
}

// combine applies a decision strategy to counts of grants and denies.
func combine(strategy string, grants, denies int) bool {
	switch strategy {
	case schema.StrategyAffirmative:
		return grants > 0
	case schema.StrategyConsensus:
		return grants > denies
	default:
		return denies == 0 && grants > 0
	}
}

func arithmetic(strategy string, grants, denies int, ok bool) string {
	return fmt.Sprintf("%s %d grant / %d deny: %s", strategy, grants, denies, allowDeny(ok))
}

func arithmeticGrant(strategy string, grants, denies int, ok bool) string {
	return fmt.Sprintf("%s %d grant / %d deny: %s", strategy, grants, denies, grantDeny(ok))
}
