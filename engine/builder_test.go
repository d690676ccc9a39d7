package engine

import (
	"strings"
	"time"

	"github.com/charter-policy/charter/schema"
)

// pb builds policies in tests. Every entity gets a position in "test.cue"
// on its own line so that traces show sources.
type pb struct {
	p    *schema.PolicySet
	line int
}

func newPB() *pb { return &pb{p: schema.NewPolicySet()} }

func (b *pb) pos() schema.Pos {
	b.line++
	return schema.Pos{File: "test.cue", Line: b.line, Col: 1}
}

// role adds a role. Each entry is "action [+grant] [+delegate] [-allow]".
func (b *pb) role(id string, entries ...string) *pb {
	r := &schema.Role{ID: id, Name: id, Pos: b.pos()}
	for _, e := range entries {
		f := strings.Fields(e)
		rp := schema.RolePermission{Action: f[0], Allow: true, Pos: b.pos()}
		for _, flag := range f[1:] {
			switch flag {
			case "+grant":
				rp.Grant = true
			case "+delegate":
				rp.Delegate = true
			case "-allow":
				rp.Allow = false
			default:
				panic("bad flag " + flag)
			}
		}
		r.Permissions = append(r.Permissions, rp)
	}
	b.p.Roles[id] = r
	return b
}

func (b *pb) group(id string, users ...string) *pb {
	b.p.Groups[id] = &schema.Group{ID: id, Name: id, Users: users, Pos: b.pos()}
	return b
}

// subjects splits "alice,g:admins" into users and groups.
func subjects(s string) (users, groups []string) {
	for _, x := range splitList(s) {
		if g, ok := strings.CutPrefix(x, "g:"); ok {
			groups = append(groups, g)
		} else {
			users = append(users, x)
		}
	}
	return users, groups
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// stmt is a statement: "Role1,Role2", "res1,res2" and optional own subjects "bob,g:admins".
func stmt(roles, resources string, subs ...string) schema.Statement {
	st := schema.Statement{Roles: splitList(roles), Resources: splitList(resources)}
	if len(subs) > 0 {
		st.Users, st.Groups = subjects(strings.Join(subs, ","))
	}
	return st
}

// rec adds a record with subjects "alice,g:admins" and statements.
func (b *pb) rec(id, subs string, stmts ...schema.Statement) *pb {
	return b.recEnv(id, "", subs, stmts...)
}

func (b *pb) recEnv(id, env, subs string, stmts ...schema.Statement) *pb {
	r := &schema.Record{ID: id, Name: id, Pos: b.pos()}
	r.Users, r.Groups = subjects(subs)
	if env != "" {
		r.Tags = map[string]string{"environment": env}
	}
	for _, st := range stmts {
		st.Pos = b.pos()
		r.Statements = append(r.Statements, st)
	}
	b.p.Records[id] = r
	return b
}

// srv adds a resource server and returns a builder for its parts.
func (b *pb) srv(id, strategy, mode string) *sb {
	s := &schema.ResourceServer{ID: id, Name: id, DecisionStrategy: strategy, EnforcementMode: mode,
		Resources: map[string]*schema.Resource{}, Policies: map[string]*schema.AuthzPolicy{},
		Permissions: map[string]*schema.Permission{}, Pos: b.pos()}
	if s.DecisionStrategy == "" {
		s.DecisionStrategy = schema.StrategyUnanimous
	}
	if s.EnforcementMode == "" {
		s.EnforcementMode = schema.EnforcementEnforcing
	}
	b.p.ResourceServers[id] = s
	return &sb{b: b, s: s}
}

type sb struct {
	b *pb
	s *schema.ResourceServer
}

// res adds a resource with comma-separated URIs and scopes.
func (s *sb) res(id, typ, uris, scopes string) *sb {
	s.s.Resources[id] = &schema.Resource{ID: id, Name: id, Type: typ, URIs: splitList(uris), Scopes: splitList(scopes), Pos: s.b.pos()}
	for _, sc := range splitList(scopes) {
		if !contains(s.s.Scopes, sc) {
			s.s.Scopes = append(s.s.Scopes, sc)
		}
	}
	return s
}

func contains(ss []string, x string) bool {
	for _, s := range ss {
		if s == x {
			return true
		}
	}
	return false
}

func (s *sb) pol(p *schema.AuthzPolicy) *sb {
	p.Pos = s.b.pos()
	if p.Name == "" {
		p.Name = p.ID
	}
	if p.Logic == "" {
		p.Logic = schema.LogicPositive
	}
	if p.Type == schema.PolicyAggregate && p.DecisionStrategy == "" {
		p.DecisionStrategy = schema.StrategyUnanimous
	}
	if p.Type == schema.PolicyTime && p.Timezone == "" {
		p.Timezone = "UTC"
	}
	s.s.Policies[p.ID] = p
	return s
}

// scopePerm adds a scope permission over scopes, optional resources, and policies.
func (s *sb) scopePerm(id, scopes, resources, policies, strategy, logic string) *sb {
	return s.perm(&schema.Permission{ID: id, Type: schema.PermissionScope, Scopes: splitList(scopes),
		Resources: splitList(resources), Policies: splitList(policies), DecisionStrategy: strategy, Logic: logic})
}

// resPerm adds a resource permission over resources or a resource type.
func (s *sb) resPerm(id, resources, resourceType, policies, strategy, logic string) *sb {
	return s.perm(&schema.Permission{ID: id, Type: schema.PermissionResource, Resources: splitList(resources),
		ResourceType: resourceType, Policies: splitList(policies), DecisionStrategy: strategy, Logic: logic})
}

func (s *sb) perm(p *schema.Permission) *sb {
	p.Name = p.ID
	p.Pos = s.b.pos()
	if p.DecisionStrategy == "" {
		p.DecisionStrategy = schema.StrategyUnanimous
	}
	if p.Logic == "" {
		p.Logic = schema.LogicPositive
	}
	for _, sc := range p.Scopes {
		if !contains(s.s.Scopes, sc) {
			s.s.Scopes = append(s.s.Scopes, sc)
		}
	}
	s.s.Permissions[p.ID] = p
	return s
}

func userPol(id, users string) *schema.AuthzPolicy {
	return &schema.AuthzPolicy{ID: id, Type: schema.PolicyUser, Users: splitList(users)}
}

func groupPol(id, groups string) *schema.AuthzPolicy {
	return &schema.AuthzPolicy{ID: id, Type: schema.PolicyGroup, Groups: splitList(groups)}
}

func rolePol(id, roles string, all bool) *schema.AuthzPolicy {
	return &schema.AuthzPolicy{ID: id, Type: schema.PolicyRole, Roles: splitList(roles), RequireAll: all}
}

func aggPol(id, strategy, policies string) *schema.AuthzPolicy {
	return &schema.AuthzPolicy{ID: id, Type: schema.PolicyAggregate, DecisionStrategy: strategy, Policies: splitList(policies)}
}

func neg(p *schema.AuthzPolicy) *schema.AuthzPolicy {
	p.Logic = schema.LogicNegative
	return p
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func ptime(s string) *time.Time {
	t := mustTime(s)
	return &t
}
