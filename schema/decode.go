package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The Go validator: it decodes a node tree into a Policy fragment and
// enforces exactly what charter.cue enforces, so that JSON and YAML data
// files, which are not evaluated by CUE, obey the same rules. The
// differential test in decode_test.go holds the two to the same verdicts.

var userIDPattern = regexp.MustCompile(`^[^\x00-\x1f]{1,256}$`)

// Field names allowed in each kind of object, as in charter.cue.
var (
	topFields            = []string{"roles", "groups", "records", "resourceServers", "tests"}
	roleFields           = []string{"name", "description", "permissions", "tags"}
	rolePermissionFields = []string{"action", "allow", "grant", "delegate"}
	groupFields          = []string{"name", "description", "users", "tags"}
	recordFields         = []string{"name", "description", "users", "groups", "statements", "tags"}
	statementFields      = []string{"roles", "resources", "users", "groups"}
	serverFields         = []string{"name", "description", "decisionStrategy", "enforcementMode", "scopes", "resources", "policies", "permissions"}
	resourceFields       = []string{"name", "type", "uris", "scopes"}
	policyBaseFields     = []string{"name", "description", "logic", "type"}
	policyTypeFields     = map[string][]string{
		PolicyRole:      {"roles", "requireAll"},
		PolicyUser:      {"users"},
		PolicyGroup:     {"groups"},
		PolicyTime:      {"notBefore", "notOnOrAfter", "hours", "weekdays", "timezone"},
		PolicyAggregate: {"policies", "decisionStrategy"},
	}
	permissionBaseFields = []string{"name", "description", "type", "policies", "decisionStrategy", "logic"}
	permissionTypeFields = map[string][]string{
		PermissionScope:    {"scopes", "resources"},
		PermissionResource: {"resources", "resourceType"},
	}
	hoursFields = []string{"from", "to"}
	testFields  = []string{"user", "resource", "action", "role", "assign", "time", "environment", "expect"}
	weekdays    = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
)

// decoder accumulates the errors of one file or directory.
type decoder struct {
	errs Errors
}

func (d *decoder) fail(pos Pos, p *fieldPath, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: pos, Path: p.String(), Message: fmt.Sprintf(format, args...)})
}

// decodePolicy decodes the top level of one policy file or directory.
func decodePolicy(n *node) (*PolicySet, Errors) {
	d := &decoder{}
	pol := NewPolicySet()
	d.object(n, nil, topFields, nil, func(key string, f field, p *fieldPath) {
		switch key {
		case "roles":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if r := d.role(id, e, ep); r != nil {
					pol.Roles[id] = r
				}
			})
		case "groups":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if g := d.group(id, e, ep); g != nil {
					pol.Groups[id] = g
				}
			})
		case "records":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if r := d.record(id, e, ep); r != nil {
					pol.Records[id] = r
				}
			})
		case "resourceServers":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if s := d.server(id, e, ep); s != nil {
					pol.ResourceServers[id] = s
				}
			})
		case "tests":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if t := d.test(id, e, ep); t != nil {
					pol.Tests[id] = t
				}
			})
		}
	})
	return pol, d.errs
}

// object checks that n is a struct with only the allowed fields and the
// required ones, and calls fn for each field in order.
func (d *decoder) object(n *node, p *fieldPath, allowed, required []string, fn func(key string, f field, p *fieldPath)) bool {
	if n.kind != kindObject {
		d.fail(n.pos, p, "must be a struct, got %s", n.describe())
		return false
	}
	ok := true
	seen := make(map[string]bool, len(n.fields))
	for _, f := range n.fields {
		fp := p.field(f.key)
		if seen[f.key] {
			d.fail(f.pos, fp, "field given twice")
			ok = false
			continue
		}
		seen[f.key] = true
		if !slices.Contains(allowed, f.key) {
			d.fail(f.pos, fp, "field not allowed (allowed: %s)", strings.Join(allowed, ", "))
			ok = false
			continue
		}
		fn(f.key, f, fp)
	}
	for _, r := range required {
		if !seen[r] {
			d.fail(n.pos, p.field(r), "field is required")
			ok = false
		}
	}
	return ok
}

