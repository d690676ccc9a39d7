package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/charter-policy/charter/schema"
)

// std returns a builder holding the seed roles used across the cases.
func std() *pb {
	return newPB().
		role("User", "documents:read").
		role("Editor", "documents:read +grant", "documents:write").
		role("Admin", "documents +delegate").
		role("Viewer", "reports:view").
		role("NoAllow", "documents:read -allow +grant").
		role("Star", "* +delegate").
		role("Flat", "documents:flat-documents:read").
		role("Upper", "Documents:READ").
		role("DocStar", "documents:*").
		role("Writer", "documents:write +grant").
		role("Deleg", "documents:read +delegate").
		role("org:admin", "org:invoices:create", "org:members").
		group("g1", "bob", "carol").
		group("g2", "dave")
}

// srvBase is a std policy with one enforcing unanimous server over acme.
func srvBase(strategy, mode string) (*pb, *sb) {
	b := std().rec("r", "alice,bob", stmt("Editor", "acme"))
	s := b.srv("S", strategy, mode).res("docs", "document", "acme/docs", "")
	return b, s
}

type specCase struct {
	name string
	p    *schema.PolicySet
	q    Question
	want string // "allow", "deny", "error", or for roles/perms/resources a rendering
	kind string // "" (Decide), "roles", "perms", "resources"
}

func ask(user, resource, action string) Question {
	return Question{User: user, Resource: resource, Action: action}
}

func askRole(user, resource, role string) Question {
	return Question{User: user, Resource: resource, Role: role}
}

func askAssign(user, resource, role string) Question {
	return Question{User: user, Resource: resource, Assign: role}
}

func at(q Question, t string) Question {
	q.Time = mustTime(t)
	return q
}

func inEnv(q Question, env string) Question {
	q.Environment = env
	return q
}

