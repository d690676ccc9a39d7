package engine

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema"
)

// Kinds of Via: how a user holds what a user listing asks about.
const (
	// ViaRecord: a statement of the record names the user.
	ViaRecord = "record"
	// ViaGroup: a statement names a group that lists the user.
	ViaGroup = "group"
	// ViaPermission: a permission of a resource server that decides the
	// resource grants (SPEC 2.6).
	ViaPermission = "permission"
	// ViaResourceServer: a resource server that decides the resource
	// allows without a permission: it is disabled, or permissive and no
	// permission applies (SPEC 2.6, "S decides").
	ViaResourceServer = "resourceServer"
)

// Via is one way a user or a group holds what a user listing asks about.
type Via struct {
	Kind string `json:"kind"`
	// ID is the record's ID (ViaRecord), the group's (ViaGroup), the
	// permission's (ViaPermission) or the resource server's (ViaResourceServer).
	ID string `json:"id"`
	// Source is the position that gives it, file:line: the statement's for
	// ViaRecord and ViaGroup, else the permission's or the server's.
	Source string `json:"source"`
	// Record is, for ViaGroup, the record whose statement names the group.
	Record string `json:"recordId,omitempty"`
	// Pattern is, for ViaRecord and ViaGroup, the statement's resource
	// pattern that covers the resource.
	Pattern string `json:"resourceUri,omitempty"`
	// Server is, for ViaPermission, the resource server of the permission.
	Server string `json:"resourceServerId,omitempty"`
}

// UsersQuery asks who has access to a resource (the Authress
// getResourceUsers, SpiceDB LookupSubjects, OpenFGA ListUsers): the users
// allowed Action on Resource, or holding Role on it, or with neither, the
// users holding any role on it; one page at a time.
type UsersQuery struct {
	Resource string
	// Action and Role: at most one is set.
	Action      string
	Role        string
	Environment string
	// Time is the time of time policies; zero means now.
	Time time.Time
	// Limit is the page size: 1 to MaxListLimit; zero means DefaultListLimit.
	Limit int
	// Cursor is UserList.Cursor of the previous page; empty for the first.
	Cursor string
}

// UserList answers a UsersQuery: one page of the users, complete across
// records, groups, statement-level subjects, environments and resource
// servers. Paging through every cursor lists each user once.
type UserList struct {
	// Resource is the resource asked about, normalized.
	Resource string `json:"resourceUri"`
	// Layer is the layer that decides (SPEC 2.6): LayerResourceServer when
	// an action is asked about on a resource that a server governs, else
	// LayerRecords.
	Layer string `json:"layer"`
	// Users are the users, sorted by ID, at most Limit, each with every way
	// it holds the access. A user is listed when the snapshot allows it the
	// action (exactly as Check decides), or it holds the role, or with
	// neither, any role (listed in Roles).
	Users []UserAccess `json:"users"`
	// Groups are the groups through which the record layer gives the
	// access, on the first page only (none when resource servers decide).
	Groups []GroupAccess `json:"groups,omitempty"`
	// AllUsers is set on the first page when the resource servers that
	// decide also allow a user the policy does not name (the server is
	// disabled, or permissive with no applicable permission, or its
	// permissions grant by time or negative logic): then every user is
	// allowed except those in AllUsers.Except. Users lists the named users
	// allowed.
	AllUsers *AllUsersAccess `json:"allUsers,omitempty"`
	// Cursor asks for the next page; empty on the last. It is opaque and
	// good only for the same question on the same revision, from the
	// process that issued it: another is an error, never a wrong page.
	Cursor   string `json:"cursor,omitempty"`
	Revision string `json:"revision"`
}

// UserAccess is a user in a UserList.
type UserAccess struct {
	User string `json:"userId"`
	// Roles are, when neither an action nor a role was asked about, the
	// roles the user holds on the resource (SPEC 2.4), sorted.
	Roles []string `json:"roles,omitempty"`
	Via   []Via    `json:"via"`
}

// GroupAccess is a group in a UserList.
type GroupAccess struct {
	Group string   `json:"groupId"`
	Roles []string `json:"roles,omitempty"`
	Via   []Via    `json:"via"`
}

// AllUsersAccess says that every user is allowed but the listed ones.
type AllUsersAccess struct {
	Via    []Via    `json:"via"`
	Except []string `json:"except"`
}

// ErrActionAndRole is wrapped by the QuestionError of a UsersQuery that
// sets both Action and Role.
var ErrActionAndRole = errors.New("at most one of action and role may be set")

// ErrStaleCursor is the ErrBadCursor of a cursor issued for another revision.
var ErrStaleCursor = fmt.Errorf("%w: issued for another revision", ErrBadCursor)

