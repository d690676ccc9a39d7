package engine

import (
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
	rec  *schema.Record
	stmt int
	env  string // rec's tags.environment, "" when it applies everywhere
}

func (g *grant) statement() *schema.Statement { return &g.rec.Statements[g.stmt] }

func (g *grant) source() string {
	if p := g.statement().Pos; p.File != "" {
		return p.Short()
	}
	return g.rec.Pos.Short()
}

func (g *grant) inEnv(env string) bool { return g.env == "" || env == "" || g.env == env }

// grantRow is a row of tableGrants: the statements that give one subject
// roles on one non-wildcard resource, sorted by record ID and statement.
type grantRow struct {
	kind    byte
	subject string
	uri     string
	grants  []grant
}

// wildcardGrant is a statement resource pattern with a "*" segment.
type wildcardGrant struct {
	pattern match.URIPattern
	grant
}

// wildcardRow is a row of tableWildcardGrants: a subject's wildcard grants.
type wildcardRow struct {
	kind    byte
	subject string
	grants  []wildcardGrant
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

// roleEntry is a compiled role permission entry.
type roleEntry struct {
	pattern                match.ActionPattern
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

// keyBuf is a reusable lookup key. A pointer to it passes through memdb's
// variadic arguments without allocating.
type keyBuf struct {
	b   []byte
	arr [160]byte
}

func newKeyBuf(n int) *keyBuf {
	kb := &keyBuf{}
	if n <= len(kb.arr) {
		kb.b = kb.arr[:0]
	} else {
		kb.b = make([]byte, 0, n)
	}
	return kb
}

// subjectKey appends the key of a subject: its kind byte, then its ID.
func subjectKey(dst []byte, kind byte, subject string) []byte {
	dst = append(dst, kind)
	return append(dst, subject...)
}

// grantKey appends the key of a grant row: subject key, NUL, URI. Neither
// user IDs nor URIs hold control characters, so the key is unambiguous.
func grantKey(dst []byte, kind byte, subject, uri string) []byte {
	dst = subjectKey(dst, kind, subject)
	dst = append(dst, 0)
	return append(dst, uri...)
}

// serverURIKey appends the key of a server URI row: the pattern and "/", so
// that a longest-prefix lookup of "uri/" finds only whole-segment ancestors.
func serverURIKey(dst []byte, pattern string) []byte {
	dst = append(dst, pattern...)
	return append(dst, '/')
}
