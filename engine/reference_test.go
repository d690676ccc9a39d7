package engine

// A deliberately naive reference evaluator of SPEC section 2: direct loops
// over schema.PolicySet with its own string matching, no memdb, no compiled
// tables. It shares no code with the engine, so that the differential
// tests compare two independent readings of the SPEC.

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema"
)

// refURI normalizes a URI; ok is false for an empty one, or one with an
// empty, "." or ".." segment.
func refURI(s string) (string, bool) {
	s = strings.TrimPrefix(s, "/")
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return "", false
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", false
		}
		for _, c := range seg {
			if c < 0x20 {
				return "", false
			}
		}
	}
	return s, true
}

// refCovers: pattern covers uri when its segments are a prefix of uri's, "*" matching any one.
func refCovers(pattern, uri string) bool {
	ps := strings.Split(pattern, "/")
	us := strings.Split(uri, "/")
	if len(us) < len(ps) {
		return false
	}
	for i := range ps {
		if ps[i] != "*" && ps[i] != us[i] {
			return false
		}
	}
	return true
}

// refActionMatches: a role entry's action matches itself and every action below it.
func refActionMatches(pattern, action string) bool {
	p := strings.ToLower(pattern)
	a := strings.ToLower(action)
	if p == "*" {
		return true
	}
	p = strings.TrimSuffix(p, ":*")
	ps := strings.Split(p, ":")
	as := strings.Split(a, ":")
	if len(as) < len(ps) {
		return false
	}
	for i := range ps {
		if ps[i] != as[i] {
			return false
		}
	}
	return true
}

// refActionCovers: h matches every action p matches.
func refActionCovers(h, p string) bool {
	if h == "*" {
		return true
	}
	if p == "*" {
		return false
	}
	return refActionMatches(h, strings.TrimSuffix(strings.ToLower(p), ":*"))
}

func refInGroup(p *schema.PolicySet, user, group string) bool {
	g := p.Groups[group]
	return g != nil && slices.Contains(g.Users, user)
}

func refStatementApplies(p *schema.PolicySet, r *schema.Record, st *schema.Statement, user string) bool {
	users, groups := r.Users, r.Groups
	if len(st.Users) > 0 || len(st.Groups) > 0 {
		users, groups = st.Users, st.Groups
	}
	if slices.Contains(users, user) {
		return true
	}
	for _, g := range groups {
		if refInGroup(p, user, g) {
			return true
		}
	}
	return false
}

// refStatements returns every statement that applies to user and covers uri in env.
func refStatements(p *schema.PolicySet, user, uri, env string) []*schema.Statement {
	var out []*schema.Statement
	for _, r := range p.Records {
		if e := r.Tags["environment"]; env != "" && e != "" && e != env {
			continue
		}
		for i := range r.Statements {
			st := &r.Statements[i]
			if !refStatementApplies(p, r, st, user) {
				continue
			}
			for _, res := range st.Resources {
				if n, ok := refURI(res); ok && refCovers(n, uri) {
					out = append(out, st)
					break
				}
			}
		}
	}
	return out
}