// anonymousUser stands for every user the policy does not name: it is not
// a valid user ID (SPEC 1, #UserID), so no policy can name it.
const anonymousUser = "\x00"

// Users answers q: one page of the users who have access to q.Resource.
//
// The statements that give roles on the resource come from the pattern
// index (one lookup per segment of the resource), their groups are
// expanded, and when resource servers decide, the users their user and
// group policies name are added (users named by role policies hold roles
// through those statements). When the record layer decides, the answer is
// read off the statements; when servers decide, each candidate after the
// cursor is decided as Check decides it, until the page is full. The cost
// is that of the candidates, whatever the size of the policy.
func (s *Snapshot) Users(q UsersQuery) (UserList, error) {
	uri, err := parseURI("resource", q.Resource)
	if err != nil {
		return UserList{}, err
	}
	var action string
	switch {
	case q.Action != "" && q.Role != "":
		return UserList{}, &QuestionError{Arg: "question", Err: ErrActionAndRole}
	case q.Action != "":
		if action, err = parseAction(q.Action); err != nil {
			return UserList{}, err
		}
	case q.Role != "":
		if s.roles[q.Role] == nil {
			return UserList{}, &QuestionError{Arg: "role", Err: fmt.Errorf("%w %q", ErrUnknownRole, q.Role)}
		}
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || limit > MaxListLimit {
		return UserList{}, &QuestionError{Arg: "limit", Err: fmt.Errorf("%w, got %d", ErrBadLimit, q.Limit)}
	}
	query := fingerprint(uri, action, q.Role, q.Environment)
	after, err := s.decodeUsersCursor(q.Cursor, query)
	if err != nil {
		return UserList{}, err
	}
	at := q.Time
	if at.IsZero() {
		at = time.Now() // one time for every user of the page
	}
	w := &whoCtx{s: s, uri: uri, action: action, role: q.Role, env: q.Environment, at: at,
		limit: limit, after: after, first: q.Cursor == "", query: query}
	out := UserList{Resource: uri, Layer: LayerRecords, Users: []UserAccess{}, Revision: s.revision}
	if action != "" {
		if gov := w.eval(anonymousUser).governing(); len(gov) > 0 {
			out.Layer = LayerResourceServer
			w.byServers(&out, gov)
			return out, nil
		}
	}
	w.byRecords(&out)
	return out, nil
}

// whoCtx is the state of answering one UsersQuery.
type whoCtx struct {
	s      *Snapshot
	uri    string
	action string
	role   string
	env    string
	at     time.Time
	limit  int
	after  string // the last user of the previous page
	first  bool   // the first page
	query  uint64 // the question's fingerprint, for cursors
}

func (w *whoCtx) eval(user string) *evalCtx {
	q := Question{User: user, Environment: w.env, Time: w.at}
	return w.s.newEval(&q, w.uri, nil)
}

// viaInfo is a Via with the roles of the statement that gives it.
type viaInfo struct {
	via   Via
	roles []string
}

// holder is a user holding the access through vias[via].
type holder struct {
	user string
	via  int
}

// byRecords answers from the statements that cover the resource.
func (w *whoCtx) byRecords(out *UserList) {
	s := w.s
	// The statements that give the access, then their subjects: one via
	// per statement and pattern (and group), one holder per user and via.
	var refs []patternRef
	var patterns []string
	s.coveringRefs(w.uri, func(e patternRef, pattern string) {
		st := e.statement()
		switch {
		case !inEnvironment(e.rec, w.env),
			w.action != "" && !s.rolesAllow(st.Roles, w.action),
			w.role != "" && !slices.Contains(st.Roles, w.role):
			return
		}
		refs, patterns = append(refs, e), append(patterns, pattern)
	})
	nvias, nholders := 0, 0
	for _, e := range refs {
		users, groups := e.statement().Subjects(e.rec)
		nvias += 1 + len(groups)
		nholders += len(users)
		for _, g := range groups {
			nholders += len(s.groupUsers(g))
		}
	}
	vias := make([]viaInfo, 0, nvias)
	holders := make([]holder, 0, nholders)
	var groupVias []int
	for i, e := range refs {
		st := e.statement()
		users, groups := st.Subjects(e.rec)
		src := statementSource(e.rec, e.stmt)
		if len(users) > 0 {
			vias = append(vias, viaInfo{Via{Kind: ViaRecord, ID: e.rec.ID, Source: src, Pattern: patterns[i]}, st.Roles})
			for _, u := range users {
				holders = append(holders, holder{u, len(vias) - 1})
			}
		}
		for _, g := range groups {
			vias = append(vias, viaInfo{Via{Kind: ViaGroup, ID: g, Record: e.rec.ID, Source: src, Pattern: patterns[i]}, st.Roles})
			groupVias = append(groupVias, len(vias)-1)
			for _, u := range s.groupUsers(g) {
				holders = append(holders, holder{u, len(vias) - 1})
			}
		}
	}
	slices.SortFunc(holders, func(a, b holder) int { return cmp.Or(strings.Compare(a.user, b.user), cmp.Compare(a.via, b.via)) })
	holders = slices.Compact(holders)
	// The first user after the cursor's.
	i, _ := slices.BinarySearchFunc(holders, w.after, func(h holder, after string) int {
		if h.user <= after {
			return -1
		}
		return 1
	})
	// The page's vias share one array.
	end := i
	for n := 0; end < len(holders) && n <= w.limit; end++ {
		if end == i || holders[end].user != holders[end-1].user {
			n++
		}
	}
	pageVias := make([]Via, 0, end-i)
	out.Users = make([]UserAccess, 0, min(w.limit, end-i))
	for i < len(holders) {
		if len(out.Users) == w.limit {
			out.Cursor = w.s.encodeUsersCursor(w.query, out.Users[w.limit-1].User)
			break
		}
		j := i
		for j < len(holders) && holders[j].user == holders[i].user {
			j++
		}
		start := len(pageVias)
		var roles []string
		for _, h := range holders[i:j] {
			if v := vias[h.via].via; !slices.Contains(pageVias[start:], v) {
				pageVias = append(pageVias, v)
			}
			if w.action == "" && w.role == "" {
				roles = append(roles, vias[h.via].roles...)
			}
		}
		ua := UserAccess{User: holders[i].user, Via: pageVias[start:len(pageVias):len(pageVias)]}
		if roles != nil {
			ua.Roles = sortedUnique(roles)
		}
		out.Users = append(out.Users, ua)
		i = j
	}
	if w.first {
		out.Groups = groupAccess(vias, groupVias, w.action == "" && w.role == "")
	}
}

// groupAccess gathers the group vias by group, sorted by group ID.
func groupAccess(vias []viaInfo, groupVias []int, withRoles bool) []GroupAccess {
	slices.SortStableFunc(groupVias, func(a, b int) int { return strings.Compare(vias[a].via.ID, vias[b].via.ID) })
	var out []GroupAccess
	var roles []string
	for _, v := range groupVias {
		info := vias[v]
		if n := len(out); n == 0 || out[n-1].Group != info.via.ID {
			if n > 0 && withRoles {
				out[n-1].Roles = sortedUnique(roles)
			}
			out = append(out, GroupAccess{Group: info.via.ID})
			roles = nil
		}
		g := &out[len(out)-1]
		if !slices.Contains(g.Via, info.via) {
			g.Via = append(g.Via, info.via)
		}
		roles = append(roles, info.roles...)
	}
	if n := len(out); n > 0 && withRoles {
		out[n-1].Roles = sortedUnique(roles)
	}
	return out
}

// byServers answers when resource servers decide: every user that a
// statement covering the resource names (directly or through a group), or
// that a user or group policy of a governing server names, is decided as
// Check decides; a user named nowhere is decided once, as anonymousUser.
func (w *whoCtx) byServers(out *UserList, gov []serverMatch) {
	s := w.s
	var cands []string
	s.coveringRefs(w.uri, func(e patternRef, _ string) {
		if !inEnvironment(e.rec, w.env) {
			return
		}
		users, groups := e.statement().Subjects(e.rec)
		cands = append(cands, users...)
		for _, g := range groups {
			cands = append(cands, s.groupUsers(g)...)
		}
	})
	for _, srv := range s.servers {
		if len(appendMatches(nil, srv, gov)) == 0 {
			continue
		}
		for _, cp := range srv.policies {
			switch cp.pol.Type {
			case schema.PolicyUser:
				cands = append(cands, cp.pol.Users...)
			case schema.PolicyGroup:
				for _, g := range cp.pol.Groups {
					cands = append(cands, s.groupUsers(g)...)
				}
			}
		}
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)

	if w.first {
		if e := w.eval(anonymousUser); e.decideAction(w.action).Allowed {
			out.AllUsers = &AllUsersAccess{Via: serverVias(e, gov, w.action), Except: []string{}}
			for _, c := range cands {
				if !w.eval(c).decideAction(w.action).Allowed {
					out.AllUsers.Except = append(out.AllUsers.Except, c)
				}
			}
		}
	}
	i, _ := slices.BinarySearch(cands, w.after)
	if i < len(cands) && cands[i] == w.after {
		i++
	}
	for _, c := range cands[i:] {
		e := w.eval(c)
		if !e.decideAction(w.action).Allowed {
			continue
		}
		if len(out.Users) == w.limit {
			out.Cursor = s.encodeUsersCursor(w.query, out.Users[w.limit-1].User)
			return
		}
		out.Users = append(out.Users, UserAccess{User: c, Via: serverVias(e, gov, w.action)})
	}
}

// serverVias returns how the governing servers allow the user of e: for
// each server, the permissions that apply and grant, or the server itself
// when it allows with none (disabled, or permissive with none applicable).
func serverVias(e *evalCtx, gov []serverMatch, action string) []Via {
	var out []Via
	for _, srv := range e.s.servers {
		ms := appendMatches(nil, srv, gov)
		if len(ms) == 0 {
			continue
		}
		sv := srv.server
		self := Via{Kind: ViaResourceServer, ID: sv.ID, Source: sv.Pos.Short()}
		if sv.EnforcementMode == schema.EnforcementDisabled {
			out = append(out, self)
			continue
		}
		applicable := appendApplicable(nil, srv, ms, action)
		if len(applicable) == 0 {
			out = append(out, self)
			continue
		}
		for _, p := range applicable {
			if e.permissionGrants(srv, p) {
				out = append(out, Via{Kind: ViaPermission, ID: p.perm.ID, Source: p.perm.Pos.Short(), Server: sv.ID})
			}
		}
	}
	return out
}

// groupUsers returns the users a group lists.
func (s *Snapshot) groupUsers(id string) []string {
	kb := keyBuf{}
	kb.b = append(kb.arr[:0], id...)
	if row, ok := s.lookup(tableGroups, &kb).(*groupRow); ok {
		return row.group.Users
	}
	return nil
}

// A users cursor is the base64url of: a version byte, the fingerprints of
// the revision and of the question, the last user listed, and the first
// 16 bytes of an HMAC-SHA256 of all that under the snapshot's cursorKey.
const (
	usersCursorVersion = 1
	usersCursorMAC     = 16
	usersCursorHead    = 1 + 8 + 8
	// maxUsersCursor bounds a cursor's length before it is decoded: a
	// user ID of MaxUserIDLen characters of up to 4 bytes, in base64.
	maxUsersCursor = (usersCursorHead + 4*MaxUserIDLen + usersCursorMAC + 2) / 3 * 4
)

// fingerprint hashes strings (FNV-1a 64, each ended by NUL).
func fingerprint(parts ...string) uint64 {
	h := uint64(fnvOffset64)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= fnvPrime64
		}
		h *= fnvPrime64 // NUL
	}
	return h
}

