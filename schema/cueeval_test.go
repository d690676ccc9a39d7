package schema

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

// cueErrorCases are the CUE files of TestCUEErrorMessages, each p.cue
// alone, and the errors they load with.
var cueErrorCases = []struct {
	name, src, want string
}{
	{"a field of a role's permission entry",
		`roles: Editor: {name: "Editor", permissions: [{action: "documents", level: 2}]}`,
		"p.cue:1:69: roles.Editor.permissions.0.level: field not allowed (allowed: action, allow, grant, delegate)"},
	{"a field of a statement",
		`records: r: {name: "R", users: ["a"], statements: [{roles: ["X"], resources: ["d"], role: "X"}]}`,
		"p.cue:1:85: records.r.statements.0.role: field not allowed (allowed: roles, resources, users, groups)"},
	{"a role ID with dots",
		`roles: "docs.reader": {name: "R", colour: 1, permissions: [{action: "a"}]}`,
		`p.cue:1:35: roles."docs.reader".colour: field not allowed (allowed: name, description, permissions, tags)`},
	{"an enumeration under a server ID with dots",
		`resourceServers: "acme.api": {name: "A", enforcementMode: "strict"}`,
		`p.cue:1:59: resourceServers."acme.api".enforcementMode: invalid value "strict" (want one of "enforcing", "permissive", "disabled")`},
	{"a field of the variant a policy's type selects",
		`resourceServers: s: {name: "S", policies: p: {name: "P", type: "user", users: ["a"], roles: ["R"]}}`,
		"p.cue:1:86: resourceServers.s.policies.p.roles: field not allowed (allowed: name, description, logic, type, users)"},
	{"a weekday",
		`resourceServers: s: {name: "S", policies: p: {name: "P", type: "time", weekdays: ["mon", "funday"]}}`,
		`p.cue:1:90: resourceServers.s.policies.p.weekdays.1: invalid value "funday" (want one of "mon", "tue", "wed", "thu", "fri", "sat", "sun")`},
	{"a field of a time policy's hours",
		`resourceServers: s: {name: "S", policies: p: {name: "P", type: "time", hours: {from: 1, to: 2, at: 3}}}`,
		"p.cue:1:96: resourceServers.s.policies.p.hours.at: field not allowed (allowed: from, to)"},
	{"an empty list that must not be",
		`roles: R: {name: "R", permissions: []}`,
		"p.cue:1:23: roles.R.permissions: must not be empty"},
	{"a field not allowed beside another error",
		`groups: g: {name: 1, colour: "red"}`,
		"p.cue:1:19: groups.g.name: must be a string, got a number\np.cue:1:22: groups.g.colour: field not allowed (allowed: name, description, users, tags)"},
	// A user's own definition that does not evaluate is an error like
	// any other (its errors were dropped as the schema's, and the unit
	// passed with no policy: the loader crashed on it).
	{"a definition of the user's that refers to nothing",
		"#A000:  A0",
		`p.cue:1:9: #A000: reference "A0" not found`},
	{"a definition of the user's that conflicts",
		"#A: 1\n#A: 2\n",
		`p.cue:2:5: #A: conflicting values 2 and 1`},
	{"a field of a definition of the user's that conflicts",
		"roles: {}\n#A: {x: 1 & 2}\n",
		`p.cue:2:13: #A.x: conflicting values 2 and 1`},
}

// TestCUEErrorMessages: CUE's "field not allowed" and failed
// enumerations are reworded with the fields or values the schema allows,
// found by walking the schema along the error's path: through lists,
// entities keyed by IDs that hold dots, and discriminated structs. A field
// not allowed is reported even beside another error in its struct.
func TestCUEErrorMessages(t *testing.T) {
	for _, tc := range cueErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewLoader().Load(context.Background(), fstest.MapFS{"p.cue": {Data: []byte(tc.src)}})
			var errs Errors
			if !errors.As(err, &errs) || errs.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestEvalFailedNeverEmpty: a unit whose CUE errors were all dropped (as
// errors that another one reports) still fails with one of them.
func TestEvalFailedNeverEmpty(t *testing.T) {
	files := []sourceFile{{name: "p.cue"}}
	err := cuecontext.New().CompileString("#A: B", cue.Filename(SchemaFile)).Err()
	got := evalFailed(nil, files, err)
	if len(got) != 1 || got.Error() != `p.cue:1: #A: reference "B" not found` {
		t.Errorf("evalFailed = %v, want the CUE error at the unit's first file", got)
	}
	if got := evalFailed(nil, files, nil); len(got) != 1 || got[0].Pos.File != "p.cue" {
		t.Errorf("evalFailed without a CUE error = %v, want an error at p.cue", got)
	}
	kept := Errors{{Pos: Pos{File: "p.cue", Line: 2}, Message: "m"}}
	if got := evalFailed(kept, files, err); len(got) != 1 || got[0] != kept[0] {
		t.Errorf("evalFailed = %v, want the errors given", got)
	}
}