func specCases() []specCase {
	docs := func(role string) *schema.PolicySet { return std().rec("r", "alice", stmt(role, "documents")).p }
	one := func(role, res string) *schema.PolicySet { return std().rec("r", "alice", stmt(role, res)).p }
	cases := []specCase{
		// 2.1 Actions
		{name: "2.1 a permission's action matches itself", p: one("User", "documents"), q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.1 documents matches documents:read", p: docs("Admin"), q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.1 documents matches documents:flat-documents:read", p: docs("Admin"), q: ask("alice", "documents/d1", "documents:flat-documents:read"), want: "allow"},
		{name: "2.1 documents never matches documentsx:read", p: docs("Admin"), q: ask("alice", "documents/d1", "documentsx:read"), want: "deny"},
		{name: "2.1 actions compare case-insensitively (question)", p: docs("User"), q: ask("alice", "documents/d1", "DOCUMENTS:Read"), want: "allow"},
		{name: "2.1 actions compare case-insensitively (role entry)", p: docs("Upper"), q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.1 a trailing * segment says the same: documents:* matches documents:read", p: docs("DocStar"), q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.1 documents:* matches documents itself", p: docs("DocStar"), q: ask("alice", "documents/d1", "documents"), want: "allow"},
		{name: "2.1 documents:* never matches documentsx:read", p: docs("DocStar"), q: ask("alice", "documents/d1", "documentsx:read"), want: "deny"},
		{name: "2.1 * alone matches every action", p: docs("Star"), q: ask("alice", "documents/d1", "billing:refund"), want: "allow"},
		{name: "2.1 an entry matches only below itself: documents:read does not match documents", p: docs("User"), q: ask("alice", "documents/d1", "documents"), want: "deny"},
		{name: "2.1 documents:read does not match documents:write", p: docs("User"), q: ask("alice", "documents/d1", "documents:write"), want: "deny"},
		{name: "2.1 documents:flat-documents:read does not match documents:read", p: docs("Flat"), q: ask("alice", "documents/d1", "documents:read"), want: "deny"},
		{name: "2.1 a check for documents:* is a bad request", p: docs("Admin"), q: ask("alice", "documents/d1", "documents:*"), want: "error"},
		{name: "2.1 a check for * is a bad request", p: docs("Star"), q: ask("alice", "documents/d1", "*"), want: "error"},
		{name: "2.1 a check with an empty segment is a bad request", p: docs("Admin"), q: ask("alice", "documents/d1", "documents::read"), want: "error"},

		// 2.2 Resource URIs
		{name: "2.2 a leading or trailing / is ignored", p: one("User", "documents/d1"), q: ask("alice", "/documents/d1/", "documents:read"), want: "allow"},
		{name: "2.2 a pattern's leading / is ignored", p: one("User", "/documents/"), q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.2 URIs are case-sensitive", p: docs("User"), q: ask("alice", "Documents/d1", "documents:read"), want: "deny"},
		{name: "2.2 empty segments are errors", p: docs("User"), q: ask("alice", "documents//d1", "documents:read"), want: "error"},
		{name: "2.2 an empty URI is an error", p: docs("User"), q: ask("alice", "/", "documents:read"), want: "error"},
		{name: "2.2 a .. segment is an error, never resolved", p: one("User", "documents/d1"), q: ask("alice", "documents/d1/../../secret", "documents:read"), want: "error"},
		{name: "2.2 a trailing .. segment is an error", p: one("User", "documents/d1"), q: ask("alice", "documents/d1/..", "documents:read"), want: "error"},
		{name: "2.2 a . segment is an error", p: docs("User"), q: ask("alice", "documents/./d1", "documents:read"), want: "error"},
		{name: "2.2 a segment of three dots is a name", p: docs("User"), q: ask("alice", "documents/...", "documents:read"), want: "allow"},
		{name: "2.2 the roles U holds on a URI with a .. segment are an error", p: one("Editor", "documents/d1"), q: askRole("alice", "documents/d1/..", "Editor"), want: "error"},
		{name: "2.2 a statement resource covers itself", p: one("User", "documents/d1"), q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.2 documents covers documents/d1/comments/2", p: docs("User"), q: ask("alice", "documents/d1/comments/2", "documents:read"), want: "allow"},
		{name: "2.2 documents never covers documentsx", p: docs("User"), q: ask("alice", "documentsx", "documents:read"), want: "deny"},
		{name: "2.2 a resource does not cover its parent", p: one("User", "documents/d1"), q: ask("alice", "documents", "documents:read"), want: "deny"},
		{name: "2.2 a resource does not cover its sibling", p: one("User", "documents/d1"), q: ask("alice", "documents/d2", "documents:read"), want: "deny"},
		{name: "2.2 organizations/*/invoices covers organizations/acme/invoices/42", p: one("org:admin", "organizations/*/invoices"), q: ask("alice", "organizations/acme/invoices/42", "org:invoices:create"), want: "allow"},
		{name: "2.2 a * segment matches exactly one segment, not none", p: one("org:admin", "organizations/*/invoices"), q: ask("alice", "organizations/invoices", "org:invoices:create"), want: "deny"},
		{name: "2.2 a * segment matches exactly one segment, not two", p: one("org:admin", "organizations/*/invoices"), q: ask("alice", "organizations/a/b/invoices", "org:invoices:create"), want: "deny"},
		{name: "2.2 a * pattern covers only below its last segment", p: one("org:admin", "organizations/*/invoices"), q: ask("alice", "organizations/acme", "org:invoices:create"), want: "deny"},
		{name: "2.2 the pattern * covers everything", p: one("User", "*"), q: ask("alice", "anything/at/all", "documents:read"), want: "allow"},
		{name: "2.2 a checked resource cannot hold a * segment", p: one("User", "*"), q: ask("alice", "documents/*", "documents:read"), want: "error"},

		// 2.3 Subjects of a statement
		{name: "2.3 the record's users are the subjects", p: std().rec("r", "alice", stmt("User", "documents")).p, q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.3 the record's groups are the subjects", p: std().rec("r", "g:g1", stmt("User", "documents")).p, q: ask("bob", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.3 U is in a group when the group lists U", p: std().rec("r", "g:g1", stmt("User", "documents")).p, q: ask("dave", "documents/d1", "documents:read"), want: "deny"},
		{name: "2.3 statement users replace the record's subjects", p: std().rec("r", "alice", stmt("User", "documents", "bob")).p, q: ask("alice", "documents/d1", "documents:read"), want: "deny"},
		{name: "2.3 statement users are the statement's subjects", p: std().rec("r", "alice", stmt("User", "documents", "bob")).p, q: ask("bob", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.3 statement groups replace the record's users", p: std().rec("r", "alice", stmt("User", "documents", "g:g2")).p, q: ask("alice", "documents/d1", "documents:read"), want: "deny"},
		{name: "2.3 statement groups are the statement's subjects", p: std().rec("r", "alice", stmt("User", "documents", "g:g2")).p, q: ask("dave", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.3 a statement without subjects uses the record's, beside one with its own", p: std().rec("r", "alice", stmt("User", "documents", "bob"), stmt("Editor", "reports")).p, q: ask("alice", "reports/q1", "documents:write"), want: "allow"},
		{name: "2.3 a user of no subject gets nothing", p: docs("Star"), q: ask("mallory", "documents/d1", "documents:read"), want: "deny"},
		{name: "2.3 user IDs are exact (case-sensitive)", p: docs("User"), q: ask("Alice", "documents/d1", "documents:read"), want: "deny"},

		// 2.4 The record layer
		{name: "2.4 allowed when a statement applies, covers R and names a role with a matching allow entry", p: docs("Editor"), q: ask("alice", "documents/d1", "documents:write"), want: "allow"},
		{name: "2.4 an entry with allow: false does not allow", p: docs("NoAllow"), q: ask("alice", "documents/d1", "documents:read"), want: "deny"},
		{name: "2.4 a role without a matching entry does not allow", p: docs("Viewer"), q: ask("alice", "documents/d1", "documents:read"), want: "deny"},
		{name: "2.4 any role named by the statement may allow", p: std().rec("r", "alice", stmt("Viewer,User", "documents")).p, q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.4 any statement may allow: the second covers R", p: std().rec("r", "alice", stmt("Editor", "reports"), stmt("User", "documents")).p, q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.4 a statement that does not cover R does not allow", p: std().rec("r", "alice", stmt("Editor", "reports")).p, q: ask("alice", "documents/d1", "documents:write"), want: "deny"},
		{name: "2.4 allow from another entry of the same action when one says allow: false", p: std().rec("r", "alice", stmt("NoAllow,User", "documents")).p, q: ask("alice", "documents/d1", "documents:read"), want: "allow"},
		{name: "2.4 a group statement allows a member", p: std().rec("r", "g:g1", stmt("Editor", "documents/d1")).p, q: ask("carol", "documents/d1/x", "documents:write"), want: "allow"},
		{name: "2.4 the roles U holds on R: a role of a covering statement", p: docs("User"), q: askRole("alice", "documents/d1", "User"), want: "allow"},
		{name: "2.4 the roles U holds on R: held on a descendant of the statement resource", p: one("Editor", "documents/d1"), q: askRole("alice", "documents/d1/comments/2", "Editor"), want: "allow"},
		{name: "2.4 the roles U holds on R: not held on a sibling", p: one("Editor", "documents/d1"), q: askRole("alice", "documents/d2", "Editor"), want: "deny"},
		{name: "2.4 the roles U holds on R: a role with no allow entry is still held", p: docs("NoAllow"), q: askRole("alice", "documents", "NoAllow"), want: "allow"},
		{name: "2.4 a role question about an unknown role is a bad request", p: docs("User"), q: askRole("alice", "documents", "Ghost"), want: "error"},
		{name: "2.4 the roles U holds on R: all statements, user and group", p: std().rec("r", "bob", stmt("User", "documents")).rec("s", "g:g1", stmt("Editor", "documents/d1")).p, q: Question{User: "bob", Resource: "documents/d1"}, kind: "roles", want: "Editor User"},
		{name: "2.4 the entries U holds on R are merged per action with allow/grant/delegate OR-ed", p: std().rec("r", "alice", stmt("User,NoAllow,Editor", "documents")).p, q: Question{User: "alice", Resource: "documents/d1"}, kind: "perms", want: "documents:read=agd? documents:read:allow,grant documents:write:allow"},
		{name: "2.4 an entry is listed as its role declares it (SPEC 5): documents:* stays documents:*", p: docs("DocStar"), q: Question{User: "alice", Resource: "documents/d1"}, kind: "perms", want: "declared? documents:*:allow"},
		{name: "2.4 an entry is listed as its role declares it (SPEC 5): Documents:READ keeps its case", p: docs("Upper"), q: Question{User: "alice", Resource: "documents/d1"}, kind: "perms", want: "declared? Documents:READ:allow"},
		{name: "2.4 two spellings of one action merge under the smallest declared one: documents before documents:*", p: std().rec("r", "alice", stmt("DocStar,Admin", "documents")).p, q: Question{User: "alice", Resource: "documents/d1"}, kind: "perms", want: "merged? documents:allow,delegate"},
		{name: "2.4 two spellings of one action merge under the smallest declared one: Documents:READ before documents:read", p: std().rec("r", "alice", stmt("User,Upper,Editor", "documents")).p, q: Question{User: "alice", Resource: "documents/d1"}, kind: "perms", want: "merged? Documents:READ:allow,grant documents:write:allow"},
		{name: "2.4 entries are sorted by the action they stand for, not by their spelling", p: std().role("Shout", "Reports:VIEW").rec("r", "alice", stmt("Shout,Upper,Writer", "documents")).p, q: Question{User: "alice", Resource: "documents/d1"}, kind: "perms", want: "sorted? Documents:READ:allow documents:write:allow,grant Reports:VIEW:allow"},

		// 2.5 Grant and delegate
		{name: "2.5 an Editor (documents:read with grant) may assign User", p: docs("Editor"), q: askAssign("alice", "documents/d1", "User"), want: "allow"},
		{name: "2.5 an Editor may not assign Editor: it carries a grant", p: docs("Editor"), q: askAssign("alice", "documents/d1", "Editor"), want: "deny"},
		{name: "2.5 an Admin (delegate) may hand on Editor", p: docs("Admin"), q: askAssign("alice", "documents/d1", "Editor"), want: "allow"},
		{name: "2.5 an Admin may hand on Admin", p: docs("Admin"), q: askAssign("alice", "documents/d1", "Admin"), want: "allow"},
		{name: "2.5 a User may not assign User: no grant", p: docs("User"), q: askAssign("alice", "documents/d1", "User"), want: "deny"},
		{name: "2.5 documents:read does not cover documents", p: docs("Deleg"), q: askAssign("alice", "documents/d1", "DocStar"), want: "deny"},
		{name: "2.5 documents covers documents:*", p: docs("Admin"), q: askAssign("alice", "documents/d1", "DocStar"), want: "allow"},
		{name: "2.5 * covers every action", p: docs("Star"), q: askAssign("alice", "documents/d1", "org:admin"), want: "allow"},
		{name: "2.5 grant: true counts even when allow is false", p: docs("NoAllow"), q: askAssign("alice", "documents/d1", "User"), want: "allow"},
		{name: "2.5 an entry with delegate needs delegate, grant is not enough", p: docs("Editor"), q: askAssign("alice", "documents/d1", "Deleg"), want: "deny"},
		{name: "2.5 delegate suffices for an entry without grant", p: docs("Deleg"), q: askAssign("alice", "documents/d1", "User"), want: "allow"},
		{name: "2.5 every entry of X must be covered: Editor has grant on read only", p: docs("Editor"), q: askAssign("alice", "documents/d1", "Editor"), want: "deny"},
		{name: "2.5 entries held through several statements combine", p: std().rec("r", "alice", stmt("Editor", "documents"), stmt("Writer", "documents/d1")).p, q: askAssign("alice", "documents/d1", "Editor"), want: "deny"},
		{name: "2.5 entries held through several statements combine (grant on both actions)", p: std().rec("r", "alice", stmt("Editor", "documents"), stmt("Writer", "documents/d1")).p, q: askAssign("alice", "documents/d1", "User"), want: "allow"},
		{name: "2.5 the entries are those held on R: not on a sibling", p: one("Editor", "documents/d1"), q: askAssign("alice", "documents/d2", "User"), want: "deny"},
		{name: "2.5 the entries are those held on R: held on a descendant", p: one("Editor", "documents"), q: askAssign("alice", "documents/d1", "User"), want: "allow"},
		{name: "2.5 assigning an unknown role is a bad request", p: docs("Admin"), q: askAssign("alice", "documents/d1", "Ghost"), want: "error"},

		// 2.6 The resource-server layer
		{name: "2.6 a server governs R when a resource's pattern covers R; its permissions decide", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "alice")).scopePerm("p", "documents:read", "", "u", "", "")
			return b.p
		}(), q: ask("alice", "acme/docs/1", "documents:read"), want: "allow"},
		{name: "2.6 an enforcing server overrides what records would allow", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "zed")).scopePerm("p", "documents:write", "", "u", "", "")
			return b.p
		}(), q: ask("alice", "acme/docs/1", "documents:write"), want: "deny"},
		{name: "2.6 otherwise the record layer decides", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "zed")).scopePerm("p", "documents:write", "", "u", "", "")
			return b.p
		}(), q: ask("alice", "acme/other", "documents:write"), want: "allow"},
		{name: "2.6 a resource-based permission applies when it lists a match", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "bob")).resPerm("p", "docs", "", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/9", "anything:else"), want: "allow"},
		{name: "2.6 a resource-based permission applies by resourceType", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "bob")).resPerm("p", "", "document", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/9", "documents:read"), want: "allow"},
		{name: "2.6 a resource-based permission does not apply when the resource's scopes lack A", p: func() *schema.PolicySet {
			b := std()
			b.srv("S", "", "").res("docs", "document", "acme/docs", "documents:read").pol(userPol("u", "bob")).resPerm("p", "docs", "", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/9", "documents:write"), want: "deny"},
		{name: "2.6 a resource-based permission applies when the resource's scopes contain A", p: func() *schema.PolicySet {
			b := std()
			b.srv("S", "", "").res("docs", "document", "acme/docs", "documents:read").pol(userPol("u", "bob")).resPerm("p", "docs", "", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/9", "documents:read"), want: "allow"},
		{name: "2.6 a resource-based permission listing another resource does not apply", p: func() *schema.PolicySet {
			b, s := srvBase("", "permissive")
			s.res("other", "", "acme/other", "").pol(userPol("u", "zed")).resPerm("p", "other", "", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/9", "documents:read"), want: "allow"},
		{name: "2.6 a scope-based permission applies when its scopes contain A", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "bob")).scopePerm("p", "documents:read,documents:write", "", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/1", "documents:write"), want: "allow"},
		{name: "2.6 a scope-based permission does not apply to another action", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "bob")).scopePerm("p", "documents:read", "", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/1", "documents:write"), want: "deny"},
		{name: "2.6 a scope-based permission applies when its resources list a match", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "bob")).scopePerm("p", "documents:read", "docs", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/1", "documents:read"), want: "allow"},
		{name: "2.6 a scope-based permission whose resources list no match does not apply", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.res("other", "", "acme/other", "").pol(userPol("u", "bob")).scopePerm("p", "documents:read", "other", "u", "", "")
			return b.p
		}(), q: ask("bob", "acme/docs/1", "documents:read"), want: "deny"},
		{name: "2.6 a role policy grants when U holds any of the roles on R through the record layer", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(rolePol("r", "Admin,Editor", false)).scopePerm("p", "documents:read", "", "r", "", "")
			return b.p
		}(), q: ask("alice", "acme/docs/1", "documents:read"), want: "allow"},
		{name: "2.6 a role policy denies when U holds none of the roles", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(rolePol("r", "Admin", false)).scopePerm("p", "documents:read", "", "r", "", "")
			return b.p
		}(), q: ask("alice", "acme/docs/1", "documents:read"), want: "deny"},
		{name: "2.6 a role policy with requireAll denies when one role is missing", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(rolePol("r", "Editor,Viewer", true)).scopePerm("p", "documents:read", "", "r", "", "")
			return b.p
		}(), q: ask("alice", "acme/docs/1", "documents:read"), want: "deny"},
		{name: "2.6 a role policy with requireAll grants when U holds all", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			b.rec("r2", "alice", stmt("Viewer", "acme/docs"))
			s.pol(rolePol("r", "Editor,Viewer", true)).scopePerm("p", "documents:read", "", "r", "", "")
			return b.p
		}(), q: ask("alice", "acme/docs/1", "documents:read"), want: "allow"},
		{name: "2.6 a user policy grants when U is listed", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(userPol("u", "x,carol")).scopePerm("p", "documents:read", "", "u", "", "")
			return b.p
		}(), q: ask("carol", "acme/docs/1", "documents:read"), want: "allow"},
		{name: "2.6 a group policy grants when U is in a listed group", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(groupPol("g", "g2,g1")).scopePerm("p", "documents:read", "", "g", "", "")
			return b.p
		}(), q: ask("carol", "acme/docs/1", "documents:read"), want: "allow"},
		{name: "2.6 a group policy denies when U is in no listed group", p: func() *schema.PolicySet {
			b, s := srvBase("", "")
			s.pol(groupPol("g", "g2")).scopePerm("p", "documents:read", "", "g", "", "")
			return b.p
		}(), q: ask("carol", "acme/docs/1", "documents:read"), want: "deny"},
	}
	timeCase := func(name string, p *schema.AuthzPolicy, t, want string) specCase {
		b, s := srvBase("", "")
		s.pol(p).scopePerm("p", "documents:read", "", p.ID, "", "")
		return specCase{name: name, p: b.p, q: at(ask("zed", "acme/docs/1", "documents:read"), t), want: want}
	}
	tp := func(f func(p *schema.AuthzPolicy)) *schema.AuthzPolicy {
		p := &schema.AuthzPolicy{ID: "t", Type: schema.PolicyTime}
		f(p)
		return p
	}
	cases = append(cases,
		timeCase("2.6 time: notBefore ≤ T, T before notBefore denies", tp(func(p *schema.AuthzPolicy) { p.NotBefore = ptime("2026-03-01T00:00:00Z") }), "2026-02-28T23:59:59Z", "deny"),
		timeCase("2.6 time: notBefore ≤ T, T equal to notBefore grants", tp(func(p *schema.AuthzPolicy) { p.NotBefore = ptime("2026-03-01T00:00:00Z") }), "2026-03-01T00:00:00Z", "allow"),
		timeCase("2.6 time: T < notOnOrAfter, T equal to notOnOrAfter denies", tp(func(p *schema.AuthzPolicy) { p.NotOnOrAfter = ptime("2026-03-01T00:00:00Z") }), "2026-03-01T00:00:00Z", "deny"),
		timeCase("2.6 time: T < notOnOrAfter, T just before grants", tp(func(p *schema.AuthzPolicy) { p.NotOnOrAfter = ptime("2026-03-01T00:00:00Z") }), "2026-02-28T23:59:59Z", "allow"),
		timeCase("2.6 time: T's hour in timezone lies in [from, to] (inclusive to)", tp(func(p *schema.AuthzPolicy) {
			p.Hours, p.Timezone = &schema.HourRange{From: 9, To: 17}, "Europe/Berlin"
		}), "2026-01-15T16:30:00Z", "allow"),
		timeCase("2.6 time: T's hour in timezone outside [from, to] denies", tp(func(p *schema.AuthzPolicy) {
			p.Hours, p.Timezone = &schema.HourRange{From: 9, To: 17}, "Europe/Berlin"
		}), "2026-01-15T17:30:00Z", "deny"),
		timeCase("2.6 time: hours wrap past midnight when from > to (inside)", tp(func(p *schema.AuthzPolicy) { p.Hours = &schema.HourRange{From: 22, To: 6} }), "2026-01-15T02:00:00Z", "allow"),
		timeCase("2.6 time: hours wrap past midnight when from > to (outside)", tp(func(p *schema.AuthzPolicy) { p.Hours = &schema.HourRange{From: 22, To: 6} }), "2026-01-15T12:00:00Z", "deny"),
		timeCase("2.6 time: T's weekday in timezone is listed", tp(func(p *schema.AuthzPolicy) {
			p.Weekdays, p.Timezone = []string{"sun"}, "Asia/Tokyo"
		}), "2026-01-17T23:30:00Z", "allow"), // Saturday in UTC, Sunday in Tokyo
		timeCase("2.6 time: T's weekday in timezone not listed denies", tp(func(p *schema.AuthzPolicy) {
			p.Weekdays, p.Timezone = []string{"sat"}, "Asia/Tokyo"
		}), "2026-01-17T23:30:00Z", "deny"),
		timeCase("2.6 time: every bound given must pass", tp(func(p *schema.AuthzPolicy) {
			p.NotBefore, p.Hours = ptime("2026-01-01T00:00:00Z"), &schema.HourRange{From: 8, To: 9}
		}), "2026-01-15T10:00:00Z", "deny"),
	)
	serverCase := func(name string, build func(s *sb), q Question, want string, strategy, mode string) specCase {
		b, s := srvBase(strategy, mode)
		s.pol(userPol("yes", "alice")).pol(userPol("no", "nobody"))
		build(s)
		return specCase{name: name, p: b.p, q: q, want: want}
	}
	read := ask("alice", "acme/docs/1", "documents:read")
	cases = append(cases,
		serverCase("2.6 aggregate: unanimous needs all its policies", func(s *sb) {
			s.pol(aggPol("a", "unanimous", "yes,no")).scopePerm("p", "documents:read", "", "a", "", "")
		}, read, "deny", "", ""),
		serverCase("2.6 aggregate: affirmative needs one", func(s *sb) {
			s.pol(aggPol("a", "affirmative", "yes,no")).scopePerm("p", "documents:read", "", "a", "", "")
		}, read, "allow", "", ""),
		serverCase("2.6 aggregate: consensus tie denies", func(s *sb) {
			s.pol(aggPol("a", "consensus", "yes,no")).scopePerm("p", "documents:read", "", "a", "", "")
		}, read, "deny", "", ""),
		serverCase("2.6 aggregate: nested aggregates combine", func(s *sb) {
			s.pol(aggPol("a", "affirmative", "no,no")).pol(neg(aggPol("b", "unanimous", "a"))).scopePerm("p", "documents:read", "", "b", "", "")
		}, read, "allow", "", ""),
		serverCase("2.6 logic negative inverts a policy", func(s *sb) {
			s.pol(neg(userPol("notyes", "alice"))).scopePerm("p", "documents:read", "", "notyes", "", "")
		}, read, "deny", "", ""),
		serverCase("2.6 logic negative inverts a denying policy to grant", func(s *sb) {
			s.pol(neg(userPol("notno", "nobody"))).scopePerm("p", "documents:read", "", "notno", "", "")
		}, read, "allow", "", ""),
		serverCase("2.6 permission affirmative: at least one policy grants", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "no,yes", "affirmative", "")
		}, read, "allow", "", ""),
		serverCase("2.6 permission unanimous: all must grant", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "yes,no", "unanimous", "")
		}, read, "deny", "", ""),
		serverCase("2.6 permission consensus: more grant than deny", func(s *sb) {
			s.pol(userPol("yes2", "alice")).scopePerm("p", "documents:read", "", "yes,yes2,no", "consensus", "")
		}, read, "allow", "", ""),
		serverCase("2.6 permission consensus: a tie denies (2 grant / 2 deny)", func(s *sb) {
			s.pol(userPol("yes2", "alice")).pol(userPol("no2", "x")).scopePerm("p", "documents:read", "", "yes,yes2,no,no2", "consensus", "")
		}, read, "deny", "", ""),
		serverCase("2.6 a permission with no policies denies", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "", "", "")
		}, read, "deny", "", ""),
		serverCase("2.6 a permission's logic then applies: no policies, negative grants", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "", "", "negative")
		}, read, "allow", "", ""),
		serverCase("2.6 a permission's negative logic inverts a grant", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "yes", "", "negative")
		}, read, "deny", "", ""),
		serverCase("2.6 disabled: allow, whatever the permissions say", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "no", "", "")
		}, read, "allow", "", "disabled"),
		serverCase("2.6 no applicable permission: enforcing denies", func(s *sb) {
			s.scopePerm("p", "documents:write", "", "yes", "", "")
		}, read, "deny", "", "enforcing"),
		serverCase("2.6 no applicable permission: permissive allows", func(s *sb) {
			s.scopePerm("p", "documents:write", "", "no", "", "")
		}, ask("nobody", "acme/docs/1", "documents:read"), "allow", "", "permissive"),
		serverCase("2.6 permissive still denies when an applicable permission denies", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "no", "", "")
		}, read, "deny", "", "permissive"),
		serverCase("2.6 server unanimous: all applicable permissions must grant", func(s *sb) {
			s.scopePerm("p1", "documents:read", "", "yes", "", "").scopePerm("p2", "documents:read", "", "no", "", "")
		}, read, "deny", "unanimous", ""),
		serverCase("2.6 server affirmative: at least one applicable permission grants", func(s *sb) {
			s.scopePerm("p1", "documents:read", "", "yes", "", "").scopePerm("p2", "documents:read", "", "no", "", "")
		}, read, "allow", "affirmative", ""),
		serverCase("2.6 a wildcard resource pattern governs", func(s *sb) {
			s.res("wild", "", "acme/*/files", "").scopePerm("p", "documents:read", "wild", "no", "", "")
		}, ask("alice", "acme/x/files/1", "documents:read"), "deny", "", ""),
		serverCase("2.6 a server whose patterns do not cover R does not govern", func(s *sb) {
			s.scopePerm("p", "documents:read", "", "no", "", "")
		}, ask("alice", "acme/docsx", "documents:read"), "allow", "", ""),
		serverCase("2.6 a time policy without a question time is evaluated now", func(s *sb) {
			s.pol(&schema.AuthzPolicy{ID: "t", Type: schema.PolicyTime, NotBefore: ptime("2000-01-01T00:00:00Z")}).scopePerm("p", "documents:read", "", "t", "", "")
		}, ask("zed", "acme/docs/1", "documents:read"), "allow", "", ""),
	)
	twoServers := func(secondUsers string) *schema.PolicySet {
		b, s := srvBase("", "")
		s.pol(userPol("u", "alice")).scopePerm("p", "documents:read", "", "u", "", "")
		b.srv("T", "", "").res("all", "", "acme", "").pol(userPol("u", secondUsers)).scopePerm("p", "documents:read", "", "u", "", "")
		return b.p
	}
	cases = append(cases,
		specCase{name: "2.6 when several servers govern R, all must allow (one denies)", p: twoServers("bob"), q: read, want: "deny"},
		specCase{name: "2.6 when several servers govern R, all must allow (both allow)", p: twoServers("alice"), q: read, want: "allow"},
		specCase{name: "2.6 a role policy reads roles held on R, not elsewhere", p: func() *schema.PolicySet {
			b := std().rec("r", "alice", stmt("Editor", "acme/docs/2"))
			b.srv("S", "", "").res("docs", "", "acme/docs", "").pol(rolePol("r", "Editor", false)).scopePerm("p", "documents:read", "", "r", "", "")
			return b.p
		}(), q: ask("alice", "acme/docs/1", "documents:read"), want: "deny"},
	)

	// 2.7 Environments
	envP := std().recEnv("prod", "production", "alice", stmt("Editor", "documents")).recEnv("stg", "staging", "bob", stmt("Editor", "documents")).rec("any", "carol", stmt("User", "documents")).p
	cases = append(cases,
		specCase{name: "2.7 an environment excludes records tagged with another value", p: envP, q: inEnv(ask("bob", "documents/d1", "documents:read"), "production"), want: "deny"},
		specCase{name: "2.7 records tagged with the question's environment apply", p: envP, q: inEnv(ask("alice", "documents/d1", "documents:write"), "production"), want: "allow"},
		specCase{name: "2.7 records without an environment apply everywhere", p: envP, q: inEnv(ask("carol", "documents/d1", "documents:read"), "production"), want: "allow"},
		specCase{name: "2.7 a question without an environment excludes nothing", p: envP, q: ask("bob", "documents/d1", "documents:write"), want: "allow"},
		specCase{name: "2.7 roles held exclude other environments", p: envP, q: inEnv(askRole("bob", "documents/d1", "Editor"), "production"), want: "deny"},
		specCase{name: "2.7 assignable excludes other environments", p: envP, q: inEnv(askAssign("bob", "documents/d1", "User"), "production"), want: "deny"},
		specCase{name: "2.7 role policies see only records of the environment", p: func() *schema.PolicySet {
			b := std().recEnv("stg", "staging", "alice", stmt("Editor", "acme"))
			b.srv("S", "", "").res("docs", "", "acme/docs", "").pol(rolePol("r", "Editor", false)).scopePerm("p", "documents:read", "", "r", "", "")
			return b.p
		}(), q: inEnv(ask("alice", "acme/docs/1", "documents:read"), "production"), want: "deny"},
	)

	// Resource listing (section 5, resources route) and Clerk-style questions.
	list := std().rec("r", "alice", stmt("User", "documents/d1,documents/d2,documentsx/d3,reports/r1"), stmt("Editor", "documents/d4/sub")).rec("g", "g:g1", stmt("User", "documents/d5")).p
	cases = append(cases,
		specCase{name: "resources: statement resources under the collection on which U is allowed A", p: list, q: Question{User: "alice", Resource: "documents", Action: "documents:read"}, kind: "resources", want: "documents/d1 documents/d2 documents/d4/sub all=false"},
		specCase{name: "resources: accessToAllSubResources when U is allowed A on the collection", p: std().rec("r", "alice", stmt("Admin", "documents"), stmt("User", "documents/d7")).p, q: Question{User: "alice", Resource: "documents", Action: "documents:read"}, kind: "resources", want: "documents documents/d7 all=true"},
		specCase{name: "resources: through a group", p: list, q: Question{User: "bob", Resource: "documents", Action: "documents:read"}, kind: "resources", want: "documents/d5 all=false"},
		specCase{name: "resources: only resources on which A is allowed", p: list, q: Question{User: "alice", Resource: "documents", Action: "documents:write"}, kind: "resources", want: "documents/d4/sub all=false"},
		specCase{name: "clerk has({role: org:admin}) on an organization", p: one("org:admin", "organizations/acme"), q: askRole("alice", "organizations/acme", "org:admin"), want: "allow"},
		specCase{name: "clerk has({permission: org:invoices:create}) on an organization", p: one("org:admin", "organizations/acme"), q: ask("alice", "organizations/acme", "org:invoices:create"), want: "allow"},
		specCase{name: "clerk has({permission}) is per organization", p: one("org:admin", "organizations/acme"), q: ask("alice", "organizations/globex", "org:invoices:create"), want: "deny"},
	)
	return cases
}

