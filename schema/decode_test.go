package schema

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// differentialSamples are policy documents in JSON, which is also CUE. Each
// is evaluated by CUE against the schema and decoded by the Go validator;
// the two must agree on the verdict and on the fields in error.
var differentialSamples = []struct {
	name string
	doc  string
}{
	{"valid everything", `{
		"roles": {"Admin": {"name": "Admin", "description": "all", "tags": {"team": "core"},
			"permissions": [{"action": "*", "allow": true, "grant": true, "delegate": true}, {"action": "x", "allow": false}]}},
		"groups": {"g": {"name": "G", "users": ["ann", "bob@example.com"], "tags": {}}},
		"records": {"r": {"name": "R", "users": ["ann"], "groups": ["g"], "tags": {"environment": "production"},
			"statements": [{"roles": ["Admin"], "resources": ["documents", "orgs/*/x"], "users": ["bob"], "groups": ["g"]}]}},
		"resourceServers": {"s": {"name": "S", "decisionStrategy": "affirmative", "enforcementMode": "permissive",
			"scopes": ["read"],
			"resources": {"res": {"name": "Res", "type": "t", "uris": ["acme"], "scopes": ["read"]}},
			"policies": {
				"role": {"name": "R", "type": "role", "roles": ["Admin"], "requireAll": true, "logic": "negative"},
				"user": {"name": "U", "type": "user", "users": ["ann"]},
				"group": {"name": "G", "type": "group", "groups": ["g"]},
				"time": {"name": "T", "type": "time", "notBefore": "2026-01-01T00:00:00Z", "notOnOrAfter": "2027-01-01T00:00:00+01:00",
					"hours": {"from": 22, "to": 6}, "weekdays": ["mon", "sun"], "timezone": "Europe/Berlin"},
				"agg": {"name": "A", "type": "aggregate", "policies": ["user", "group"], "decisionStrategy": "consensus"}},
			"permissions": {
				"p1": {"name": "P1", "type": "scope", "scopes": ["read"], "resources": ["res"], "policies": ["agg"], "decisionStrategy": "consensus", "logic": "negative"},
				"p2": {"name": "P2", "type": "resource", "resources": ["res"], "resourceType": "t", "policies": []}}}},
		"tests": {"t": {"user": "ann", "resource": "documents", "action": "documents:read", "time": "2026-05-01T10:00:00Z", "environment": "production", "expect": "allow"}}
	}`},
	{"valid empty", `{}`},
	{"valid defaults only", `{"roles": {"U": {"name": "U", "permissions": [{"action": "a"}]}}}`},
	{"unknown top-level field", `{"rolez": {}}`},
	{"roles not a struct", `{"roles": []}`},
	{"role missing name", `{"roles": {"U": {"permissions": [{"action": "a"}]}}}`},
	{"role missing permissions", `{"roles": {"U": {"name": "U"}}}`},
	{"role empty permissions", `{"roles": {"U": {"name": "U", "permissions": []}}}`},
	{"role name a number", `{"roles": {"U": {"name": 7, "permissions": [{"action": "a"}]}}}`},
	{"role name empty", `{"roles": {"U": {"name": "", "permissions": [{"action": "a"}]}}}`},
	{"role name 151 runes", `{"roles": {"U": {"name": "` + strings.Repeat("é", 151) + `", "permissions": [{"action": "a"}]}}}`},
	{"role name 150 runes", `{"roles": {"U": {"name": "` + strings.Repeat("é", 150) + `", "permissions": [{"action": "a"}]}}}`},
	{"description 1001", `{"roles": {"U": {"name": "U", "description": "` + strings.Repeat("d", 1001) + `", "permissions": [{"action": "a"}]}}}`},
	{"description 1000", `{"roles": {"U": {"name": "U", "description": "` + strings.Repeat("d", 1000) + `", "permissions": [{"action": "a"}]}}}`},
	{"tag not a string", `{"roles": {"U": {"name": "U", "tags": {"env": 1}, "permissions": [{"action": "a"}]}}}`},
	{"action not a string", `{"roles": {"U": {"name": "U", "permissions": [{"action": ["a"]}]}}}`},
	{"permission missing action", `{"roles": {"U": {"name": "U", "permissions": [{"allow": true}]}}}`},
	{"allow not a bool", `{"roles": {"U": {"name": "U", "permissions": [{"action": "a", "allow": "yes"}]}}}`},
	{"permission unknown field", `{"roles": {"U": {"name": "U", "permissions": [{"action": "a", "level": 1}]}}}`},
	{"group users not a list", `{"groups": {"g": {"name": "G", "users": "ann"}}}`},
	{"valid group without users (an open list defaults to empty)", `{"groups": {"g": {"name": "G"}}}`},
	{"user ID with a control character", `{"groups": {"g": {"name": "G", "users": ["a\u0001b"]}}}`},
	{"user ID empty", `{"groups": {"g": {"name": "G", "users": [""]}}}`},
	{"user ID 257 characters", `{"groups": {"g": {"name": "G", "users": ["` + strings.Repeat("u", 257) + `"]}}}`},
	{"user ID 256 characters", `{"groups": {"g": {"name": "G", "users": ["` + strings.Repeat("u", 256) + `"]}}}`},
	{"record statements empty", `{"records": {"r": {"name": "R", "users": ["a"], "statements": []}}}`},
	{"record missing statements", `{"records": {"r": {"name": "R", "users": ["a"]}}}`},
	{"statement roles empty", `{"records": {"r": {"name": "R", "users": ["a"], "statements": [{"roles": [], "resources": ["x"]}]}}}`},
	{"statement role bad ID", `{"records": {"r": {"name": "R", "users": ["a"], "statements": [{"roles": ["bad id"], "resources": ["x"]}]}}}`},
	{"statement resources missing", `{"records": {"r": {"name": "R", "users": ["a"], "statements": [{"roles": ["R"]}]}}}`},
	{"statement resource not a string", `{"records": {"r": {"name": "R", "users": ["a"], "statements": [{"roles": ["R"], "resources": [1]}]}}}`},
	{"statement unknown field", `{"records": {"r": {"name": "R", "users": ["a"], "statements": [{"roles": ["R"], "resources": ["x"], "role": "R"}]}}}`},
	{"record group bad ID", `{"records": {"r": {"name": "R", "groups": ["-g"], "statements": [{"roles": ["R"], "resources": ["x"]}]}}}`},
	{"server consensus strategy", `{"resourceServers": {"s": {"name": "S", "scopes": [], "decisionStrategy": "consensus"}}}`},
	{"server bad enforcement", `{"resourceServers": {"s": {"name": "S", "scopes": [], "enforcementMode": "strict"}}}`},
	{"valid server without scopes", `{"resourceServers": {"s": {"name": "S"}}}`},
	{"resource uris empty", `{"resourceServers": {"s": {"name": "S", "scopes": [], "resources": {"r": {"name": "R", "uris": []}}}}}`},
	{"resource unknown field", `{"resourceServers": {"s": {"name": "S", "scopes": [], "resources": {"r": {"name": "R", "uris": ["x"], "owner": "a"}}}}}`},
	{"policy type invalid", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "js"}}}}}`},
	{"role policy without roles", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "role"}}}}}`},
	{"role policy with users", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "role", "roles": ["R"], "users": ["a"]}}}}}`},
	{"user policy misspelled user", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"lena-only": {"name": "L", "type": "user", "users": ["lena"], "user": ["lena"]}}}}}`},
	{"user policy empty users", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "user", "users": []}}}}}`},
	{"group policy bad group ID", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "group", "groups": ["a b"]}}}}}`},
	{"time policy hour 24", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "time", "hours": {"from": 24, "to": 3}}}}}}`},
	{"time policy hour fraction", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "time", "hours": {"from": 3.5, "to": 4}}}}}}`},
	{"time policy hours missing to", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "time", "hours": {"from": 3}}}}}}`},
	{"time policy bad weekday", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "time", "weekdays": ["monday"]}}}}}`},
	{"time policy bad notBefore", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "time", "notBefore": "tomorrow"}}}}}`},
	{"time policy timezone a number", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "time", "timezone": 1}}}}}`},
	{"aggregate without policies", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "aggregate"}}}}}`},
	{"aggregate bad strategy", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "aggregate", "policies": ["q"], "decisionStrategy": "majority"}}}}}`},
	{"policy bad logic", `{"resourceServers": {"s": {"name": "S", "scopes": [], "policies": {"p": {"name": "P", "type": "user", "users": ["a"], "logic": "inverse"}}}}}`},
	{"scope permission without scopes", `{"resourceServers": {"s": {"name": "S", "scopes": [], "permissions": {"p": {"name": "P", "type": "scope", "policies": []}}}}}`},
	{"scope permission with resourceType", `{"resourceServers": {"s": {"name": "S", "scopes": ["r"], "permissions": {"p": {"name": "P", "type": "scope", "scopes": ["r"], "resourceType": "t", "policies": []}}}}}`},
	{"resource permission with scopes", `{"resourceServers": {"s": {"name": "S", "scopes": ["r"], "permissions": {"p": {"name": "P", "type": "resource", "scopes": ["r"], "policies": []}}}}}`},
	{"valid permission without policies (it denies)", `{"resourceServers": {"s": {"name": "S", "scopes": [], "permissions": {"p": {"name": "P", "type": "resource", "resourceType": "t"}}}}}`},
	{"permission bad strategy", `{"resourceServers": {"s": {"name": "S", "scopes": [], "permissions": {"p": {"name": "P", "type": "resource", "resourceType": "t", "policies": [], "decisionStrategy": "all"}}}}}`},
	{"permission type invalid", `{"resourceServers": {"s": {"name": "S", "scopes": [], "permissions": {"p": {"name": "P", "type": "role", "policies": []}}}}}`},
	{"test bad expect", `{"tests": {"t": {"user": "a", "resource": "x", "action": "y", "expect": "yes"}}}`},
	{"test missing user", `{"tests": {"t": {"resource": "x", "action": "y", "expect": "allow"}}}`},
	{"test bad time", `{"tests": {"t": {"user": "a", "resource": "x", "action": "y", "expect": "allow", "time": "noon"}}}`},
	{"test bad role ID", `{"tests": {"t": {"user": "a", "resource": "x", "role": "a b", "expect": "allow"}}}`},
	{"test unknown field", `{"tests": {"t": {"user": "a", "resource": "x", "action": "y", "expect": "allow", "why": "z"}}}`},
	{"role with an empty ID", `{"roles": {"": {"name": "a", "permissions": []}}}`},
	{"field not allowed beside a wrong type", `{"records": null, "role": {}}`},
	{"field not allowed beside a wrong value", `{"groups": {"g": {"name": 1, "x": 2}}}`},
	{"field of another policy type", `{"resourceServers": {"s": {"name": "S", "policies": {"p": {"name": "P", "type": "aggregate", "policies": ["q"], "weekdays": ["mon", "tue"]}}}}}`},
	{"policy type invalid with fields of every type", `{"resourceServers": {"s": {"name": "S", "policies": {"p": {"name": "P", "type": "js",
		"roles": [], "users": [], "groups": [], "notBefore": "a", "hours": {"from": 1, "to": 2}, "policies": []}}}}}`},
	{"policy without a type", `{"resourceServers": {"s": {"policies": {"p": {}}}}}`},
	{"policy without a type with fields of a type", `{"resourceServers": {"s": {"name": "S", "policies": {"p": {"name": "P", "roles": [], "hours": {"at": 1}}}}}}`},
	{"permission type invalid with fields of every type", `{"resourceServers": {"s": {"name": "S", "permissions": {"p": {"name": "P", "type": "x", "scopes": [], "resourceType": 1}}}}}`},
	{"several errors", `{"roles": {"U": {"name": 1, "permissions": [{"action": "a", "grant": 1}]}}, "groups": {"g": {"users": ["a"]}}}`},
}

