package schema

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charter-policy/charter/schema/quote"
)

// The Go validator: it decodes a node tree into a PolicySet fragment and
// enforces exactly what charter.cue enforces, so that JSON and YAML data
// files, which are not evaluated by CUE, obey the same rules. Which fields
// each struct allows and requires, their defaults, the lists that must not
// be empty and the choices of enumerations come from the compiled schema
// (shape.go); the differential tests hold the two to the same verdicts and
// fields in error: hand-written samples (decode_test.go) and generated
// documents (FuzzCUEAndGoAgree in differential_test.go).

// isUserID reports whether s is a #UserID of the schema,
// =~"^[^\x00-\x1f]{1,256}$": 1 to 256 characters, none of them a control
// character. A loop rather than that regular expression, whose bounded
// repetition compiles to 256 copies, at every start of the binary (and of
// each child that evaluates CUE).
func isUserID(s string) bool {
	n := 0
	for _, r := range s { // an invalid byte is one U+FFFD, as for the regexp
		if r < 0x20 {
			return false
		}
		n++
	}
	return n >= 1 && n <= 256
}

// decoder accumulates the errors of one file or directory.
type decoder struct {
	errs Errors
	sh   *shapes
}

func (d *decoder) fail(pos Pos, p *fieldPath, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: pos, Path: p.String(), Message: fmt.Sprintf(format, args...)})
}

// decodePolicy decodes the top level of one policy file or directory.
func decodePolicy(n *node) (*PolicySet, Errors) {
	d := &decoder{sh: charterShapes()}
	pol := NewPolicySet()
	d.object(n, nil, d.sh.charter, func(f field, _ *fieldShape, p *fieldPath) bool {
		switch f.key {
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
		default:
			return false
		}
		return true
	})
	return pol, d.errs
}

// readField decodes one field of a struct into its Go value; it returns
// false for a field it does not know.
type readField func(f field, fs *fieldShape, p *fieldPath) bool

// object checks that n is a struct with only the fields that s allows and
// every field it requires, and calls read for each field in order, then for
// each absent field that has a default, with the default's value. A field
// that the schema allows but read does not know is an error, never dropped.
func (d *decoder) object(n *node, p *fieldPath, s *shape, read readField) bool {
	if n.kind != kindObject {
		d.fail(n.pos, p, "must be a struct, got %s", n.typeOf())
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
		fs := s.field(f.key)
		if fs == nil {
			d.fail(f.pos, fp, "field not allowed (allowed: %s)", s.names)
			ok = false
			continue
		}
		if fs.unchecked {
			continue
		}
		if !read(f, fs, fp) {
			d.fail(f.pos, fp, "the schema allows this field but this version of Charter does not read it (a defect: please report it)")
			ok = false
		}
	}
	for _, r := range s.required {
		if !seen[r] {
			d.fail(n.pos, p.field(r), "field is required")
			ok = false
		}
	}
	for _, fs := range s.fields {
		if fs.def != nil && !seen[fs.name] {
			read(field{key: fs.name, pos: n.pos, val: fs.def}, fs, p.field(fs.name))
		}
	}
	return ok
}

// entities walks a struct of entities keyed by ID.
func (d *decoder) entities(n *node, p *fieldPath, fn func(id string, f field, p *fieldPath)) {
	if n.kind != kindObject {
		d.fail(n.pos, p, "must be a struct of entities keyed by ID, got %s", n.typeOf())
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
		d.fail(n.pos, p, "must be a string, got %s", n.typeOf())
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
		d.fail(n.pos, p, "invalid ID %s: want a letter or digit, then up to 127 of letters, digits and _.:@-", n.token())
	}
	return s
}

func (d *decoder) userID(n *node, p *fieldPath) string {
	s, ok := d.str(n, p)
	if ok && !isUserID(s) {
		d.fail(n.pos, p, "invalid user ID %s: want 1 to 256 characters without control characters", n.token())
	}
	return s
}

// enum decodes a string that must be one of the choices of fs.
func (d *decoder) enum(n *node, p *fieldPath, fs *fieldShape) string {
	return d.choice(n, p, fs.shape.choices)
}

func (d *decoder) choice(n *node, p *fieldPath, choices []string) string {
	s, ok := d.str(n, p)
	if ok && !slices.Contains(choices, s) {
		d.fail(n.pos, p, "invalid value %s (want one of %s)", n.token(), quoteAll(choices))
		return ""
	}
	return s
}

func (d *decoder) boolean(n *node, p *fieldPath) bool {
	if n.kind != kindBool {
		d.fail(n.pos, p, "must be true or false, got %s", n.typeOf())
	}
	return n.b
}

