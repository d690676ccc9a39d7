package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema/match"
)

// Layers that decide a question (SPEC 2.6, last paragraph).
const (
	LayerRecords        = "records"
	LayerResourceServer = "resourceServer"
)

// ErrUnknownRole is wrapped by the error for a role or assign question
// about a role the snapshot does not hold.
var ErrUnknownRole = errors.New("unknown role")

// ErrNoQuestion is wrapped when a question sets none, or more than one, of
// Action, Role and Assign.
var ErrNoQuestion = errors.New("exactly one of action, role and assign must be set")

// QuestionError reports a malformed question and names the argument at
// fault: "resource", "action", "role", "assign" or "collection".
type QuestionError struct {
	Arg string
	Err error
}

// Error names the argument and the reason: `invalid action: action "documents:*": …`.
func (e *QuestionError) Error() string { return "invalid " + e.Arg + ": " + e.Err.Error() }

// Unwrap returns the reason, such as match.ErrWildcardAction or ErrUnknownRole.
func (e *QuestionError) Unwrap() error { return e.Err }

// Question is one authorization question. Exactly one of Action, Role and
// Assign is set: may User do Action on Resource (Check), does User hold
// Role on Resource (Roles), may User assign Assign on Resource to others
// (Assignable).
type Question struct {
	User     string `json:"userId"`
	Resource string `json:"resourceUri"`
	Action   string `json:"action,omitempty"`
	Role     string `json:"role,omitempty"`
	Assign   string `json:"assign,omitempty"`
	// Environment excludes records tagged with another environment (SPEC 2.7).
	Environment string `json:"environment,omitempty"`
	// Time is the time of the question for time policies; zero means now.
	Time time.Time `json:"time,omitzero"`
}

// Decision is the answer to a question, with the revision of the snapshot
// that made it, the layer that decided and, when explained, the trace.
type Decision struct {
	Allowed  bool   `json:"allowed"`
	Revision string `json:"revision"`
	Layer    string `json:"layer"`
	Trace    []Step `json:"trace,omitempty"`
}

// Entry is a permission entry a user holds on a resource: entries of the
// same action merged with allow, grant and delegate OR-ed (SPEC 2.4).
type Entry struct {
	Action   string `json:"action"`
	Allow    bool   `json:"allow"`
	Grant    bool   `json:"grant"`
	Delegate bool   `json:"delegate"`
}

// Check answers whether q.User may do q.Action on q.Resource (SPEC 2.4,
// 2.6). It records no trace; see Explain.
func (s *Snapshot) Check(q Question) (Decision, error) {
	uri, err := parseResource(q.Resource)
	if err != nil {
		return Decision{}, err
	}
	action, err := parseAction(q.Action)
	if err != nil {
		return Decision{}, err
	}
	var e evalCtx
	s.initEval(&e, &q, uri, nil)
	return e.decideAction(action), nil
}

// Decide answers a question of any kind without a trace.
func (s *Snapshot) Decide(q Question) (Decision, error) { return s.decide(&q, nil) }

// Explain answers a question of any kind with its decision trace.
func (s *Snapshot) Explain(q Question) (Decision, error) {
	tr := &tracer{}
	d, err := s.decide(&q, tr)
	if err != nil {
		return Decision{}, err
	}
	d.Trace = tr.steps
	if d.Trace == nil {
		d.Trace = []Step{}
	}
	return d, nil
}

func (s *Snapshot) decide(q *Question, tr *tracer) (Decision, error) {
	n := 0
	for _, v := range []string{q.Action, q.Role, q.Assign} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return Decision{}, &QuestionError{Arg: "question", Err: ErrNoQuestion}
	}
	uri, err := parseResource(q.Resource)
	if err != nil {
		return Decision{}, err
	}
	switch {
	case q.Action != "":
		action, err := parseAction(q.Action)
		if err != nil {
			return Decision{}, err
		}
		e := s.newEval(q, uri, tr)
		e.traceQuestion("may " + q.User + " do " + action + " on " + uri)
		return e.decideAction(action), nil
	case q.Role != "":
		if s.roles[q.Role] == nil {
			return Decision{}, &QuestionError{Arg: "role", Err: fmt.Errorf("%w %q", ErrUnknownRole, q.Role)}
		}
		e := s.newEval(q, uri, tr)
		e.traceQuestion("does " + q.User + " hold role " + q.Role + " on " + uri)
		roles := e.heldRoles()
		held := slices.Contains(roles, q.Role)
		if e.tr.on() {
			e.tr.add(Step{Kind: StepDecision, ID: LayerRecords, Result: allowDeny(held), Detail: "holds [" + strings.Join(roles, ", ") + "]"})
		}
		return Decision{Allowed: held, Revision: s.revision, Layer: LayerRecords}, nil
	default:
		role := s.roles[q.Assign]
		if role == nil {
			return Decision{}, &QuestionError{Arg: "assign", Err: fmt.Errorf("%w %q", ErrUnknownRole, q.Assign)}
		}
		e := s.newEval(q, uri, tr)
		e.traceQuestion("may " + q.User + " assign role " + q.Assign + " on " + uri)
		ok := e.assignable(role)
		e.tr.add(Step{Kind: StepDecision, ID: LayerRecords, Result: allowDeny(ok)})
		return Decision{Allowed: ok, Revision: s.revision, Layer: LayerRecords}, nil
	}
}

