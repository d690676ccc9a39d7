package engine

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
	"github.com/charter-policy/charter/schema/match"
)

// writer collects the rows a diff inserts and deletes, computed from the
// diff and from reads of the previous snapshot, so that the write
// transaction itself never reads.
type writer struct {
	inserts []tableRow
	deletes []tableRow
	grants  []*grantRow
	// wildPatterns is the change in the number of statement patterns with
	// a "*" segment.
	wildPatterns int
}

type tableRow struct {
	table string
	row   any
}

func (w *writer) insert(table string, row any) {
	if g, ok := row.(*grantRow); ok {
		w.grants = append(w.grants, g)
		return
	}
	w.inserts = append(w.inserts, tableRow{table, row})
}

func (w *writer) delete(table string, row any) { w.deletes = append(w.deletes, tableRow{table, row}) }

// write applies the planned writes. Grant rows, the bulk, are inserted in
// key order: consecutive inserts then share the radix nodes that the
// transaction already copied, instead of copying a random path each time.
func (w *writer) write(txn *memdb.Txn) error {
	for _, d := range w.deletes {
		if err := txn.Delete(d.table, d.row); err != nil {
			return fmt.Errorf("delete from %s: %w", d.table, err)
		}
	}
	slices.SortFunc(w.grants, func(a, b *grantRow) int { return bytes.Compare(a.key, b.key) })
	for _, g := range w.grants {
		if err := txn.Insert(tableGrants, g); err != nil {
			return fmt.Errorf("insert into %s: %w", tableGrants, err)
		}
	}
	for _, in := range w.inserts {
		if err := txn.Insert(in.table, in.row); err != nil {
			return fmt.Errorf("insert into %s: %w", in.table, err)
		}
	}
	return nil
}

// plan computes the writes of a diff on top of s.
func (s *Snapshot) plan(d *change.Diff, w *writer) error {
	if err := s.planRoles(&d.Roles, w); err != nil {
		return err
	}
	s.planGroups(&d.Groups, w)
	s.planRecords(&d.Records, w)
	return s.planServers(&d.ResourceServers, w)
}

// olds and news return the old and new sides of a diff's entities that
// have to be rewritten.
func olds[T any](d *change.EntityDiff[T]) []T {
	out := slices.Clone(d.Removed)
	for _, c := range d.Changed {
		out = append(out, c.Old)
	}
	for _, c := range d.Moved {
		out = append(out, c.Old)
	}
	return out
}

func news[T any](d *change.EntityDiff[T]) []T {
	out := slices.Clone(d.Added)
	for _, c := range d.Changed {
		out = append(out, c.New)
	}
	for _, c := range d.Moved {
		out = append(out, c.New)
	}
	return out
}

func (s *Snapshot) planRoles(d *change.EntityDiff[*schema.Role], w *writer) error {
	for _, r := range d.Removed {
		if old := s.roles[r.ID]; old != nil {
			w.delete(tableRoles, old)
		}
	}
	for _, r := range news(d) {
		row, err := compileRole(r)
		if err != nil {
			return err
		}
		w.insert(tableRoles, row)
	}
	return nil
}

func (s *Snapshot) planGroups(d *change.EntityDiff[*schema.Group], w *writer) {
	for _, g := range d.Removed {
		w.delete(tableGroups, &groupRow{group: g})
	}
	for _, g := range news(d) {
		w.insert(tableGroups, &groupRow{group: g})
	}
	// Memberships: every user listed by an old or new side of a removed,
	// changed or added group gets its row recomputed.
	dropped := map[string]bool{}
	affected := map[string]bool{}
	for _, g := range d.Removed {
		dropped[g.ID] = true
		for _, u := range g.Users {
			affected[u] = true
		}
	}
	for _, c := range d.Changed {
		dropped[c.Old.ID] = true
		for _, u := range c.Old.Users {
			affected[u] = true
		}
	}
	added := map[string][]string{}
	addGroup := func(g *schema.Group) {
		for _, u := range g.Users {
			affected[u] = true
			added[u] = append(added[u], g.ID)
		}
	}
	for _, g := range d.Added {
		addGroup(g)
	}
	for _, c := range d.Changed {
		addGroup(c.New)
	}
	kb := newKeyBuf(0)
	for _, u := range sortedSet(affected) {
		kb.b = append(kb.b[:0], u...)
		var groups []string
		old, _ := s.lookup(tableMembers, kb).(*memberRow)
		if old != nil {
			for _, g := range old.groups {
				if !dropped[g] {
					groups = append(groups, g)
				}
			}
		}
		groups = append(groups, added[u]...)
		slices.Sort(groups)
		groups = slices.Compact(groups)
		switch {
		case len(groups) > 0:
			w.insert(tableMembers, &memberRow{user: u, groups: groups})
		case old != nil:
			w.delete(tableMembers, old)
		}
	}
}