func TestDifferentialCUEAndGo(t *testing.T) {
	for _, s := range differentialSamples {
		t.Run(s.name, func(t *testing.T) {
			viaCUE := evalInProcess(&unit{key: "dir:.", dir: ".", files: []sourceFile{{name: "sample.cue", data: []byte(s.doc)}}})
			viaGo := evalInProcess(&unit{key: "file:sample.json", dir: ".", files: []sourceFile{{name: "sample.json", data: []byte(s.doc)}}})
			cuePaths, goPaths := errorPaths(viaCUE.errs), errorPaths(viaGo.errs)
			if !slices.Equal(cuePaths, goPaths) {
				t.Errorf("fields in error differ\nCUE: %v\n%v\nGo:  %v\n%v", cuePaths, viaCUE.errs, goPaths, viaGo.errs)
			}
			wantValid := strings.HasPrefix(s.name, "valid") || strings.HasSuffix(s.name, "150 runes") ||
				strings.HasSuffix(s.name, "1000") || strings.HasSuffix(s.name, "256 characters")
			if got := len(viaGo.errs) == 0; got != wantValid {
				t.Errorf("Go validator: valid = %v, want %v: %v", got, wantValid, viaGo.errs)
			}
			for _, e := range append(viaCUE.errs, viaGo.errs...) {
				if e.Pos.File != "sample.cue" && e.Pos.File != "sample.json" || e.Pos.Line < 1 {
					t.Errorf("error not placed in the user's file: %v", e)
				}
			}
			if wantValid && viaCUE.policy != nil && viaGo.policy != nil {
				if a, b := countsOfPolicy(viaCUE.policy), countsOfPolicy(viaGo.policy); a != b {
					t.Errorf("decoded entities differ: CUE %v, Go %v", a, b)
				}
			}
		})
	}
}

func errorPaths(errs Errors) []string {
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

func countsOfPolicy(p *PolicySet) [5]int {
	return [5]int{len(p.Roles), len(p.Groups), len(p.Records), len(p.ResourceServers), len(p.Tests)}
}

// TestIsUserIDIsTheSchemaPattern: isUserID accepts exactly what the
// schema's #UserID pattern does, as Go's regexp reads it.
func TestIsUserIDIsTheSchemaPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[^\x00-\x1f]{1,256}$`)
	cases := []string{"", "a", "ann@example.com", "a\tb", "a\x1f", "\x7f", "é", "日本", "\xff", "a\xffb",
		strings.Repeat("x", 256), strings.Repeat("x", 257), strings.Repeat("é", 256), strings.Repeat("é", 257),
		strings.Repeat("\xff", 256), strings.Repeat("\xff", 257), "x\n", " "}
	for _, s := range cases {
		if got, want := isUserID(s), pattern.MatchString(s); got != want {
			t.Errorf("isUserID(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
