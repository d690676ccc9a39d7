package engine

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/match"
)

// Kinds of Subject.
const (
	SubjectUser  = "user"
	SubjectGroup = "group"
)

// ErrSubjectKind is wrapped by the QuestionError of a Subject whose Kind is
// neither SubjectUser nor SubjectGroup.
var ErrSubjectKind = errors.New(`subject kind must be "user" or "group"`)

// Subject is a user or a group, as statements name them (SPEC 2.3).
type Subject struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// PolicyStatement is one resource pattern of one statement of a record, the
// unit the enumerations return. Its slices are the policy's own: read-only.
type PolicyStatement struct {
	Record string `json:"recordId"`
	// Statement is the index of the statement in the record, from 0.
	Statement int `json:"statement"`
	// Pattern is the statement's resource pattern, normalized (no leading
	// or trailing "/").
	Pattern string   `json:"resourceUri"`
	Roles   []string `json:"roles"`
	// Users and Groups are the statement's subjects (SPEC 2.3): its own
	// when it names any, else its record's.
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Environment is the record's tags.environment, "" when it applies everywhere.
	Environment string `json:"environment,omitempty"`
	// Source is the statement's position, file:line.
	Source string `json:"source"`
}

func newPolicyStatement(rec *schema.Record, stmt int32, pattern string) PolicyStatement {
	st := &rec.Statements[stmt]
	users, groups := st.Subjects(rec)
	return PolicyStatement{Record: rec.ID, Statement: int(stmt), Pattern: pattern, Roles: st.Roles,
		Users: users, Groups: groups, Environment: rec.Environment(), Source: statementSource(rec, stmt)}
}

func comparePolicyStatements(a, b *PolicyStatement) int {
	return cmp.Or(cmpPatterns(a.Pattern, b.Pattern), strings.Compare(a.Record, b.Record), cmp.Compare(a.Statement, b.Statement))
}

// cmpPatterns orders normalized patterns as the pattern index does (by
// pattern and "/"): a pattern before the patterns below it.
func cmpPatterns(a, b string) int { return compareLeads(a, b, '/') }

// inEnvironment reports whether the record applies in env (SPEC 2.7); every
// record applies when env is "".
func inEnvironment(rec *schema.Record, env string) bool {
	if env == "" {
		return true
	}
	e := rec.Environment()
	return e == "" || e == env
}

// Grant is a statement that applies to a subject, on one of its patterns.
type Grant struct {
	PolicyStatement
	// Via is the subject the statement names that makes it apply: the
	// subject asked about, or for a user one of the groups listing it.
	Via Subject `json:"via"`
}

// Grants returns every statement that applies to the subject (SPEC 2.3) in
// the environment ("" for all), one per resource pattern and per subject it
// names that makes it apply: for a user, the statements naming the user and
// those naming one of its groups; for a group, those naming the group.
// Records tagged with another environment are left out, as for checks
// (SPEC 2.7). They are sorted by pattern (a pattern before the patterns
// below it), record, statement and Via.
//
// The grants come from the grant table, whose keys start with the hash of
// the subject: one prefix scan per subject (the user and its groups) and
// one wildcard row each, so the cost is that of the answer.
func (s *Snapshot) Grants(sub Subject, environment string) ([]Grant, error) {
	var subs []subjectRef
	switch sub.Kind {
	case SubjectUser:
		if err := parseUser(sub.ID); err != nil {
			return nil, err
		}
		subs = append(subs, subjectRef{kindUser, sub.ID})
		for _, g := range s.members[sub.ID] {
			subs = append(subs, subjectRef{kindGroup, g})
		}
	case SubjectGroup:
		subs = append(subs, subjectRef{kindGroup, sub.ID})
	default:
		return nil, &QuestionError{Arg: "subject", Err: fmt.Errorf("%w, got %q", ErrSubjectKind, sub.Kind)}
	}
	// The grants found, then the answer in one allocation.
	type found struct {
		g       *grant
		pattern string
		via     int
	}
	var fs []found
	kb := newKeyBuf(subjectKeyLen)
	for via, ref := range subs {
		kb.b = subjectKey(kb.b[:0], ref.kind, ref.id)
		it, err := s.txn.Get(tableGrants, indexIDPrefix, kb)
		if err != nil {
			panic(fmt.Sprintf("engine: subject grants: %v", err))
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			for r := raw.(*grantRow); r != nil; r = r.next {
				if uri, ok := identURI(r.ident, ref.kind, ref.id); ok {
					for i := range r.grants {
						if g := &r.grants[i]; g.inEnv(environment) {
							fs = append(fs, found{g, uri, via})
						}
					}
				}
			}
		}
		row, _ := s.lookup(tableWildcardGrants, kb).(*wildcardRow)
		for r := row; r != nil; r = r.next {
			if subjectIdentIs(r.ident, ref.kind, ref.id) {
				for i := range r.grants {
					if g := &r.grants[i]; g.inEnv(environment) {
						fs = append(fs, found{&g.grant, g.pattern.String(), via})
					}
				}
			}
		}
	}
	out := make([]Grant, len(fs))
	for i, f := range fs {
		via := Subject{Kind: SubjectUser, ID: subs[f.via].id}
		if subs[f.via].kind == kindGroup {
			via.Kind = SubjectGroup
		}
		out[i] = Grant{PolicyStatement: newPolicyStatement(f.g.rec, f.g.stmt, f.pattern), Via: via}
	}
	slices.SortFunc(out, func(a, b Grant) int {
		return cmp.Or(comparePolicyStatements(&a.PolicyStatement, &b.PolicyStatement),
			strings.Compare(a.Via.Kind, b.Via.Kind), strings.Compare(a.Via.ID, b.Via.ID))
	})
	return out, nil
}

