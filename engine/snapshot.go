package engine

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
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

	// wildPatterns counts the statement patterns with a "*" segment: when
	// there are none, a lookup of the patterns covering a URI never tries "*".
	wildPatterns int
	// chunkMax bounds the entries of a row of the statement indexes (see
	// chunks.go); tests make it small to exercise splits and merges.
	chunkMax int
	// cursorKey authenticates the cursors of the user listings (see
	// who.go). It is drawn once per lineage of snapshots, in Empty, and
	// carried by Apply: a cursor is good for the process that issued it.
	cursorKey [32]byte
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
	s := &Snapshot{revision: revision, db: db, chunkMax: defaultChunkMax}
	rand.Read(s.cursorKey[:])
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

	next := &Snapshot{revision: revision, db: db, counts: s.counts, chunkMax: s.chunkMax, cursorKey: s.cursorKey,
		wildPatterns: s.wildPatterns + w.wildPatterns}
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