// Roles returns the IDs of the roles user holds on resource through the
// record layer (SPEC 2.4), sorted.
func (s *Snapshot) Roles(user, resource, environment string) ([]string, error) {
	uri, err := parseResource(resource)
	if err != nil {
		return nil, err
	}
	q := Question{User: user, Environment: environment}
	e := s.newEval(&q, uri, nil)
	return append([]string{}, e.heldRoles()...), nil
}

// Permissions returns the entries user holds on resource (SPEC 2.4),
// merged per action and sorted by action.
func (s *Snapshot) Permissions(user, resource, environment string) ([]Entry, error) {
	uri, err := parseResource(resource)
	if err != nil {
		return nil, err
	}
	q := Question{User: user, Environment: environment}
	e := s.newEval(&q, uri, nil)
	held := e.heldEntries()
	out := make([]Entry, len(held))
	for i, h := range held {
		out[i] = Entry{Action: h.pattern.String(), Allow: h.allow, Grant: h.grant, Delegate: h.delegate}
	}
	return out, nil
}

// Assignable answers whether user may assign role on resource to others (SPEC 2.5).
func (s *Snapshot) Assignable(user, role, resource, environment string) (Decision, error) {
	return s.Decide(Question{User: user, Resource: resource, Assign: role, Environment: environment})
}

// ResourceList answers a Resources question.
type ResourceList struct {
	// Resources are the resource URIs, sorted, named in statements that
	// apply to the user at or below the collection, on which the user is
	// allowed the action. A statement pattern with a "*" segment is listed
	// as the pattern itself.
	Resources []string `json:"resources"`
	// AccessToAllSubResources is true when the user is allowed the action
	// on the collection itself, and so on everything below it.
	AccessToAllSubResources bool   `json:"accessToAllSubResources"`
	Revision                string `json:"revision"`
}

