package schema

import (
	"strconv"
	"time"
)

// Pos is a position in a policy file. File is relative to the policy root.
type Pos struct {
	File string
	Line int
	Col  int
}

// String renders the position as file:line:col, or file:line when the column is unknown.
func (p Pos) String() string {
	if p.File == "" {
		return "-"
	}
	s := p.File + ":" + strconv.Itoa(p.Line)
	if p.Col > 0 {
		s += ":" + strconv.Itoa(p.Col)
	}
	return s
}

// Short renders the position as file:line, the form used in decision traces.
func (p Pos) Short() string {
	if p.File == "" {
		return "-"
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Less orders positions by file, line and column.
func (p Pos) Less(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

// PolicySet is one validated revision of a policy repository: every entity
// declared under the policy root, keyed by its ID. A PolicySet returned by the
// Loader is shared with its cache and must be treated as read-only.
type PolicySet struct {
	Roles           map[string]*Role
	Groups          map[string]*Group
	Records         map[string]*Record
	ResourceServers map[string]*ResourceServer
	Tests           map[string]*Test
}

// NewPolicySet returns an empty policy set with all maps allocated.
func NewPolicySet() *PolicySet {
	return &PolicySet{
		Roles:           map[string]*Role{},
		Groups:          map[string]*Group{},
		Records:         map[string]*Record{},
		ResourceServers: map[string]*ResourceServer{},
		Tests:           map[string]*Test{},
	}
}

// Role is a named set of permission entries (Authress roles, Clerk organization roles).
type Role struct {
	ID          string
	Name        string
	Description string
	Permissions []RolePermission
	Tags        map[string]string
	Pos         Pos
}

// RolePermission is one entry of a role: an action pattern with its Allow,
// Grant and Delegate levels.
type RolePermission struct {
	Action   string
	Allow    bool
	Grant    bool
	Delegate bool
	Pos      Pos
}

// Group is a named list of users.
type Group struct {
	ID          string
	Name        string
	Description string
	Users       []string
	Tags        map[string]string
	Pos         Pos
}

// Record is an access record: statements that give its subjects roles on resources.
type Record struct {
	ID          string
	Name        string
	Description string
	Users       []string
	Groups      []string
	Statements  []Statement
	Tags        map[string]string
	Pos         Pos
}

// Environment returns the record's tags.environment, or "" when it applies everywhere.
func (r *Record) Environment() string { return r.Tags["environment"] }

// Statement gives roles on resource URI patterns. When it names its own
// users or groups, those are its subjects; otherwise the record's are.
type Statement struct {
	Roles     []string
	Resources []string
	Users     []string
	Groups    []string
	Pos       Pos
}

// Subjects returns the users and groups the statement applies to (SPEC 2.3).
func (s *Statement) Subjects(r *Record) (users, groups []string) {
	if len(s.Users) > 0 || len(s.Groups) > 0 {
		return s.Users, s.Groups
	}
	return r.Users, r.Groups
}

// Decision strategies of resource servers, permissions and aggregate policies.
const (
	StrategyUnanimous   = "unanimous"
	StrategyAffirmative = "affirmative"
	StrategyConsensus   = "consensus"
)

// Enforcement modes of a resource server.
const (
	EnforcementEnforcing  = "enforcing"
	EnforcementPermissive = "permissive"
	EnforcementDisabled   = "disabled"
)

// Logic of a policy or permission.
const (
	LogicPositive = "positive"
	LogicNegative = "negative"
)

// Policy types of a resource server.
const (
	PolicyRole      = "role"
	PolicyUser      = "user"
	PolicyGroup     = "group"
	PolicyTime      = "time"
	PolicyAggregate = "aggregate"
)

// Permission types of a resource server.
const (
	PermissionScope    = "scope"
	PermissionResource = "resource"
)

// ResourceServer is a Keycloak-style resource server: scopes, resources,
// policies and permissions combined by a decision strategy.
type ResourceServer struct {
	ID               string
	Name             string
	Description      string
	DecisionStrategy string
	EnforcementMode  string
	Scopes           []string
	Resources        map[string]*Resource
	Policies         map[string]*AuthzPolicy
	Permissions      map[string]*Permission
	Pos              Pos
}

// Resource is a resource of a resource server, matched by URI patterns.
type Resource struct {
	ID     string
	Name   string
	Type   string
	URIs   []string
	Scopes []string
	Pos    Pos
}

// HourRange is an inclusive range of hours of the day; From > To wraps past midnight.
type HourRange struct {
	From int
	To   int
}

// AuthzPolicy is a policy of a resource server. Which fields are set depends on Type.
type AuthzPolicy struct {
	ID          string
	Name        string
	Description string
	Logic       string
	Type        string

	Roles      []string // role
	RequireAll bool     // role
	Users      []string // user
	Groups     []string // group

	NotBefore    *time.Time // time
	NotOnOrAfter *time.Time // time
	Hours        *HourRange // time
	Weekdays     []string   // time: "mon" … "sun"
	Timezone     string     // time: IANA name, default "UTC"

	Policies         []string // aggregate
	DecisionStrategy string   // aggregate

	Pos Pos
}

// Permission is a scope- or resource-based permission of a resource server.
type Permission struct {
	ID               string
	Name             string
	Description      string
	Type             string
	Scopes           []string // scope
	Resources        []string // scope (restriction) or resource
	ResourceType     string   // resource
	Policies         []string
	DecisionStrategy string
	Logic            string
	Pos              Pos
}

// Test is a policy test: a question and its expected answer. Exactly one of
// Action, Role and Assign is set.
type Test struct {
	Name        string
	User        string
	Resource    string
	Action      string
	Role        string
	Assign      string
	Time        *time.Time
	Environment string
	Expect      string // "allow" or "deny"
	Pos         Pos
}
