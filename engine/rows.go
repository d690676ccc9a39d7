package engine

import (
	"bytes"
	"encoding/binary"
	"slices"
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

func (g *grant) source() string {
	if p := g.statement().Pos; p.File != "" {
		return p.Short()
	}
	return g.rec.Pos.Short()
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

// ident appends the identity of a subject's grants on a URI: kind, subject, NUL, URI.
func ident(dst []byte, kind byte, subject, uri string) []byte {
	dst = append(dst, kind)
	dst = append(dst, subject...)
	dst = append(dst, 0)
	return append(dst, uri...)
}

// identIs reports whether id is the identity of (kind, subject, uri).
func identIs(id []byte, kind byte, subject, uri string) bool {
	return len(id) == len(subject)+len(uri)+2 && id[0] == kind && string(id[1:1+len(subject)]) == subject &&
		id[1+len(subject)] == 0 && string(id[2+len(subject):]) == uri
}

// subjectIdentIs reports whether id, a wildcard row's identity, is (kind, subject).
func subjectIdentIs(id []byte, kind byte, subject string) bool {
	return len(id) == 1+len(subject) && id[0] == kind && string(id[1:]) == subject
}

// splitIdent returns the parts of an identity.
func splitIdent(id []byte) (kind byte, subject, uri string) {
	i := bytes.IndexByte(id, 0)
	return id[0], string(id[1:i]), string(id[i+1:])
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
	arr [96]byte
}

// newKeyBuf returns a key buffer for keys of up to n bytes, in one allocation when they are short.
func newKeyBuf(n int) *keyBuf {
	kb := &keyBuf{}
	if n <= len(kb.arr) {
		kb.b = kb.arr[:0]
	} else {
		kb.b = make([]byte, 0, n)
	}
	return kb
}

// Key layout of the grant tables: 8 bytes of FNV-1a hash of the subject
// (kind byte and ID), then 4 bytes of FNV-1a hash per URI segment. The keys
// are short and of fixed width per segment, so the keys of a URI's
// ancestors are exactly the prefixes of its key that end on a segment, and
// a longest-prefix lookup finds the nearest ancestor holding a grant.
const (
	subjectKeyLen = 8
	segmentKeyLen = 4
)

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

// subjectKey appends the key of a subject.
func subjectKey(dst []byte, kind byte, subject string) []byte {
	h := uint64(fnvOffset64)
	h ^= uint64(kind)
	h *= fnvPrime64
	for i := 0; i < len(subject); i++ {
		h ^= uint64(subject[i])
		h *= fnvPrime64
	}
	return binary.BigEndian.AppendUint64(dst, h)
}

// grantKey appends the key of a subject's grants on a normalized URI.
func grantKey(dst []byte, kind byte, subject, uri string) []byte {
	dst = subjectKey(dst, kind, subject)
	h := uint32(fnvOffset32)
	for i := 0; i < len(uri); i++ {
		if uri[i] == '/' {
			dst = binary.BigEndian.AppendUint32(dst, h)
			h = fnvOffset32
			continue
		}
		h ^= uint32(uri[i])
		h *= fnvPrime32
	}
	return binary.BigEndian.AppendUint32(dst, h)
}

// keySegments returns the number of URI segments a grant key encodes.
func keySegments(key []byte) int { return (len(key) - subjectKeyLen) / segmentKeyLen }

// uriPrefix returns the first n segments of a normalized URI.
func uriPrefix(uri string, n int) string {
	for i := 0; i < len(uri); i++ {
		if uri[i] == '/' {
			n--
			if n == 0 {
				return uri[:i]
			}
		}
	}
	return uri
}

// serverURIKey appends the key of a server URI row: the pattern and "/", so
// that a longest-prefix lookup of "uri/" finds only whole-segment ancestors.
func serverURIKey(dst []byte, pattern string) []byte {
	dst = append(dst, pattern...)
	return append(dst, '/')
}
