package engine

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Table and index names of the snapshot database. Every table has exactly
// one index, "id", whose keys are built by the engine (see keys.go): the
// questions are exact lookups, prefix scans and lower bounds over these
// keys. The questions that start from a resource or a role, not a subject,
// are answered by two tables that index the statements again in those
// orders (see chunks.go): memdb's own secondary indexes would cost a radix
// leaf per entry, far more than the 15% of the snapshot they may cost.
const (
	// tableGrants holds one row per (subject, non-wildcard resource): the
	// statements that give the subject roles on that resource, keyed by
	// hashes of the subject and of each URI segment. Check finds a
	// subject's grants on the asked resource and all its ancestors with
	// longest-prefix lookups.
	tableGrants = "grants"
	// tableWildcardGrants holds one row per subject with the statements
	// whose resource pattern holds a "*" segment, kept apart so that the
	// common case never pays for them.
	tableWildcardGrants = "wildcard_grants"
	// tableMembers holds one row per user: the groups that list the user.
	tableMembers = "members"
	// tableGroups holds the groups by ID.
	tableGroups = "groups"
	// tableRoles holds the roles by ID with their compiled entries.
	tableRoles = "roles"
	// tableServers holds the compiled resource servers by ID.
	tableServers = "servers"
	// tableServerURIs holds one row per non-wildcard resource-server URI
	// pattern, keyed "pattern/", with every resource whose pattern covers
	// it; a longest-prefix lookup of "uri/" finds the resources governing uri.
	tableServerURIs = "server_uris"
	// tablePatternStatements indexes every resource pattern of every
	// statement by the pattern, in chunks of patternRef (see chunks.go):
	// the statements on a pattern, on its ancestors and below it.
	tablePatternStatements = "pattern_statements"
	// tableRoleStatements indexes every role of every statement by the
	// role, in chunks of roleRef: the holders of a role.
	tableRoleStatements = "role_statements"

	indexID = "id"
	// indexIDPrefix names the id index for prefix scans and longest-prefix lookups.
	indexIDPrefix = indexID + "_prefix"
)

// dbSchema returns the snapshot database schema. It is static: building it
// cannot fail, which TestDBSchema proves.
func dbSchema() *memdb.DBSchema {
	tables := []*memdb.TableSchema{
		grantsTableSchema(),
		wildcardGrantsTableSchema(),
		membersTableSchema(),
		groupsTableSchema(),
		rolesTableSchema(),
		serversTableSchema(),
		serverURIsTableSchema(),
		chunkTableSchema[patternRef](tablePatternStatements),
		chunkTableSchema[roleRef](tableRoleStatements),
	}
	s := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for _, t := range tables {
		s.Tables[t.Name] = t
	}
	return s
}

func idTable(name string, idx memdb.Indexer) *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: name,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: idx},
		},
	}
}

func grantsTableSchema() *memdb.TableSchema {
	return idTable(tableGrants, keyIndexer[*grantRow](func(r *grantRow) []byte {
		return r.key
	}))
}

func wildcardGrantsTableSchema() *memdb.TableSchema {
	return idTable(tableWildcardGrants, keyIndexer[*wildcardRow](func(r *wildcardRow) []byte {
		return r.key
	}))
}

func membersTableSchema() *memdb.TableSchema {
	return idTable(tableMembers, keyIndexer[*memberRow](func(r *memberRow) []byte {
		return []byte(r.user)
	}))
}

func groupsTableSchema() *memdb.TableSchema {
	return idTable(tableGroups, keyIndexer[*groupRow](func(r *groupRow) []byte {
		return []byte(r.group.ID)
	}))
}

func rolesTableSchema() *memdb.TableSchema {
	return idTable(tableRoles, keyIndexer[*roleRow](func(r *roleRow) []byte {
		return []byte(r.role.ID)
	}))
}

func serversTableSchema() *memdb.TableSchema {
	return idTable(tableServers, keyIndexer[*serverRow](func(r *serverRow) []byte {
		return []byte(r.server.ID)
	}))
}

func serverURIsTableSchema() *memdb.TableSchema {
	return idTable(tableServerURIs, keyIndexer[*serverURIRow](func(r *serverURIRow) []byte {
		return serverURIKey(nil, r.pattern)
	}))
}

// keyIndexer adapts a function from a row to its key into a memdb indexer.
// Lookups pass the key itself: a *keyBuf (no allocation), a []byte or a string.
type keyIndexer[T any] func(T) []byte

// FromObject returns the key of a row.
func (f keyIndexer[T]) FromObject(raw any) (bool, []byte, error) {
	row, ok := raw.(T)
	if !ok {
		return false, nil, fmt.Errorf("index of %T: unexpected row type %T", row, raw)
	}
	return true, f(row), nil
}

// FromArgs returns the key given as the only argument.
func (f keyIndexer[T]) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("index takes one key, got %d arguments", len(args))
	}
	switch k := args[0].(type) {
	case *keyBuf:
		return k.b, nil
	case []byte:
		return k, nil
	case string:
		return []byte(k), nil
	default:
		return nil, fmt.Errorf("index key of type %T, want []byte or string", args[0])
	}
}

// PrefixFromArgs returns the key prefix given as the only argument.
func (f keyIndexer[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	return f.FromArgs(args...)
}
