package engine

import (
	"fmt"
	"slices"
	"time"
)

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
	if err := parseUser(user); err != nil {
		return ResourceList{}, err
	}
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