// list decodes a list of the shape of fs, which says whether it may be empty.
func (d *decoder) list(n *node, p *fieldPath, fs *fieldShape) []*node {
	if n.kind != kindArray {
		d.fail(n.pos, p, "must be a list, got %s", n.typeOf())
		return nil
	}
	if fs.shape.nonEmpty && len(n.items) == 0 {
		d.fail(n.pos, p, "must not be empty")
	}
	return n.items
}

// strings decodes a list of strings of the shape of fs, each checked by elem.
func (d *decoder) strings(n *node, p *fieldPath, fs *fieldShape, elem func(*node, *fieldPath) string) []string {
	items := d.list(n, p, fs)
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
		d.fail(n.pos, p, "must be a struct of strings, got %s", n.typeOf())
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
		d.fail(n.pos, p, "must be a whole number from 0 to 23, got %s", n.token()) // a number is shown, cut
		return 0
	}
	var h int
	if _, err := fmt.Sscan(n.str, &h); err != nil || h < 0 || h > 23 {
		d.fail(n.pos, p, "must be a whole number from 0 to 23, got %s", quote.Cut(n.str))
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
		d.fail(n.pos, p, "invalid time %s: want RFC 3339, as in \"2026-01-31T09:00:00Z\"", n.token())
		return nil
	}
	return &t
}

func (d *decoder) role(id string, f field, p *fieldPath) *Role {
	r := &Role{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, d.sh.role, func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "name":
			r.Name = d.name(f.val, p)
		case "description":
			r.Description = d.description(f.val, p)
		case "tags":
			r.Tags = d.tags(f.val, p)
		case "permissions":
			for i, it := range d.list(f.val, p, fs) {
				r.Permissions = append(r.Permissions, d.rolePermission(it, p.elem(i)))
			}
		default:
			return false
		}
		return true
	})
	return keep(r, ok)
}

func (d *decoder) rolePermission(n *node, p *fieldPath) RolePermission {
	rp := RolePermission{Pos: n.pos}
	d.object(n, p, d.sh.rolePermission, func(f field, _ *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "action":
			rp.Action = d.plainString(f.val, p)
		case "allow":
			rp.Allow = d.boolean(f.val, p)
		case "grant":
			rp.Grant = d.boolean(f.val, p)
		case "delegate":
			rp.Delegate = d.boolean(f.val, p)
		default:
			return false
		}
		return true
	})
	return rp
}

func (d *decoder) group(id string, f field, p *fieldPath) *Group {
	g := &Group{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, d.sh.group, func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "name":
			g.Name = d.name(f.val, p)
		case "description":
			g.Description = d.description(f.val, p)
		case "tags":
			g.Tags = d.tags(f.val, p)
		case "users":
			g.Users = d.strings(f.val, p, fs, d.userID)
		default:
			return false
		}
		return true
	})
	return keep(g, ok)
}

func (d *decoder) record(id string, f field, p *fieldPath) *Record {
	r := &Record{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, d.sh.record, func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "name":
			r.Name = d.name(f.val, p)
		case "description":
			r.Description = d.description(f.val, p)
		case "tags":
			r.Tags = d.tags(f.val, p)
		case "users":
			r.Users = d.strings(f.val, p, fs, d.userID)
		case "groups":
			r.Groups = d.strings(f.val, p, fs, d.id)
		case "statements":
			items := d.list(f.val, p, fs)
			r.Statements = make([]Statement, 0, len(items))
			for i, it := range items {
				r.Statements = append(r.Statements, d.statement(it, p.elem(i)))
			}
		default:
			return false
		}
		return true
	})
	return keep(r, ok)
}

func (d *decoder) statement(n *node, p *fieldPath) Statement {
	s := Statement{Pos: n.pos}
	d.object(n, p, d.sh.statement, func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "roles":
			s.Roles = d.strings(f.val, p, fs, d.id)
		case "resources":
			s.Resources = d.strings(f.val, p, fs, d.plainString)
		case "users":
			s.Users = d.strings(f.val, p, fs, d.userID)
		case "groups":
			s.Groups = d.strings(f.val, p, fs, d.id)
		default:
			return false
		}
		return true
	})
	return s
}

func (d *decoder) server(id string, f field, p *fieldPath) *ResourceServer {
	s := &ResourceServer{
		ID: id, Pos: f.pos,
		Resources: map[string]*Resource{}, Policies: map[string]*AuthzPolicy{}, Permissions: map[string]*Permission{},
	}
	ok := d.object(f.val, p, d.sh.server, func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "name":
			s.Name = d.name(f.val, p)
		case "description":
			s.Description = d.description(f.val, p)
		case "decisionStrategy":
			s.DecisionStrategy = d.enum(f.val, p, fs)
		case "enforcementMode":
			s.EnforcementMode = d.enum(f.val, p, fs)
		case "scopes":
			s.Scopes = d.strings(f.val, p, fs, d.plainString)
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
		default:
			return false
		}
		return true
	})
	return keep(s, ok)
}

