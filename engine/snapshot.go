package engine

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
	"github.com/charter-policy/charter/schema/match"
)

// Snapshot is an immutable, queryable revision of a policy. It is built by
// Build or derived from an older snapshot by Apply, and never changes
// afterwards: any number of goroutines may ask it questions at once without
// locks. Everything it returns is read-only; callers copy before changing.
type Snapshot struct {
	revision string
	db       *memdb.MemDB
	// txn is one read transaction shared by every reader. A memdb read
	// transaction only ever reads the immutable radix trees of its root.
	txn *memdb.Txn

	// Small compiled tables derived from the database after each commit:
	// roles by ID, servers by ID, and the resource-server pattern summary
	// that lets most checks skip the resource-server lookup.
	roles          map[string]*roleRow
	servers        []*serverRow
	serverRoots    map[string]struct{} // first segments of non-wildcard server patterns
	serverWildcard []serverMatch       // server resources with a "*" pattern
	hasWildcards   bool                // tableWildcardGrants is not empty
	// members maps a user to the groups listing it, compiled from
	// tableMembers; shared with the previous snapshot when no group changed.
	members    map[string][]string
	maxGroupID int // longest group ID that has members

	counts Counts
}

// Counts are the numbers of entities of each kind in a snapshot.
type Counts struct {
	Roles           int `json:"roles"`
	Groups          int `json:"groups"`
	Records         int `json:"records"`
	ResourceServers int `json:"resourceServers"`
}

// Revision returns the revision (git commit) the snapshot was built from.
func (s *Snapshot) Revision() string { return s.revision }

// Counts returns the numbers of entities in the snapshot.
func (s *Snapshot) Counts() Counts { return s.counts }

// Empty returns a snapshot of the empty policy at the given revision.
func Empty(revision string) *Snapshot {
	db, err := memdb.NewMemDB(dbSchema())
	if err != nil {
		panic(fmt.Sprintf("engine: static memdb schema is invalid: %v", err))
	}
	s := &Snapshot{revision: revision, db: db}
	s.derive(nil)
	return s
}

// Build returns a snapshot of the validated policy p at the given revision.
func Build(p *schema.PolicySet, revision string) (*Snapshot, error) {
	return Empty("").Apply(change.Between(nil, p), revision)
}

// Apply returns a new snapshot at revision: s with the diff d applied. d
// must lead from the policy s was built from to a validated policy. Only
// the changed entities are written, in one write transaction on top of s's
// database that never reads; s itself is unchanged and its readers are
// unaffected.
func (s *Snapshot) Apply(d *change.Diff, revision string) (*Snapshot, error) {
	db := s.db.Snapshot()
	var w writer
	if err := s.plan(d, &w); err != nil {
		return nil, fmt.Errorf("apply revision %s: %w", revision, err)
	}
	txn := db.Txn(true)
	defer txn.Abort()
	if err := w.write(txn); err != nil {
		return nil, fmt.Errorf("apply revision %s: %w", revision, err)
	}
	txn.Commit()

	next := &Snapshot{revision: revision, db: db, counts: s.counts}
	next.counts.Roles += len(d.Roles.Added) - len(d.Roles.Removed)
	next.counts.Groups += len(d.Groups.Added) - len(d.Groups.Removed)
	next.counts.Records += len(d.Records.Added) - len(d.Records.Removed)
	next.counts.ResourceServers += len(d.ResourceServers.Added) - len(d.ResourceServers.Removed)
	if d.Groups.Empty() {
		next.derive(s)
	} else {
		next.derive(nil)
	}
	return next, nil
}

// derive opens the shared read transaction and compiles the small tables.
// The membership map is taken from prev when prev is not nil.
func (s *Snapshot) derive(prev *Snapshot) {
	s.txn = s.db.Txn(false)
	s.roles = map[string]*roleRow{}
	for _, raw := range s.all(tableRoles) {
		r := raw.(*roleRow)
		s.roles[r.role.ID] = r
	}
	s.serverRoots = map[string]struct{}{}
	for _, raw := range s.all(tableServers) {
		srv := raw.(*serverRow)
		s.servers = append(s.servers, srv)
		for _, res := range srv.resources {
			for _, p := range res.patterns {
				if p.Wildcard() {
					s.serverWildcard = append(s.serverWildcard, serverMatch{srv: srv, res: res, pattern: p})
					continue
				}
				root, _, _ := strings.Cut(p.String(), "/")
				s.serverRoots[root] = struct{}{}
			}
		}
	}
	s.hasWildcards = s.first(tableWildcardGrants) != nil
	if prev != nil {
		s.members, s.maxGroupID = prev.members, prev.maxGroupID
		return
	}
	s.members = map[string][]string{}
	for _, raw := range s.all(tableMembers) {
		row := raw.(*memberRow)
		s.members[row.user] = row.groups
		for _, g := range row.groups {
			s.maxGroupID = max(s.maxGroupID, len(g))
		}
	}
}

// all returns every row of a small table in key order.
func (s *Snapshot) all(table string) []any {
	it, err := s.txn.Get(table, indexID)
	if err != nil {
		panic(fmt.Sprintf("engine: scan %s: %v", table, err))
	}
	var rows []any
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rows = append(rows, raw)
	}
	return rows
}