// entities walks a struct of entities keyed by ID.
func (d *decoder) entities(n *node, p *fieldPath, fn func(id string, f field, p *fieldPath)) {
	if n.kind != kindObject {
		d.fail(n.pos, p, "must be a struct of entities keyed by ID, got %s", n.describe())
		return
	}
	seen := make(map[string]bool, len(n.fields))
	for _, f := range n.fields {
		fp := p.field(f.key)
		if seen[f.key] {
			d.fail(f.pos, fp, "field given twice")
			continue
		}
		seen[f.key] = true
		fn(f.key, f, fp)
	}
}

func (d *decoder) str(n *node, p *fieldPath) (string, bool) {
	if n.kind != kindString {
		d.fail(n.pos, p, "must be a string, got %s", n.describe())
		return "", false
	}
	return n.str, true
}

func (d *decoder) name(n *node, p *fieldPath) string {
	s, ok := d.str(n, p)
	if ok {
		if c := utf8.RuneCountInString(s); c < 1 || c > 150 {
			d.fail(n.pos, p, "%s", nameLength(s))
		}
	}
	return s
}

func nameLength(s string) string {
	return fmt.Sprintf("must be 1 to 150 characters long, got %d", utf8.RuneCountInString(s))
}

func descriptionLength(s string) string {
	return fmt.Sprintf("must be at most 1000 characters long, got %d", utf8.RuneCountInString(s))
}

func (d *decoder) description(n *node, p *fieldPath) string {
	s, ok := d.str(n, p)
	if ok {
		if utf8.RuneCountInString(s) > 1000 {
			d.fail(n.pos, p, "%s", descriptionLength(s))
		}
	}
	return s
}

func (d *decoder) id(n *node, p *fieldPath) string {
	s, ok := d.str(n, p)
	if ok && !isID(s) {
		d.fail(n.pos, p, "invalid ID %s: want a letter or digit, then up to 127 of letters, digits and _.:@-", n.describe())
	}
	return s
}

func (d *decoder) userID(n *node, p *fieldPath) string {
	s, ok := d.str(n, p)
	if ok && !userIDPattern.MatchString(s) {
		d.fail(n.pos, p, "invalid user ID %s: want 1 to 256 characters without control characters", n.describe())
	}
	return s
}

func (d *decoder) enum(n *node, p *fieldPath, choices ...string) string {
	s, ok := d.str(n, p)
	if ok && !slices.Contains(choices, s) {
		d.fail(n.pos, p, "invalid value %s (want one of %s)", n.describe(), quoteAll(choices))
		return ""
	}
	return s
}

func (d *decoder) boolean(n *node, p *fieldPath) bool {
	if n.kind != kindBool {
		d.fail(n.pos, p, "must be true or false, got %s", n.describe())
	}
	return n.b
}

func (d *decoder) list(n *node, p *fieldPath, nonEmpty bool) []*node {
	if n.kind != kindArray {
		d.fail(n.pos, p, "must be a list, got %s", n.describe())
		return nil
	}
	if nonEmpty && len(n.items) == 0 {
		d.fail(n.pos, p, "must not be empty")
	}
	return n.items
}

// strings decodes a list of strings, each checked by elem.
func (d *decoder) strings(n *node, p *fieldPath, nonEmpty bool, elem func(*node, *fieldPath) string) []string {
	items := d.list(n, p, nonEmpty)
	if items == nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		out = append(out, elem(it, p.elem(i)))
	}
	return out
}

func (d *decoder) plainString(n *node, p *fieldPath) string {
	s, _ := d.str(n, p)
	return s
}