func TestSpec(t *testing.T) {
	cases := specCases()
	if len(cases) < 80 {
		t.Fatalf("only %d cases", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			s, err := Build(c.p, "rev1")
			if err != nil {
				t.Fatal(err)
			}
			got := answer(t, s, c)
			want := c.want
			if c.kind == "perms" {
				want = want[strings.Index(want, "? ")+2:]
			}
			if got != want {
				d, _ := s.Explain(c.q)
				var b strings.Builder
				_ = WriteTrace(&b, "  ", d.Trace)
				t.Errorf("got %s, want %s\n%s", got, want, b.String())
			}
			// The reference evaluator agrees on every case.
			if ref := refAnswer(c.p, c.q, c.kind); ref != got {
				t.Errorf("reference evaluator says %s, engine %s", ref, got)
			}
		})
	}
}

// answer asks the snapshot the case's question and renders the answer.
func answer(t *testing.T, s *Snapshot, c specCase) string {
	t.Helper()
	if out, ok := listAnswer(s, c); ok {
		return out
	}
	d, err := s.Decide(c.q)
	if err != nil {
		var qe *QuestionError
		if !errors.As(err, &qe) {
			t.Errorf("error %v is not a *QuestionError", err)
		}
		return "error"
	}
	if d.Revision != "rev1" {
		t.Errorf("2.8 every decision is reported with the revision: got %q", d.Revision)
	}
	// Explain gives the same answer as Decide, and Check as well.
	ex, err := s.Explain(c.q)
	if err != nil || ex.Allowed != d.Allowed || len(ex.Trace) == 0 {
		t.Errorf("Explain = %+v, %v; Decide = %+v", ex, err, d)
	}
	if c.q.Action != "" {
		ch, err := s.Check(c.q)
		if err != nil || ch.Allowed != d.Allowed {
			t.Errorf("Check = %+v, %v; Decide = %+v", ch, err, d)
		}
	}
	return allowDeny(d.Allowed)
}