func (s *Snapshot) usersCursorMAC(payload []byte) []byte {
	m := hmac.New(sha256.New, s.cursorKey[:])
	m.Write(payload)
	return m.Sum(nil)[:usersCursorMAC]
}

// encodeUsersCursor returns the cursor of the page after user last.
func (s *Snapshot) encodeUsersCursor(query uint64, last string) string {
	b := make([]byte, 0, usersCursorHead+len(last)+usersCursorMAC)
	b = append(b, usersCursorVersion)
	b = binary.BigEndian.AppendUint64(b, fingerprint(s.revision))
	b = binary.BigEndian.AppendUint64(b, query)
	b = append(b, last...)
	b = append(b, s.usersCursorMAC(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeUsersCursor returns the user a cursor resumes after; "" for no cursor.
func (s *Snapshot) decodeUsersCursor(cursor string, query uint64) (string, error) {
	if cursor == "" {
		return "", nil
	}
	bad := func(err error) error { return &QuestionError{Arg: "cursor", Err: err} }
	if len(cursor) > maxUsersCursor {
		return "", bad(fmt.Errorf("%w: longer than %d characters", ErrBadCursor, maxUsersCursor))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil || len(raw) <= usersCursorHead+usersCursorMAC {
		return "", bad(fmt.Errorf("%w: malformed", ErrBadCursor))
	}
	payload, mac := raw[:len(raw)-usersCursorMAC], raw[len(raw)-usersCursorMAC:]
	if !hmac.Equal(mac, s.usersCursorMAC(payload)) || payload[0] != usersCursorVersion {
		return "", bad(fmt.Errorf("%w: not issued by this server", ErrBadCursor))
	}
	if binary.BigEndian.Uint64(payload[1:9]) != fingerprint(s.revision) {
		return "", bad(ErrStaleCursor)
	}
	if binary.BigEndian.Uint64(payload[9:17]) != query {
		return "", bad(fmt.Errorf("%w: issued for another question", ErrBadCursor))
	}
	user := string(payload[usersCursorHead:])
	if CheckUserID(user) != nil {
		return "", bad(fmt.Errorf("%w: malformed", ErrBadCursor))
	}
	return user, nil
}
