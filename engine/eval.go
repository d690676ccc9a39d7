package engine

import "time"

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