// listAnswer renders the answer to a roles, perms or resources case; ok is
// false for a case that asks for a decision.
func listAnswer(s *Snapshot, c specCase) (out string, ok bool) {
	var err error
	switch c.kind {
	case "roles":
		var roles []string
		roles, err = s.Roles(c.q.User, c.q.Resource, c.q.Environment)
		out = strings.Join(roles, " ")
	case "perms":
		var entries []Entry
		entries, err = s.Permissions(c.q.User, c.q.Resource, c.q.Environment)
		out = renderEntries(entries)
	case "resources":
		// Paged through, 1 to 3 at a time: the pages together must be the
		// whole listing.
		limit := 1 + len(c.q.User+c.q.Resource+c.q.Action)%3
		q := ResourceQuery{User: c.q.User, Action: c.q.Action, Collection: c.q.Resource, Environment: c.q.Environment, Time: c.q.Time}
		var l ResourceList
		l, err = listAll(s, q, limit)
		out = renderList(l)
	default:
		return "", false
	}
	if err != nil {
		return "error", true
	}
	return out, true
}

// listAll asks for every page of a listing, limit at a time, and returns
// them joined; it fails when a page breaks the paging rules: at most limit
// resources, exactly limit when a cursor follows, each page sorted after
// the one before, the same accessToAllSubResources on every page.
func listAll(s *Snapshot, q ResourceQuery, limit int) (ResourceList, error) {
	q.Limit = limit
	var all ResourceList
	for page := 0; ; page++ {
		l, err := s.Resources(q)
		if err != nil {
			return ResourceList{}, err
		}
		switch {
		case len(l.Resources) > limit || (l.Cursor != "" && len(l.Resources) != limit):
			return ResourceList{}, fmt.Errorf("page %d: %d resources and cursor %q with limit %d", page, len(l.Resources), l.Cursor, limit)
		case page > 0 && l.AccessToAllSubResources != all.AccessToAllSubResources:
			return ResourceList{}, fmt.Errorf("page %d: accessToAllSubResources changed", page)
		case page > 0 && len(l.Resources) == 0:
			return ResourceList{}, fmt.Errorf("page %d: empty page after a cursor", page)
		}
		for _, r := range l.Resources {
			if n := len(all.Resources); n > 0 && all.Resources[n-1] >= r {
				return ResourceList{}, fmt.Errorf("page %d: %q after %q", page, r, all.Resources[n-1])
			}
			all.Resources = append(all.Resources, r)
		}
		all.AccessToAllSubResources, all.Revision = l.AccessToAllSubResources, l.Revision
		if l.Cursor == "" {
			return all, nil
		}
		if page > len(all.Resources) {
			return ResourceList{}, errors.New("paging does not end")
		}
		q.Cursor = l.Cursor
	}
}

func renderEntries(entries []Entry) string {
	var parts []string
	for _, e := range entries {
		var flags []string
		if e.Allow {
			flags = append(flags, "allow")
		}
		if e.Grant {
			flags = append(flags, "grant")
		}
		if e.Delegate {
			flags = append(flags, "delegate")
		}
		parts = append(parts, e.Action+":"+strings.Join(flags, ","))
	}
	return strings.Join(parts, " ")
}

func renderList(l ResourceList) string {
	return strings.TrimSpace(strings.Join(l.Resources, " ") + " all=" + map[bool]string{true: "true", false: "false"}[l.AccessToAllSubResources])
}

func TestSpecCaseNamesCiteSection(t *testing.T) {
	for _, c := range specCases() {
		if !slices.ContainsFunc([]string{"2.1 ", "2.2 ", "2.3 ", "2.4 ", "2.5 ", "2.6 ", "2.7 ", "resources: ", "clerk "}, func(p string) bool { return strings.HasPrefix(c.name, p) }) {
			t.Errorf("case %q cites no section", c.name)
		}
	}
}