func (d *decoder) tags(n *node, p *fieldPath) map[string]string {
	if n.kind != kindObject {
		d.fail(n.pos, p, "must be a struct of strings, got %s", n.describe())
		return nil
	}
	tags := make(map[string]string, len(n.fields))
	for _, f := range n.fields {
		if _, dup := tags[f.key]; dup {
			d.fail(f.pos, p.field(f.key), "field given twice")
			continue
		}
		tags[f.key] = d.plainString(f.val, p.field(f.key))
	}
	return tags
}

func (d *decoder) hour(n *node, p *fieldPath) int {
	if n.kind != kindNumber || strings.ContainsAny(n.str, ".eE") {
		d.fail(n.pos, p, "must be a whole number from 0 to 23, got %s", n.describe())
		return 0
	}
	var h int
	if _, err := fmt.Sscan(n.str, &h); err != nil || h < 0 || h > 23 {
		d.fail(n.pos, p, "must be a whole number from 0 to 23, got %s", n.str)
	}
	return h
}

func (d *decoder) time(n *node, p *fieldPath) *time.Time {
	s, ok := d.str(n, p)
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(n.pos, p, "invalid time %s: want RFC 3339, as in \"2026-01-31T09:00:00Z\"", n.describe())
		return nil
	}
	return &t
}

func (d *decoder) role(id string, f field, p *fieldPath) *Role {
	r := &Role{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, roleFields, []string{"name", "permissions"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "name":
			r.Name = d.name(f.val, p)
		case "description":
			r.Description = d.description(f.val, p)
		case "tags":
			r.Tags = d.tags(f.val, p)
		case "permissions":
			for i, it := range d.list(f.val, p, true) {
				r.Permissions = append(r.Permissions, d.rolePermission(it, p.elem(i)))
			}
		}
	})
	return keep(r, ok)
}

func (d *decoder) rolePermission(n *node, p *fieldPath) RolePermission {
	rp := RolePermission{Allow: true, Pos: n.pos}
	d.object(n, p, rolePermissionFields, []string{"action"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "action":
			rp.Action = d.plainString(f.val, p)
		case "allow":
			rp.Allow = d.boolean(f.val, p)
		case "grant":
			rp.Grant = d.boolean(f.val, p)
		case "delegate":
			rp.Delegate = d.boolean(f.val, p)
		}
	})
	return rp
}

func (d *decoder) group(id string, f field, p *fieldPath) *Group {
	g := &Group{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, groupFields, []string{"name"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "name":
			g.Name = d.name(f.val, p)
		case "description":
			g.Description = d.description(f.val, p)
		case "tags":
			g.Tags = d.tags(f.val, p)
		case "users":
			g.Users = d.strings(f.val, p, false, d.userID)
		}
	})
	return keep(g, ok)
}

func (d *decoder) record(id string, f field, p *fieldPath) *Record {
	r := &Record{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, recordFields, []string{"name", "statements"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "name":
			r.Name = d.name(f.val, p)
		case "description":
			r.Description = d.description(f.val, p)
		case "tags":
			r.Tags = d.tags(f.val, p)
		case "users":
			r.Users = d.strings(f.val, p, false, d.userID)
		case "groups":
			r.Groups = d.strings(f.val, p, false, d.id)
		case "statements":
			items := d.list(f.val, p, true)
			r.Statements = make([]Statement, 0, len(items))
			for i, it := range items {
				r.Statements = append(r.Statements, d.statement(it, p.elem(i)))
			}
		}
	})
	return keep(r, ok)
}

func (d *decoder) statement(n *node, p *fieldPath) Statement {
	s := Statement{Pos: n.pos}
	d.object(n, p, statementFields, []string{"roles", "resources"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "roles":
			s.Roles = d.strings(f.val, p, true, d.id)
		case "resources":
			s.Resources = d.strings(f.val, p, true, d.plainString)
		case "users":
			s.Users = d.strings(f.val, p, false, d.userID)
		case "groups":
			s.Groups = d.strings(f.val, p, false, d.id)
		}
	})
	return s
}