// Holding is a subject holding a role through a statement, on one of its patterns.
type Holding struct {
	Subject Subject `json:"subject"`
	PolicyStatement
}

// RoleHolders returns every (subject, statement, pattern) that gives the
// role in the environment ("" for all): each subject the statement names
// (users, then groups; groups are not expanded), on each of its patterns.
// They are sorted by record, statement, pattern and subject. A role the
// snapshot does not hold has no holders.
//
// The statements come from the role index: one lower bound, then the
// role's entries in order, so the cost is that of the answer.
func (s *Snapshot) RoleHolders(role, environment string) []Holding {
	out := []Holding{}
	key := append([]byte(role), 0)
	var scratch []byte
	it := seekChunks[roleRef](s.txn, tableRoleStatements, key, &scratch)
	for e, ok := it.next(); ok && e.roleID() == role; e, ok = it.next() {
		if !inEnvironment(e.rec, environment) {
			continue
		}
		st := e.statement()
		users, groups := st.Subjects(e.rec)
		users, groups = sortedUnique(users), sortedUnique(groups)
		for _, pattern := range statementPatterns(st) {
			ps := newPolicyStatement(e.rec, e.stmt, pattern)
			for _, u := range users {
				out = append(out, Holding{Subject: Subject{SubjectUser, u}, PolicyStatement: ps})
			}
			for _, g := range groups {
				out = append(out, Holding{Subject: Subject{SubjectGroup, g}, PolicyStatement: ps})
			}
		}
	}
	return out
}

// statementPatterns returns the statement's resource patterns, normalized,
// sorted as the pattern index sorts them, each once.
func statementPatterns(st *schema.Statement) []string {
	out := make([]string, 0, len(st.Resources))
	for _, r := range st.Resources {
		if _, err := match.ParseURIPattern(r); err == nil {
			out = append(out, normPattern(r))
		}
	}
	slices.SortFunc(out, cmpPatterns)
	return slices.Compact(out)
}

// sortedUnique returns ss sorted, each once; ss itself when it already is.
func sortedUnique(ss []string) []string {
	for i := 1; i < len(ss); i++ {
		if ss[i-1] >= ss[i] {
			out := slices.Clone(ss)
			slices.Sort(out)
			return slices.Compact(out)
		}
	}
	return ss
}

// parsePattern validates a resource pattern asked about (arg names it in an
// error) and returns it normalized.
func parsePattern(arg, p string) (match.URIPattern, error) {
	pat, err := match.ParseURIPattern(p)
	if err != nil {
		return match.URIPattern{}, &QuestionError{Arg: arg, Err: err}
	}
	return pat, nil
}