func (s *Snapshot) first(table string) any {
	raw, err := s.txn.First(table, indexID)
	if err != nil {
		panic(fmt.Sprintf("engine: first of %s: %v", table, err))
	}
	return raw
}

// lookup returns the row of table with the given key, or nil.
func (s *Snapshot) lookup(table string, kb *keyBuf) any {
	raw, err := s.txn.First(table, indexID, kb)
	if err != nil {
		// The tables and indexes are static and the key type is right:
		// an error here is a programming error.
		panic(fmt.Sprintf("engine: lookup %s: %v", table, err))
	}
	return raw
}

// writer collects the rows a diff inserts and deletes, computed from the
// diff and from reads of the previous snapshot, so that the write
// transaction itself never reads.
type writer struct {
	inserts []tableRow
	deletes []tableRow
	grants  []*grantRow
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

func compileRole(r *schema.Role) (*roleRow, error) {
	row := &roleRow{role: r, entries: make([]roleEntry, len(r.Permissions))}
	for i, p := range r.Permissions {
		pat, err := match.ParseActionPattern(p.Action)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", r.ID, err)
		}
		row.entries[i] = roleEntry{pattern: pat, allow: p.Allow, grant: p.Grant, delegate: p.Delegate, pos: p.Pos}
	}
	return row, nil
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
	// visit calls fn for every (subject, pattern) of every statement of r.
	visit := func(r *schema.Record, fn func(kind byte, subject string, pat match.URIPattern, g grant)) {
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
			g := grant{rec: r, roles: roles, env: env, stmt: int32(i)}
			for _, res := range st.Resources {
				pat, err := match.ParseURIPattern(res)
				if err != nil {
					continue // validated policies hold no malformed pattern
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
		visit(r, func(kind byte, subject string, pat match.URIPattern, _ grant) { touch(kind, subject, pat) })
	}
	for _, r := range news(d) {
		visit(r, func(kind byte, subject string, pat match.URIPattern, g grant) {
			p := touch(kind, subject, pat)
			p.grants = append(p.grants, wildcardGrant{pattern: pat, grant: g})
		})
	}
	fresh := s.counts.Records == 0 // nothing to read from an empty snapshot

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
	// The URI rows are few: rewrite them all.
	for _, raw := range s.all(tableServerURIs) {
		w.delete(tableServerURIs, raw)
	}
	type patMatch struct {
		pattern string
		m       serverMatch
	}
	var plain []patMatch
	for _, id := range sortedKeys(byID) {
		srv := byID[id]
		for _, res := range srv.resources {
			for _, p := range res.patterns {
				if !p.Wildcard() {
					plain = append(plain, patMatch{p.String(), serverMatch{srv: srv, res: res, pattern: p}})
				}
			}
		}
	}
	rows := map[string]*serverURIRow{}
	for _, pm := range plain {
		if rows[pm.pattern] == nil {
			rows[pm.pattern] = &serverURIRow{pattern: pm.pattern}
		}
	}
	for _, row := range rows {
		for _, pm := range plain {
			if pm.m.pattern.Covers(row.pattern) {
				row.matches = append(row.matches, pm.m)
			}
		}
		w.insert(tableServerURIs, row)
	}
	return nil
}

func compileServer(srv *schema.ResourceServer) (*serverRow, error) {
	row := &serverRow{server: srv, policies: map[string]*compiledPolicy{}}
	for _, id := range sortedKeys(srv.Resources) {
		res := srv.Resources[id]
		cr := &compiledResource{res: res, scopes: lowerAll(res.Scopes)}
		for _, u := range res.URIs {
			p, err := match.ParseURIPattern(u)
			if err != nil {
				return nil, fmt.Errorf("resource server %s: resource %s: %w", srv.ID, id, err)
			}
			cr.patterns = append(cr.patterns, p)
		}
		row.resources = append(row.resources, cr)
	}
	for _, id := range sortedKeys(srv.Permissions) {
		p := srv.Permissions[id]
		row.permissions = append(row.permissions, &compiledPermission{perm: p, scopes: lowerAll(p.Scopes)})
	}
	for id, p := range srv.Policies {
		cp := &compiledPolicy{pol: p}
		if p.Type == schema.PolicyTime {
			tz := cmp.Or(p.Timezone, "UTC")
			cp.loc, cp.locErr = time.LoadLocation(tz)
			for _, d := range p.Weekdays {
				if wd, ok := weekdayOf(d); ok {
					cp.weekdays[wd] = true
				}
			}
		}
		row.policies[id] = cp
	}
	return row, nil
}

// weekdayOf returns the weekday of a time policy's "mon" … "sun".
func weekdayOf(name string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(name, weekdayName(d)) {
			return d, true
		}
	}
	return 0, false
}

// weekdayName returns "sun" … "sat".
func weekdayName(d time.Weekday) string {
	return strings.ToLower(d.String()[:3])
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedSet(m map[string]bool) []string {
	return sortedKeys(m)
}