// pendingPair is the new content of one (subject, URI or pattern) of a row.
type pendingPair struct {
	ident  string // kind, subject[, NUL, URI]
	grants []wildcardGrant
}

// pendingRow accumulates the new content of one grant or wildcard row.
type pendingRow struct {
	key   string
	pairs []pendingPair // usually one; more when keys collide
}

func (p *pendingRow) pair(id []byte) *pendingPair {
	for i := range p.pairs {
		if p.pairs[i].ident == string(id) {
			return &p.pairs[i]
		}
	}
	p.pairs = append(p.pairs, pendingPair{ident: string(id)})
	return &p.pairs[len(p.pairs)-1]
}

func (s *Snapshot) planRecords(d *change.EntityDiff[*schema.Record], w *writer) {
	if d.Empty() {
		return
	}
	dropped := map[string]bool{}
	rows := map[string]*pendingRow{}     // grant key -> row
	wildRows := map[string]*pendingRow{} // subject key -> row
	interned := map[string][]string{}
	var kb, id []byte
	touch := func(kind byte, subject string, pat match.URIPattern) *pendingPair {
		m := rows
		if pat.Wildcard() {
			kb, m = subjectKey(kb[:0], kind, subject), wildRows
			id = append(append(id[:0], kind), subject...)
		} else {
			kb = grantKey(kb[:0], kind, subject, pat.String())
			id = ident(id[:0], kind, subject, pat.String())
		}
		p := m[string(kb)]
		if p == nil {
			p = &pendingRow{key: string(kb)}
			m[p.key] = p
		}
		return p.pair(id)
	}
	// The entries of the statement indexes of the old and the new sides.
	var oldPats, newPats []patternRef
	var oldRoles, newRoles []roleRef
	removedWild := 0
	// visit calls fn for every (subject, pattern) of every statement of r,
	// appends the statements' index entries to pats and roleRefs, and
	// counts the patterns with a "*" segment in wild.
	visit := func(r *schema.Record, pats *[]patternRef, roleRefs *[]roleRef, wild *int, fn func(kind byte, subject string, pat match.URIPattern, g grant)) {
		env := r.Environment()
		for i := range r.Statements {
			st := &r.Statements[i]
			users, groups := st.Subjects(r)
			key := strings.Join(st.Roles, "\x00")
			roles, ok := interned[key]
			if !ok {
				roles = slices.Clip(st.Roles)
				interned[key] = roles
			}
			for j := range st.Roles {
				*roleRefs = append(*roleRefs, roleRef{rec: r, stmt: int32(i), role: int32(j)})
			}
			g := grant{rec: r, roles: roles, env: env, stmt: int32(i)}
			for j, res := range st.Resources {
				pat, err := match.ParseURIPattern(res)
				if err != nil {
					continue // validated policies hold no malformed pattern
				}
				*pats = append(*pats, patternRef{rec: r, stmt: int32(i), res: int32(j)})
				if pat.Wildcard() {
					*wild++
				}
				for _, u := range users {
					fn(kindUser, u, pat, g)
				}
				for _, gr := range groups {
					fn(kindGroup, gr, pat, g)
				}
			}
		}
	}
	for _, r := range olds(d) {
		dropped[r.ID] = true
		visit(r, &oldPats, &oldRoles, &removedWild, func(kind byte, subject string, pat match.URIPattern, _ grant) { touch(kind, subject, pat) })
	}
	newRecords := news(d)
	nPats, nRoles := 0, 0
	for _, r := range newRecords {
		for i := range r.Statements {
			nPats += len(r.Statements[i].Resources)
			nRoles += len(r.Statements[i].Roles)
		}
	}
	newPats, newRoles = make([]patternRef, 0, nPats), make([]roleRef, 0, nRoles)
	for _, r := range newRecords {
		visit(r, &newPats, &newRoles, &w.wildPatterns, func(kind byte, subject string, pat match.URIPattern, g grant) {
			p := touch(kind, subject, pat)
			p.grants = append(p.grants, wildcardGrant{pattern: pat, grant: g})
		})
	}
	w.wildPatterns -= removedWild
	fresh := s.counts.Records == 0 // nothing to read from an empty snapshot
	// The statement indexes are planned beside the grant rows: they read
	// only s's shared read transaction and the entries gathered above, and
	// write to their own writer, merged into w before the write.
	chunkMax := cmp.Or(s.chunkMax, defaultChunkMax)
	var iw writer
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&chunkPlan[patternRef]{table: tablePatternStatements, max: chunkMax, dropped: dropped, old: oldPats, add: newPats}).plan(s.txn, fresh, &iw)
		(&chunkPlan[roleRef]{table: tableRoleStatements, max: chunkMax, dropped: dropped, old: oldRoles, add: newRoles}).plan(s.txn, fresh, &iw)
	}()
	defer func() {
		<-done
		w.inserts = append(w.inserts, iw.inserts...)
		w.deletes = append(w.deletes, iw.deletes...)
	}()

	lk := &keyBuf{}
	for _, p := range rows {
		var old *grantRow
		if !fresh {
			lk.b = append(lk.b[:0], p.key...)
			old, _ = s.lookup(tableGrants, lk).(*grantRow)
		}
		for r := old; r != nil; r = r.next {
			pp := p.pair(r.ident)
			for _, g := range r.grants {
				if !dropped[g.rec.ID] {
					pp.grants = append(pp.grants, wildcardGrant{grant: g})
				}
			}
		}
		var row *grantRow
		slices.SortFunc(p.pairs, func(a, b pendingPair) int { return strings.Compare(b.ident, a.ident) })
		for _, pp := range p.pairs {
			gs := sortGrants(pp.grants)
			if len(gs) == 0 {
				continue
			}
			grants := make([]grant, len(gs))
			for i, g := range gs {
				grants[i] = g.grant
			}
			r := newGrantRow(p.key, pp.ident, grants)
			r.next, row = row, r
		}
		switch {
		case row != nil:
			w.insert(tableGrants, row)
		case old != nil:
			w.delete(tableGrants, old)
		}
	}
	for _, p := range wildRows {
		var old *wildcardRow
		if !fresh {
			lk.b = append(lk.b[:0], p.key...)
			old, _ = s.lookup(tableWildcardGrants, lk).(*wildcardRow)
		}
		for r := old; r != nil; r = r.next {
			pp := p.pair(r.ident)
			for _, g := range r.grants {
				if !dropped[g.rec.ID] {
					pp.grants = append(pp.grants, g)
				}
			}
		}
		var row *wildcardRow
		slices.SortFunc(p.pairs, func(a, b pendingPair) int { return strings.Compare(b.ident, a.ident) })
		for _, pp := range p.pairs {
			if gs := sortGrants(pp.grants); len(gs) > 0 {
				row = &wildcardRow{key: []byte(p.key), ident: []byte(pp.ident), grants: gs, next: row}
			}
		}
		switch {
		case row != nil:
			w.insert(tableWildcardGrants, row)
		case old != nil:
			w.delete(tableWildcardGrants, old)
		}
	}
}