func (d *decoder) resource(id string, f field, p *fieldPath) *Resource {
	r := &Resource{ID: id, Pos: f.pos}
	ok := d.object(f.val, p, d.sh.resource, func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "name":
			r.Name = d.name(f.val, p)
		case "type":
			r.Type = d.plainString(f.val, p)
		case "uris":
			r.URIs = d.strings(f.val, p, fs, d.plainString)
		case "scopes":
			r.Scopes = d.strings(f.val, p, fs, d.plainString)
		default:
			return false
		}
		return true
	})
	return keep(r, ok)
}

// variant returns the shape of a discriminated struct n: the variant its
// discriminator holds, or, when that is missing or unknown, the shape that
// allows every variant's fields (only the discriminator is then reported).
func variant(n *node, s *shape) *shape {
	for _, f := range n.fields {
		if f.key == s.discriminator && f.val.kind == kindString {
			return s.variant(f.val.str)
		}
	}
	return s.variant("")
}

func (d *decoder) authzPolicy(id string, f field, p *fieldPath) *AuthzPolicy {
	pol := &AuthzPolicy{ID: id, Pos: f.pos}
	if f.val.kind != kindObject {
		d.fail(f.val.pos, p, "must be a struct, got %s", f.val.typeOf())
		return nil
	}
	ok := d.object(f.val, p, variant(f.val, d.sh.policy), func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "name":
			pol.Name = d.name(f.val, p)
		case "description":
			pol.Description = d.description(f.val, p)
		case "logic":
			pol.Logic = d.enum(f.val, p, fs)
		case "type":
			pol.Type = d.enum(f.val, p, fs)
		case "roles":
			pol.Roles = d.strings(f.val, p, fs, d.id)
		case "requireAll":
			pol.RequireAll = d.boolean(f.val, p)
		case "users":
			pol.Users = d.strings(f.val, p, fs, d.userID)
		case "groups":
			pol.Groups = d.strings(f.val, p, fs, d.id)
		case "notBefore":
			pol.NotBefore = d.time(f.val, p)
		case "notOnOrAfter":
			pol.NotOnOrAfter = d.time(f.val, p)
		case "hours":
			h := &HourRange{}
			d.object(f.val, p, fs.shape, func(f field, _ *fieldShape, p *fieldPath) bool {
				switch f.key {
				case "from":
					h.From = d.hour(f.val, p)
				case "to":
					h.To = d.hour(f.val, p)
				default:
					return false
				}
				return true
			})
			pol.Hours = h
		case "weekdays":
			pol.Weekdays = d.strings(f.val, p, fs, func(n *node, p *fieldPath) string { return d.choice(n, p, fs.shape.elem.choices) })
		case "timezone":
			pol.Timezone = d.plainString(f.val, p)
		case "policies":
			pol.Policies = d.strings(f.val, p, fs, d.id)
		case "decisionStrategy":
			pol.DecisionStrategy = d.enum(f.val, p, fs)
		default:
			return false
		}
		return true
	})
	return keep(pol, ok)
}

func (d *decoder) permission(id string, f field, p *fieldPath) *Permission {
	perm := &Permission{ID: id, Pos: f.pos}
	if f.val.kind != kindObject {
		d.fail(f.val.pos, p, "must be a struct, got %s", f.val.typeOf())
		return nil
	}
	ok := d.object(f.val, p, variant(f.val, d.sh.permission), func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
		case "name":
			perm.Name = d.name(f.val, p)
		case "description":
			perm.Description = d.description(f.val, p)
		case "type":
			perm.Type = d.enum(f.val, p, fs)
		case "scopes":
			perm.Scopes = d.strings(f.val, p, fs, d.plainString)
		case "resources":
			perm.Resources = d.strings(f.val, p, fs, d.id)
		case "resourceType":
			perm.ResourceType = d.plainString(f.val, p)
		case "policies":
			perm.Policies = d.strings(f.val, p, fs, d.id)
		case "decisionStrategy":
			perm.DecisionStrategy = d.enum(f.val, p, fs)
		case "logic":
			perm.Logic = d.enum(f.val, p, fs)
		default:
			return false
		}
		return true
	})
	return keep(perm, ok)
}

func (d *decoder) test(name string, f field, p *fieldPath) *Test {
	t := &Test{Name: name, Pos: f.pos}
	ok := d.object(f.val, p, d.sh.test, func(f field, fs *fieldShape, p *fieldPath) bool {
		switch f.key {
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
			t.Expect = d.enum(f.val, p, fs)
		default:
			return false
		}
		return true
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
