package engine

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/match"
)

// Subject kinds, the first byte of every subject key.
const (
	kindUser  byte = 'u'
	kindGroup byte = 'g'
)

// grant is one statement that gives a subject roles on a resource. It
// points into the validated policy, which is read-only.
type grant struct {
	rec   *schema.Record
	roles []string // the statement's roles, interned per apply
	env   string   // rec's tags.environment, "" when it applies everywhere
	stmt  int32
}

func (g *grant) statement() *schema.Statement { return &g.rec.Statements[g.stmt] }

func (g *grant) source() string { return statementSource(g.rec, g.stmt) }

// statementSource returns the position of a record's statement, file:line,
// or the record's when the statement has none.
func statementSource(rec *schema.Record, stmt int32) string {
	if p := rec.Statements[stmt].Pos; p.File != "" {
		return p.Short()
	}
	return rec.Pos.Short()
}

func (g *grant) inEnv(env string) bool { return g.env == "" || env == "" || g.env == env }

// grantRow is a row of tableGrants: the statements that give one subject
// roles on one non-wildcard resource, sorted by record and statement. Its
// key hashes the subject and each URI segment (see grantKey); ident spells
// out the subject and the URI, and every reader compares it, since another
// (subject, URI) whose key collides is chained behind as next.
//
// A row, its key, its ident and a single grant share one allocation, so
// that a lookup that reaches the row's radix leaf finds them in cache.
type grantRow struct {
	key    []byte
	ident  []byte // kind byte, subject, NUL, URI
	grants []grant
	next   *grantRow
}

type grantRowStorage struct {
	row grantRow
	one [1]grant
	buf [64]byte
}

func newGrantRow(key, ident string, grants []grant) *grantRow {
	st := &grantRowStorage{}
	r := &st.row
	if len(key)+len(ident) <= len(st.buf) {
		n := copy(st.buf[:], key)
		copy(st.buf[n:], ident)
		r.key, r.ident = st.buf[:n:n], st.buf[n:n+len(ident):n+len(ident)]
	} else {
		r.key, r.ident = []byte(key), []byte(ident)
	}
	if len(grants) == 1 {
		st.one[0] = grants[0]
		r.grants = st.one[:]
	} else {
		r.grants = slices.Clone(grants)
	}
	return r
}

// wildcardGrant is a statement resource pattern with a "*" segment.
type wildcardGrant struct {
	pattern match.URIPattern
	grant
}

// wildcardRow is a row of tableWildcardGrants: the wildcard grants of one
// subject, keyed by the subject's hash; ident is the kind and the subject,
// and a colliding subject is chained behind as next.
type wildcardRow struct {
	key    []byte
	ident  []byte
	grants []wildcardGrant
	next   *wildcardRow
}

// memberRow is a row of tableMembers: the groups listing a user, sorted.
type memberRow struct {
	user   string
	groups []string
}

// groupRow is a row of tableGroups.
type groupRow struct {
	group *schema.Group
}

// roleEntry is a compiled role permission entry: its action both as the
// pattern it stands for, which every comparison uses, and as the role
// declares it ("Records:*"), which answers and traces show (SPEC 5).
type roleEntry struct {
	pattern                match.ActionPattern
	action                 string // as declared
	allow, grant, delegate bool
	pos                    schema.Pos
}

// roleRow is a row of tableRoles.
type roleRow struct {
	role    *schema.Role
	entries []roleEntry
}

func (r *roleRow) entrySource(i int) string {
	if p := r.entries[i].pos; p.File != "" {
		return p.Short()
	}
	return r.role.Pos.Short()
}

// serverRow is a row of tableServers: a compiled resource server.
type serverRow struct {
	server      *schema.ResourceServer
	resources   []*compiledResource // sorted by ID
	permissions []*compiledPermission
	policies    map[string]*compiledPolicy
}

type compiledResource struct {
	res      *schema.Resource
	patterns []match.URIPattern
	scopes   []string // lower case
}

type compiledPermission struct {
	perm   *schema.Permission
	scopes []string // lower case
}

type compiledPolicy struct {
	pol      *schema.AuthzPolicy
	loc      *time.Location // time policies
	locErr   error
	weekdays [7]bool // indexed by time.Weekday
}

// serverURIRow is a row of tableServerURIs: a non-wildcard resource-server
// URI pattern and every resource whose non-wildcard pattern covers it.
type serverURIRow struct {
	pattern string
	matches []serverMatch
}

// serverMatch is a resource of a server whose pattern covers a URI.
type serverMatch struct {
	srv     *serverRow
	res     *compiledResource
	pattern match.URIPattern
}

// patternRef is an entry of tablePatternStatements: one resource pattern
// of one statement. Its key is the normalized pattern and "/", NUL, the
// record ID, NUL and the statement index, so that the entries of a pattern
// and of every pattern below it are contiguous, the pattern's own first.
type patternRef struct {
	rec  *schema.Record
	stmt int32
	res  int32 // index in the statement's resources
}

func (e patternRef) statement() *schema.Statement { return &e.rec.Statements[e.stmt] }

// pattern returns the normalized resource pattern.
func (e patternRef) pattern() string { return normPattern(e.statement().Resources[e.res]) }

func (e patternRef) appendKey(dst []byte) []byte {
	dst = append(dst, e.pattern()...)
	dst = append(dst, '/', 0)
	return appendStatementKey(dst, e.rec.ID, e.stmt)
}

func (e patternRef) compare(o patternRef) int {
	if c := cmpPatterns(e.pattern(), o.pattern()); c != 0 {
		return c
	}
	return compareStatements(e.rec, e.stmt, o.rec, o.stmt)
}

func (e patternRef) lead() string { return e.pattern() }

func (patternRef) leadEnd() byte { return '/' }

func (e patternRef) recordID() string { return e.rec.ID }

// roleRef is an entry of tableRoleStatements: one role of one statement,
// keyed by the role, NUL, the record ID, NUL and the statement index.
type roleRef struct {
	rec  *schema.Record
	stmt int32
	role int32 // index in the statement's roles
}

func (e roleRef) statement() *schema.Statement { return &e.rec.Statements[e.stmt] }

func (e roleRef) roleID() string { return e.statement().Roles[e.role] }

func (e roleRef) appendKey(dst []byte) []byte {
	dst = append(dst, e.roleID()...)
	dst = append(dst, 0)
	return appendStatementKey(dst, e.rec.ID, e.stmt)
}

func (e roleRef) compare(o roleRef) int {
	if c := strings.Compare(e.roleID(), o.roleID()); c != 0 {
		return c
	}
	return compareStatements(e.rec, e.stmt, o.rec, o.stmt)
}

// compareStatements orders statements by record ID and index, as
// appendStatementKey does.
func compareStatements(a *schema.Record, i int32, b *schema.Record, j int32) int {
	if a == b {
		return cmp.Compare(i, j)
	}
	if c := strings.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	return cmp.Compare(i, j)
}

func (e roleRef) lead() string { return e.roleID() }

func (roleRef) leadEnd() byte { return 0 }

func (e roleRef) recordID() string { return e.rec.ID }

// appendStatementKey appends the record ID, NUL and the statement index
// (big-endian, so that byte order is numeric order).
func appendStatementKey(dst []byte, record string, stmt int32) []byte {
	dst = append(dst, record...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint32(dst, uint32(stmt))
}

// normPattern returns a validated resource pattern normalized: without a
// leading and a trailing "/", as match.ParseURIPattern returns it.
func normPattern(p string) string {
	return strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
}