func refRoles(p *schema.PolicySet, user, uri, env string) []string {
	set := map[string]bool{}
	for _, st := range refStatements(p, user, uri, env) {
		for _, r := range st.Roles {
			set[r] = true
		}
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// refEntries merges the entries per action (lower case, without ":*") and
// shows each as declared; of two spellings, the smaller string (SPEC 5).
func refEntries(p *schema.PolicySet, user, uri, env string) []Entry {
	merged := map[string]*Entry{}
	for _, id := range refRoles(p, user, uri, env) {
		role := p.Roles[id]
		if role == nil {
			continue
		}
		for _, rp := range role.Permissions {
			a := strings.TrimSuffix(strings.ToLower(rp.Action), ":*")
			e := merged[a]
			if e == nil {
				e = &Entry{Action: rp.Action}
				merged[a] = e
			}
			if rp.Action < e.Action {
				e.Action = rp.Action
			}
			e.Allow = e.Allow || rp.Allow
			e.Grant = e.Grant || rp.Grant
			e.Delegate = e.Delegate || rp.Delegate
		}
	}
	var keys []string
	for a := range merged {
		keys = append(keys, a)
	}
	sort.Strings(keys)
	var out []Entry
	for _, a := range keys {
		out = append(out, *merged[a])
	}
	return out
}

func refRecordAllows(p *schema.PolicySet, user, uri, action, env string) bool {
	for _, st := range refStatements(p, user, uri, env) {
		for _, id := range st.Roles {
			if role := p.Roles[id]; role != nil {
				for _, rp := range role.Permissions {
					if rp.Allow && refActionMatches(rp.Action, action) {
						return true
					}
				}
			}
		}
	}
	return false
}

func refAssignable(p *schema.PolicySet, user, uri, roleID, env string) bool {
	held := refEntries(p, user, uri, env)
	for _, want := range p.Roles[roleID].Permissions {
		ok := false
		for _, h := range held {
			if !refActionCovers(h.Action, want.Action) {
				continue
			}
			if want.Grant || want.Delegate {
				ok = ok || h.Delegate
			} else {
				ok = ok || h.Grant || h.Delegate
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func refStrategy(strategy string, grants, denies int) bool {
	switch strategy {
	case "affirmative":
		return grants >= 1
	case "consensus":
		return grants > denies
	default:
		return denies == 0
	}
}

func refPolicy(p *schema.PolicySet, s *schema.ResourceServer, id, user, uri, env string, t time.Time, depth int) bool {
	pol := s.Policies[id]
	if pol == nil || depth > 40 {
		return false
	}
	var v bool
	switch pol.Type {
	case "role":
		held := refRoles(p, user, uri, env)
		n := 0
		for _, r := range pol.Roles {
			if slices.Contains(held, r) {
				n++
			}
		}
		v = n > 0
		if pol.RequireAll {
			v = n == len(pol.Roles)
		}
	case "user":
		v = slices.Contains(pol.Users, user)
	case "group":
		for _, g := range pol.Groups {
			v = v || refInGroup(p, user, g)
		}
	case "time":
		v = true
		if pol.NotBefore != nil && t.Before(*pol.NotBefore) {
			v = false
		}
		if pol.NotOnOrAfter != nil && !t.Before(*pol.NotOnOrAfter) {
			v = false
		}
		tz := pol.Timezone
		if tz == "" {
			tz = "UTC"
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			v = false
			break
		}
		lt := t.In(loc)
		if h := pol.Hours; h != nil {
			hr := lt.Hour()
			if h.From <= h.To {
				v = v && h.From <= hr && hr <= h.To
			} else {
				v = v && (hr >= h.From || hr <= h.To)
			}
		}
		if len(pol.Weekdays) > 0 {
			day := strings.ToLower(lt.Format("Mon"))
			v = v && slices.Contains(pol.Weekdays, day)
		}
	case "aggregate":
		g, d := 0, 0
		for _, sub := range pol.Policies {
			if refPolicy(p, s, sub, user, uri, env, t, depth+1) {
				g++
			} else {
				d++
			}
		}
		strategy := pol.DecisionStrategy
		v = refStrategy(strategy, g, d)
	}
	if pol.Logic == "negative" {
		v = !v
	}
	return v
}

// refServerDecides returns (governs, allows).
func refServerDecides(p *schema.PolicySet, s *schema.ResourceServer, user, uri, action, env string, t time.Time) (bool, bool) {
	governs, allows, _ := refServerVerdict(p, s, user, uri, action, env, t)
	return governs, allows
}

// refServerVerdict returns whether s governs uri, whether it allows, and
// the IDs of the applicable permissions that grant ("" alone for a server
// that allows with none).
func refServerVerdict(p *schema.PolicySet, s *schema.ResourceServer, user, uri, action, env string, t time.Time) (bool, bool, []string) {
	var matches []*schema.Resource
	for _, r := range s.Resources {
		for _, u := range r.URIs {
			if n, ok := refURI(u); ok && refCovers(n, uri) {
				matches = append(matches, r)
				break
			}
		}
	}
	if len(matches) == 0 {
		return false, false, nil
	}
	if s.EnforcementMode == "disabled" {
		return true, true, []string{""}
	}
	inScopes := func(scopes []string) bool {
		for _, sc := range scopes {
			if strings.EqualFold(sc, action) {
				return true
			}
		}
		return false
	}
	g, d := 0, 0
	var granting []string
	for id, perm := range s.Permissions {
		applies := false
		if perm.Type == "resource" {
			for _, m := range matches {
				listed := slices.Contains(perm.Resources, m.ID) || (perm.ResourceType != "" && perm.ResourceType == m.Type)
				if listed && (len(m.Scopes) == 0 || inScopes(m.Scopes)) {
					applies = true
				}
			}
		} else if inScopes(perm.Scopes) {
			applies = len(perm.Resources) == 0
			for _, m := range matches {
				applies = applies || slices.Contains(perm.Resources, m.ID)
			}
		}
		if !applies {
			continue
		}
		pg, pd := 0, 0
		for _, id := range perm.Policies {
			if refPolicy(p, s, id, user, uri, env, t, 0) {
				pg++
			} else {
				pd++
			}
		}
		v := len(perm.Policies) > 0 && refStrategy(perm.DecisionStrategy, pg, pd)
		if perm.Logic == "negative" {
			v = !v
		}
		if v {
			g++
			granting = append(granting, id)
		} else {
			d++
		}
	}
	if g+d == 0 {
		return true, s.EnforcementMode == "permissive", []string{""}
	}
	sort.Strings(granting)
	if s.DecisionStrategy == "affirmative" {
		return true, g > 0, granting
	}
	return true, d == 0, granting
}

func refCheck(p *schema.PolicySet, user, uri, action, env string, t time.Time) bool {
	governed, allowed := false, true
	for _, s := range p.ResourceServers {
		if gov, ok := refServerDecides(p, s, user, uri, action, env, t); gov {
			governed = true
			allowed = allowed && ok
		}
	}
	if governed {
		return allowed
	}
	return refRecordAllows(p, user, uri, action, env)
}

func refResources(p *schema.PolicySet, user, collection, action, env string, t time.Time) ResourceList {
	out := ResourceList{AccessToAllSubResources: refCheck(p, user, collection, action, env, t)}
	seen := map[string]bool{}
	for _, r := range p.Records {
		if e := r.Tags["environment"]; env != "" && e != "" && e != env {
			continue
		}
		for i := range r.Statements {
			st := &r.Statements[i]
			if !refStatementApplies(p, r, st, user) {
				continue
			}
			for _, res := range st.Resources {
				n, ok := refURI(res)
				if !ok || seen[n] || (n != collection && !strings.HasPrefix(n, collection+"/")) {
					continue
				}
				seen[n] = true
				if refCheck(p, user, n, action, env, t) {
					out.Resources = append(out.Resources, n)
				}
			}
		}
	}
	sort.Strings(out.Resources)
	return out
}

// refAnswer answers a spec case the naive way, rendered as answer() renders.
func refAnswer(p *schema.PolicySet, q Question, kind string) string {
	uri, ok := refURI(q.Resource)
	if !ok || (kind == "" && q.Action != "" && strings.Contains("/"+uri+"/", "/*/")) {
		return "error"
	}
	if kind == "" && q.Action == "" && strings.Contains("/"+uri+"/", "/*/") {
		return "error"
	}
	t := q.Time
	if t.IsZero() {
		t = time.Now()
	}
	switch kind {
	case "roles":
		return strings.Join(refRoles(p, q.User, uri, q.Environment), " ")
	case "perms":
		return renderEntries(refEntries(p, q.User, uri, q.Environment))
	case "resources":
		return renderList(refResources(p, q.User, uri, q.Action, q.Environment, t))
	}
	switch {
	case q.Action != "":
		if strings.Contains(q.Action, "*") || strings.Contains(q.Action, "::") || strings.HasPrefix(q.Action, ":") || strings.HasSuffix(q.Action, ":") {
			return "error"
		}
		return allowDeny(refCheck(p, q.User, uri, q.Action, q.Environment, t))
	case q.Role != "":
		if p.Roles[q.Role] == nil {
			return "error"
		}
		return allowDeny(slices.Contains(refRoles(p, q.User, uri, q.Environment), q.Role))
	default:
		if p.Roles[q.Assign] == nil {
			return "error"
		}
		return allowDeny(refAssignable(p, q.User, uri, q.Assign, q.Environment))
	}
}

// The enumerations, the naive way: every record and statement of the
// policy visited for every question.

// refPos renders a statement's position as file:line, or its record's when
// it has none.
func refPos(r *schema.Record, i int) string {
	pos := r.Statements[i].Pos
	if pos.File == "" {
		pos = r.Pos
	}
	if pos.File == "" {
		return "-"
	}
	return fmt.Sprintf("%s:%d", pos.File, pos.Line)
}

// refSubjects returns a statement's users and groups (SPEC 2.3).
func refSubjects(r *schema.Record, st *schema.Statement) ([]string, []string) {
	if len(st.Users) > 0 || len(st.Groups) > 0 {
		return st.Users, st.Groups
	}
	return r.Users, r.Groups
}

// refStatementPatterns returns a statement's patterns, normalized, each once, in written order.
func refStatementPatterns(st *schema.Statement) []string {
	var out []string
	for _, res := range st.Resources {
		if n, ok := refURI(res); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// refRow renders one pattern of one statement, as the enumeration tests compare them.
func refRow(r *schema.Record, i int, pattern string) string {
	users, groups := refSubjects(r, &r.Statements[i])
	return fmt.Sprintf("%s %s[%d] roles=%s users=%s groups=%s env=%s at %s", pattern, r.ID, i,
		strings.Join(r.Statements[i].Roles, ","), strings.Join(users, ","), strings.Join(groups, ","), r.Tags["environment"], refPos(r, i))
}

// refInEnv reports whether a record applies in env (every record when env is "").
func refInEnv(r *schema.Record, env string) bool {
	e := r.Tags["environment"]
	return env == "" || e == "" || e == env
}

// refRows calls fn for every (record, statement, pattern) of records in env.
func refRows(p *schema.PolicySet, env string, fn func(r *schema.Record, i int, pattern string)) {
	for _, r := range p.Records {
		if !refInEnv(r, env) {
			continue
		}
		for i := range r.Statements {
			for _, pattern := range refStatementPatterns(&r.Statements[i]) {
				fn(r, i, pattern)
			}
		}
	}
}

// refOrder sorts rows that start with "pattern record[stmt]" by pattern
// (as pattern+"/"), record, statement, then the rest.
func refOrder(rows []string) []string {
	key := func(row string) string {
		pattern, rest, _ := strings.Cut(row, " ")
		rec, rest, _ := strings.Cut(rest, "[")
		n, rest, _ := strings.Cut(rest, "]")
		stmt, _ := strconv.Atoi(n)
		return fmt.Sprintf("%s/\x00%s\x00%08d\x00%s", pattern, rec, stmt, rest)
	}
	sort.Slice(rows, func(i, j int) bool { return key(rows[i]) < key(rows[j]) })
	return rows
}

// refGrants renders the statements that apply to a subject: kind is "user" or "group".
func refGrants(p *schema.PolicySet, kind, id, env string) []string {
	var out []string
	refRows(p, env, func(r *schema.Record, i int, pattern string) {
		users, groups := refSubjects(r, &r.Statements[i])
		if kind == "user" && slices.Contains(users, id) || kind == "group" && slices.Contains(groups, id) {
			out = append(out, refRow(r, i, pattern)+" via "+kind+":"+id)
		}
		if kind != "user" {
			return
		}
		var seen []string
		for _, g := range groups {
			if refInGroup(p, id, g) && !slices.Contains(seen, g) {
				seen = append(seen, g)
				out = append(out, refRow(r, i, pattern)+" via group:"+g)
			}
		}
	})
	return refOrder(out)
}

// refHolders renders the (subject, statement, pattern) triples giving role,
// by record, statement, pattern and subject (users, then groups).
func refHolders(p *schema.PolicySet, role, env string) []string {
	var rows []string
	refRows(p, env, func(r *schema.Record, i int, pattern string) {
		if !slices.Contains(r.Statements[i].Roles, role) {
			return
		}
		users, groups := refSubjects(r, &r.Statements[i])
		users, groups = slices.Clone(users), slices.Clone(groups)
		sort.Strings(users)
		sort.Strings(groups)
		for _, u := range slices.Compact(users) {
			rows = append(rows, fmt.Sprintf("%s\x00%08d\x00%s/\x00u\x00%s\x00user:%s %s", r.ID, i, pattern, u, u, refRow(r, i, pattern)))
		}
		for _, g := range slices.Compact(groups) {
			rows = append(rows, fmt.Sprintf("%s\x00%08d\x00%s/\x00v\x00%s\x00group:%s %s", r.ID, i, pattern, g, g, refRow(r, i, pattern)))
		}
	})
	sort.Strings(rows)
	for i, row := range rows {
		rows[i] = row[strings.LastIndexByte(row, 0)+1:]
	}
	return rows
}

// refPatternCovers reports whether pattern covers every URI other covers
// (both normalized; a "*" in other is covered only by a "*").
func refPatternCovers(pattern, other string) bool { return refCovers(pattern, other) }

// refCovering renders the statements whose pattern covers resource.
func refCovering(p *schema.PolicySet, resource, env string) []string {
	var out []string
	refRows(p, env, func(r *schema.Record, i int, pattern string) {
		if refPatternCovers(pattern, resource) {
			out = append(out, refRow(r, i, pattern))
		}
	})
	return refOrder(out)
}

// refBelow renders the statements whose pattern lies strictly below resource.
func refBelow(p *schema.PolicySet, resource, env string) []string {
	var out []string
	refRows(p, env, func(r *schema.Record, i int, pattern string) {
		if pattern != resource && refPatternCovers(resource, pattern) {
			out = append(out, refRow(r, i, pattern))
		}
	})
	return refOrder(out)
}

// refRecordVias renders how each user holds, through the record layer,
// what wants asks of a statement's roles on uri: "record:ID@pattern@source"
// or "group:ID@record@pattern@source", sorted, by user.
func refRecordVias(p *schema.PolicySet, uri, env string, wants func(roles []string) bool) map[string][]string {
	out := map[string][]string{}
	refRows(p, env, func(r *schema.Record, i int, pattern string) {
		st := &r.Statements[i]
		if !refCovers(pattern, uri) || !wants(st.Roles) {
			return
		}
		users, groups := refSubjects(r, st)
		for _, u := range users {
			out[u] = append(out[u], fmt.Sprintf("record:%s@%s@%s", r.ID, pattern, refPos(r, i)))
		}
		for _, g := range groups {
			if p.Groups[g] == nil {
				continue
			}
			for _, u := range p.Groups[g].Users {
				out[u] = append(out[u], fmt.Sprintf("group:%s@%s@%s@%s", g, r.ID, pattern, refPos(r, i)))
			}
		}
	})
	for u, vias := range out {
		sort.Strings(vias)
		out[u] = slices.Compact(vias)
	}
	return out
}

// refGroupVias renders the groups through which statements covering uri
// give what wants asks: "group:ID@record@pattern@source", sorted.
func refGroupVias(p *schema.PolicySet, uri, env string, wants func(roles []string) bool) []string {
	var out []string
	refRows(p, env, func(r *schema.Record, i int, pattern string) {
		st := &r.Statements[i]
		if !refCovers(pattern, uri) || !wants(st.Roles) {
			return
		}
		_, groups := refSubjects(r, st)
		for _, g := range groups {
			out = append(out, fmt.Sprintf("group:%s@%s@%s@%s", g, r.ID, pattern, refPos(r, i)))
		}
	})
	sort.Strings(out)
	return slices.Compact(out)
}

// refRolesAllow reports whether one of the roles has an entry that allows action.
func refRolesAllow(p *schema.PolicySet, roles []string, action string) bool {
	for _, id := range roles {
		if role := p.Roles[id]; role != nil {
			for _, rp := range role.Permissions {
				if rp.Allow && refActionMatches(rp.Action, action) {
					return true
				}
			}
		}
	}
	return false
}

// refServerVias renders how the resource servers governing uri allow user:
// "permission:ID@server" per granting permission, "resourceServer:ID" for a
// server that allows with none, sorted; nil when no server governs.
func refServerVias(p *schema.PolicySet, user, uri, action, env string, t time.Time) []string {
	var out []string
	for id, s := range p.ResourceServers {
		gov, _, granting := refServerVerdict(p, s, user, uri, action, env, t)
		if !gov {
			continue
		}
		for _, perm := range granting {
			if perm == "" {
				out = append(out, "resourceServer:"+id)
			} else {
				out = append(out, "permission:"+perm+"@"+id)
			}
		}
	}
	sort.Strings(out)
	return out
}