func (d *decoder) server(id string, f field, p *fieldPath) *ResourceServer {
	s := &ResourceServer{
		ID: id, Pos: f.pos,
		DecisionStrategy: StrategyUnanimous, EnforcementMode: EnforcementEnforcing,
		Resources: map[string]*Resource{}, Policies: map[string]*AuthzPolicy{}, Permissions: map[string]*Permission{},
	}
	ok := d.object(f.val, p, serverFields, []string{"name"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "name":
			s.Name = d.name(f.val, p)
		case "description":
			s.Description = d.description(f.val, p)
		case "decisionStrategy":
			s.DecisionStrategy = d.enum(f.val, p, StrategyUnanimous, StrategyAffirmative)
		case "enforcementMode":
			s.EnforcementMode = d.enum(f.val, p, EnforcementEnforcing, EnforcementPermissive, EnforcementDisabled)
		case "scopes":
			s.Scopes = d.strings(f.val, p, false, d.plainString)
		case "resources":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if r := d.resource(id, e, ep); r != nil {
					s.Resources[id] = r
				}
			})
		case "policies":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if pol := d.authzPolicy(id, e, ep); pol != nil {
					s.Policies[id] = pol
				}
			})
		case "permissions":
			d.entities(f.val, p, func(id string, e field, ep *fieldPath) {
				if perm := d.permission(id, e, ep); perm != nil {
					s.Permissions[id] = perm
				}
			})
		}
	})
	return keep(s, ok)
}

func (d *decoder) resource(id string, f field, p *fieldPath) *Resource {
	r := &Resource{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, resourceFields, []string{"name", "uris"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "name":
			r.Name = d.name(f.val, p)
		case "type":
			r.Type = d.plainString(f.val, p)
		case "uris":
			r.URIs = d.strings(f.val, p, true, d.plainString)
		case "scopes":
			r.Scopes = d.strings(f.val, p, false, d.plainString)
		}
	})
	return keep(r, ok)
}

// discriminator reads the "type" field of n, which decides the other fields allowed.
func discriminator(n *node) string {
	for _, f := range n.fields {
		if f.key == "type" && f.val.kind == kindString {
			return f.val.str
		}
	}
	return ""
}

// fieldsFor returns the fields allowed for an object with a discriminator:
// the base fields plus those of its type. When the type is missing or
// unknown, every type's fields are allowed and only the type is reported.
func fieldsFor(base []string, byType map[string][]string, typ string) []string {
	allowed := slices.Clone(base)
	if extra, ok := byType[typ]; ok {
		return append(allowed, extra...)
	}
	for _, extra := range byType {
		for _, e := range extra {
			if !slices.Contains(allowed, e) {
				allowed = append(allowed, e)
			}
		}
	}
	return allowed
}