// sortGrants sorts grants by record, statement and pattern and drops duplicates.
func sortGrants(gs []wildcardGrant) []wildcardGrant {
	c := func(a, b wildcardGrant) int {
		return cmp.Or(strings.Compare(a.rec.ID, b.rec.ID), cmp.Compare(a.stmt, b.stmt), strings.Compare(a.pattern.String(), b.pattern.String()))
	}
	slices.SortFunc(gs, c)
	return slices.Clip(slices.CompactFunc(gs, func(a, b wildcardGrant) bool { return c(a, b) == 0 }))
}

func (s *Snapshot) planServers(d *change.EntityDiff[*schema.ResourceServer], w *writer) error {
	if d.Empty() {
		return nil
	}
	byID := map[string]*serverRow{}
	for _, srv := range s.servers {
		byID[srv.server.ID] = srv
	}
	for _, srv := range d.Removed {
		if old := byID[srv.ID]; old != nil {
			w.delete(tableServers, old)
			delete(byID, srv.ID)
		}
	}
	for _, srv := range news(d) {
		row, err := compileServer(srv)
		if err != nil {
			return err
		}
		w.insert(tableServers, row)
		byID[srv.ID] = row
	}
	// The URI rows are one per non-wildcard pattern: rewrite them all.
	for _, raw := range s.all(tableServerURIs) {
		w.delete(tableServerURIs, raw)
	}
	// Every non-wildcard resource pattern, in server, resource and pattern
	// order (the order of trace steps), indexed by its text.
	var plain []serverMatch
	byPattern := map[string][]int{}
	for _, id := range sortedKeys(byID) {
		srv := byID[id]
		for _, res := range srv.resources {
			for _, p := range res.patterns {
				if !p.Wildcard() {
					byPattern[p.String()] = append(byPattern[p.String()], len(plain))
					plain = append(plain, serverMatch{srv: srv, res: res, pattern: p})
				}
			}
		}
	}
	// A non-wildcard pattern covers another exactly when it is that pattern
	// or one of its whole-segment ancestors, so each row gathers the
	// patterns of its ancestors: linear in the patterns times their depth,
	// where comparing every pair was quadratic.
	var idx []int
	for _, pattern := range sortedKeys(byPattern) {
		idx = idx[:0]
		match.Ancestors(pattern, func(a string) bool {
			idx = append(idx, byPattern[a]...)
			return true
		})
		slices.Sort(idx)
		row := &serverURIRow{pattern: pattern, matches: make([]serverMatch, len(idx))}
		for i, k := range idx {
			row.matches[i] = plain[k]
		}
		w.insert(tableServerURIs, row)
	}
	return nil
}