// StatementsCovering returns the statements in the environment ("" for
// all) with a resource pattern that covers the resource pattern asked
// about: every URI it covers (SPEC 2.2; a "*" segment is covered only by
// a "*" segment). For a URI, these are the statements that give roles on
// it, whatever their subjects. Sorted by pattern, record and statement.
//
// The cost is one lookup per segment of the resource and per "*" pattern
// that can still cover it, plus the answer.
func (s *Snapshot) StatementsCovering(resource, environment string) ([]PolicyStatement, error) {
	pat, err := parsePattern("resource", resource)
	if err != nil {
		return nil, err
	}
	out := []PolicyStatement{}
	s.coveringRefs(pat.String(), func(e patternRef, pattern string) {
		if inEnvironment(e.rec, environment) {
			out = append(out, newPolicyStatement(e.rec, e.stmt, pattern))
		}
	})
	slices.SortFunc(out, func(a, b PolicyStatement) int { return comparePolicyStatements(&a, &b) })
	return out, nil
}

// StatementsBelow returns the statements in the environment ("" for all)
// with a resource pattern strictly below the resource pattern asked about:
// one it covers (SPEC 2.2) and differs from. Sorted by pattern, record and
// statement. With StatementsCovering, these are the statements a change on
// the resource can reach, except those whose "*" patterns only overlap it.
//
// For a resource without a "*" segment the cost is that of the answer: one
// lower bound, then the entries below it in order. For one with a "*", the
// entries below its segments before the first "*" are read and filtered.
func (s *Snapshot) StatementsBelow(resource, environment string) ([]PolicyStatement, error) {
	pat, err := parsePattern("resource", resource)
	if err != nil {
		return nil, err
	}
	p := pat.String()
	// The entries at or below the segments before the first "*".
	var prefix []byte
	if lit, _, wild := strings.Cut("/"+p+"/", "/*/"); !wild {
		prefix = append([]byte(p), '/')
	} else if lit != "" {
		prefix = append([]byte(lit[1:]), '/')
	}
	out := []PolicyStatement{}
	var scratch []byte
	it := seekChunks[patternRef](s.txn, tablePatternStatements, prefix, &scratch)
	for e, ok := it.next(); ok; e, ok = it.next() {
		if scratch = e.appendKey(scratch[:0]); !bytes.HasPrefix(scratch, prefix) {
			break
		}
		if q := e.pattern(); q != p && pat.Covers(q) && inEnvironment(e.rec, environment) {
			out = append(out, newPolicyStatement(e.rec, e.stmt, q))
		}
	}
	return out, nil
}

// coveringRefs calls fn with every entry of the pattern index whose pattern
// covers p, a normalized pattern, and that pattern. It walks p's segments
// with the set of index prefixes that can still lead to a covering pattern:
// at each segment, a prefix goes on with the segment itself and with "*"
// when the index holds longer patterns under them. Without "*" patterns in
// the snapshot that set holds one prefix and "*" is never tried: one lookup
// per segment.
func (s *Snapshot) coveringRefs(p string, fn func(e patternRef, pattern string)) {
	var scratch []byte
	// The live prefixes are slices of buf, each of the same length: p's
	// segments so far, some of them "*".
	buf := make([]byte, 0, 4*(len(p)+1))
	live := [][]byte{nil}
	var next [][]byte
	parts := []string{"", "*"}
	if s.wildPatterns == 0 {
		parts = parts[:1]
	}
	for rest := p; ; {
		seg, tail, more := strings.Cut(rest, "/")
		rest = tail
		next = next[:0]
		parts[0] = seg
		for _, pre := range live {
			for i, part := range parts {
				if i > 0 && seg == "*" {
					break // a "*" segment is covered by "*" alone
				}
				start := len(buf)
				buf = append(append(append(buf, pre...), part...), '/')
				key := buf[start:len(buf):len(buf)]
				it := seekChunks[patternRef](s.txn, tablePatternStatements, key, &scratch)
				for e, ok := it.next(); ok; e, ok = it.next() {
					scratch = e.appendKey(scratch[:0])
					if !bytes.HasPrefix(scratch, key) {
						break
					}
					if scratch[len(key)] != 0 {
						if more {
							next = append(next, key) // longer patterns under key
						}
						break
					}
					fn(e, e.pattern())
				}
			}
		}
		if !more || len(next) == 0 {
			return
		}
		live, next = next, live
	}
}