// Resources lists the resources under collection on which user is
// allowed action (the Authress resource listing). The time is that of time
// policies; zero means now.
func (s *Snapshot) Resources(user, action, collection, environment string, at time.Time) (ResourceList, error) {
	uri, err := parseURI("collection", collection)
	if err != nil {
		return ResourceList{}, err
	}
	act, err := parseAction(action)
	if err != nil {
		return ResourceList{}, err
	}
	q := Question{User: user, Environment: environment, Time: at}
	e := s.newEval(&q, uri, nil)
	out := ResourceList{Revision: s.revision, Resources: []string{}}
	out.AccessToAllSubResources = e.decideAction(act).Allowed

	// Candidates, each with whether a statement naming it allows the
	// action directly; those need no further lookup unless a resource
	// server governs them.
	direct := map[string]bool{}
	var candidates []string
	add := func(r string, allows bool) {
		d, ok := direct[r]
		if !ok {
			candidates = append(candidates, r)
		}
		direct[r] = d || allows
	}
	kb := newKeyBuf(0)
	for _, sub := range e.subjects() {
		kb.b = grantKey(kb.b[:0], sub.kind, sub.id, uri)
		it, err := s.txn.Get(tableGrants, indexIDPrefix, kb)
		if err != nil {
			return ResourceList{}, fmt.Errorf("list grants: %w", err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			for r := raw.(*grantRow); r != nil; r = r.next {
				kind, subject, u := splitIdent(r.ident)
				if kind != sub.kind || subject != sub.id || !underURI(u, uri) {
					continue
				}
				for i := range r.grants {
					if g := &r.grants[i]; g.inEnv(environment) {
						add(u, s.grantAllows(g, act))
					}
				}
			}
		}
		if s.hasWildcards {
			kb.b = subjectKey(kb.b[:0], sub.kind, sub.id)
			raw, _ := s.lookup(tableWildcardGrants, kb).(*wildcardRow)
			for r := raw; r != nil; r = r.next {
				if !subjectIdentIs(r.ident, sub.kind, sub.id) {
					continue
				}
				for i := range r.grants {
					g := &r.grants[i]
					if g.inEnv(environment) && underURI(g.pattern.String(), uri) {
						add(g.pattern.String(), s.grantAllows(&g.grant, act))
					}
				}
			}
		}
	}
	slices.Sort(candidates)
	for _, c := range candidates {
		var ce evalCtx
		s.initEval(&ce, &q, c, nil)
		if direct[c] && len(ce.governing()) == 0 || ce.decideAction(act).Allowed {
			out.Resources = append(out.Resources, c)
		}
	}
	return out, nil
}

// underURI reports whether uri equals prefix or lies below it.
func underURI(uri, prefix string) bool {
	if len(uri) == len(prefix) {
		return uri == prefix
	}
	return len(uri) > len(prefix) && uri[len(prefix)] == '/' && uri[:len(prefix)] == prefix
}

func parseResource(r string) (string, error) { return parseURI("resource", r) }

func parseURI(arg, r string) (string, error) {
	uri, err := match.ParseURI(r)
	if err != nil {
		return "", &QuestionError{Arg: arg, Err: err}
	}
	return uri, nil
}

func parseAction(a string) (string, error) {
	action, err := match.ParseAction(a)
	if err != nil {
		return "", &QuestionError{Arg: "action", Err: err}
	}
	return action, nil
}

func allowDeny(ok bool) string {
	if ok {
		return "allow"
	}
	return "deny"
}

func grantDeny(ok bool) string {
	if ok {
		return "grant"
	}
	return "deny"
}

// evalCtx is the state of answering one question.
type evalCtx struct {
	s      *Snapshot
	user   string
	uri    string
	env    string
	at     time.Time
	groups []string
	// groupsDone is set once groups holds the user's groups.
	groupsDone bool
	kb         *keyBuf
	tr         *tracer

	rolesDone bool
	roles     []string
}

type subjectRef struct {
	kind byte
	id   string
}

func (s *Snapshot) newEval(q *Question, uri string, tr *tracer) *evalCtx {
	e := &evalCtx{}
	s.initEval(e, q, uri, tr)
	return e
}

// initEval prepares e to answer q about uri; e may live on the caller's stack.
func (s *Snapshot) initEval(e *evalCtx, q *Question, uri string, tr *tracer) {
	*e = evalCtx{s: s, user: q.User, uri: uri, env: q.Environment, at: q.Time, tr: tr, kb: newKeyBuf(3 + max(len(q.User), s.maxGroupID) + len(uri))}
}

// traceQuestion records the question and the user's groups.
func (e *evalCtx) traceQuestion(text string) {
	if !e.tr.on() {
		return
	}
	d := text
	if e.env != "" {
		d += " in environment " + e.env
	}
	if !e.at.IsZero() {
		d += " at " + e.at.Format(time.RFC3339)
	}
	if e.s.revision != "" {
		d += " (revision " + e.s.revision + ")"
	}
	e.tr.add(Step{Kind: StepQuestion, ID: e.user, Detail: d})
	e.loadGroups()
	for _, g := range e.groups {
		src := ""
		e.kb.b = append(e.kb.b[:0], g...)
		if row, ok := e.s.lookup(tableGroups, e.kb).(*groupRow); ok {
			src = row.group.Pos.Short()
		}
		e.tr.add(Step{Kind: StepGroup, ID: g, Source: src, Result: "member", Detail: e.user + " is listed"})
	}
}

// loadGroups looks up the user's groups, once and only when needed: a
// check that the user's own grants allow never does.
func (e *evalCtx) loadGroups() {
	if !e.groupsDone {
		e.groups, e.groupsDone = e.s.members[e.user], true
	}
}

func (e *evalCtx) subjects() []subjectRef {
	e.loadGroups()
	out := make([]subjectRef, 0, 1+len(e.groups))
	out = append(out, subjectRef{kindUser, e.user})
	for _, g := range e.groups {
		out = append(out, subjectRef{kindGroup, g})
	}
	return out
}

func (e *evalCtx) now() time.Time {
	if e.at.IsZero() {
		e.at = time.Now()
	}
	return e.at
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
func (s *Snapshot) grantAllows(g *grant, action string) bool {
	for _, id := range g.roles {
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
						Detail: fmt.Sprintf("entry %s matches %s with allow: %t", en.pattern, action, en.allow)})
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

type heldEntry struct {
	pattern                match.ActionPattern
	allow, grant, delegate bool
}

// heldEntries returns the entries the user holds on the URI, merged per
// action and sorted by action (SPEC 2.4).
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
				out = append(out, heldEntry{pattern: en.pattern})
				i = len(out) - 1
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
				found = h.pattern.String()
				break
			}
		}
		if e.tr.on() {
			need := "grant or delegate"
			if needDelegate {
				need = "delegate"
			}
			detail := fmt.Sprintf("entry %s needs %s on a covering action: ", p.pattern, need)
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

// decideAction decides an action question across both layers (SPEC 2.6,
// last paragraph): the governing resource servers if any, else the records.
func (e *evalCtx) decideAction(action string) Decision {
	d := Decision{Revision: e.s.revision}
	if gov := e.governing(); len(gov) > 0 {
		d.Layer = LayerResourceServer
		d.Allowed = e.serversAllow(gov, action)
	} else {
		d.Layer = LayerRecords
		d.Allowed = e.recordAllows(action)
		if e.tr.on() {
			detail := "no statement allows " + action
			if d.Allowed {
				detail = "a statement allows " + action
			}
			e.tr.add(Step{Kind: StepDecision, ID: LayerRecords, Result: allowDeny(d.Allowed), Detail: detail + "; no resource server governs " + e.uri})
		}
	}
	return d
}