func (d *decoder) authzPolicy(id string, f field, p *fieldPath) *AuthzPolicy {
	pol := &AuthzPolicy{ID: id, Pos: f.pos, Logic: LogicPositive}
	if f.val.kind != kindObject {
		d.fail(f.val.pos, p, "must be a struct, got %s", f.val.describe())
		return nil
	}
	typ := discriminator(f.val)
	required := []string{"name", "type"}
	switch typ {
	case PolicyRole:
		required = append(required, "roles")
	case PolicyUser:
		required = append(required, "users")
	case PolicyGroup:
		required = append(required, "groups")
	case PolicyTime:
		pol.Timezone = "UTC"
	case PolicyAggregate:
		required = append(required, "policies")
		pol.DecisionStrategy = StrategyUnanimous
	}
	ok := d.object(f.val, p, fieldsFor(policyBaseFields, policyTypeFields, typ), required, func(key string, f field, p *fieldPath) {
		switch key {
		case "name":
			pol.Name = d.name(f.val, p)
		case "description":
			pol.Description = d.description(f.val, p)
		case "logic":
			pol.Logic = d.enum(f.val, p, LogicPositive, LogicNegative)
		case "type":
			pol.Type = d.enum(f.val, p, PolicyRole, PolicyUser, PolicyGroup, PolicyTime, PolicyAggregate)
		case "roles":
			pol.Roles = d.strings(f.val, p, true, d.id)
		case "requireAll":
			pol.RequireAll = d.boolean(f.val, p)
		case "users":
			pol.Users = d.strings(f.val, p, true, d.userID)
		case "groups":
			pol.Groups = d.strings(f.val, p, true, d.id)
		case "notBefore":
			pol.NotBefore = d.time(f.val, p)
		case "notOnOrAfter":
			pol.NotOnOrAfter = d.time(f.val, p)
		case "hours":
			h := &HourRange{}
			d.object(f.val, p, hoursFields, hoursFields, func(key string, f field, p *fieldPath) {
				if key == "from" {
					h.From = d.hour(f.val, p)
				} else {
					h.To = d.hour(f.val, p)
				}
			})
			pol.Hours = h
		case "weekdays":
			pol.Weekdays = d.strings(f.val, p, false, func(n *node, p *fieldPath) string { return d.enum(n, p, weekdays...) })
		case "timezone":
			pol.Timezone = d.plainString(f.val, p)
		case "policies":
			pol.Policies = d.strings(f.val, p, true, d.id)
		case "decisionStrategy":
			pol.DecisionStrategy = d.enum(f.val, p, StrategyUnanimous, StrategyAffirmative, StrategyConsensus)
		}
	})
	return keep(pol, ok)
}

func (d *decoder) permission(id string, f field, p *fieldPath) *Permission {
	perm := &Permission{ID: id, Pos: f.pos, DecisionStrategy: StrategyUnanimous, Logic: LogicPositive}
	if f.val.kind != kindObject {
		d.fail(f.val.pos, p, "must be a struct, got %s", f.val.describe())
		return nil
	}
	typ := discriminator(f.val)
	required := []string{"name", "type"}
	if typ == PermissionScope {
		required = append(required, "scopes")
	}
	ok := d.object(f.val, p, fieldsFor(permissionBaseFields, permissionTypeFields, typ), required, func(key string, f field, p *fieldPath) {
		switch key {
		case "name":
			perm.Name = d.name(f.val, p)
		case "description":
			perm.Description = d.description(f.val, p)
		case "type":
			perm.Type = d.enum(f.val, p, PermissionScope, PermissionResource)
		case "scopes":
			perm.Scopes = d.strings(f.val, p, true, d.plainString)
		case "resources":
			perm.Resources = d.strings(f.val, p, false, d.id)
		case "resourceType":
			perm.ResourceType = d.plainString(f.val, p)
		case "policies":
			perm.Policies = d.strings(f.val, p, false, d.id)
		case "decisionStrategy":
			perm.DecisionStrategy = d.enum(f.val, p, StrategyUnanimous, StrategyAffirmative, StrategyConsensus)
		case "logic":
			perm.Logic = d.enum(f.val, p, LogicPositive, LogicNegative)
		}
	})
	return keep(perm, ok)
}

func (d *decoder) test(name string, f field, p *fieldPath) *Test {
	t := &Test{Name: name, Pos: f.pos}
	ok := d.object(f.val, p, testFields, []string{"user", "resource", "expect"}, func(key string, f field, p *fieldPath) {
		switch key {
		case "user":
			t.User = d.userID(f.val, p)
		case "resource":
			t.Resource = d.plainString(f.val, p)
		case "action":
			t.Action = d.plainString(f.val, p)
		case "role":
			t.Role = d.id(f.val, p)
		case "assign":
			t.Assign = d.id(f.val, p)
		case "time":
			t.Time = d.time(f.val, p)
		case "environment":
			t.Environment = d.plainString(f.val, p)
		case "expect":
			t.Expect = d.enum(f.val, p, "allow", "deny")
		}
	})
	return keep(t, ok)
}

// keep returns v when its object decoded, else nil.
func keep[T any](v *T, ok bool) *T {
	if !ok {
		return nil
	}
	return v
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
