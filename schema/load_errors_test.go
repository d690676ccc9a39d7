package schema

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// loadErrorCase is a policy root of TestLoadReportsAllErrors and the errors it loads with.
type loadErrorCase struct {
	name  string
	files map[string]string
	want  []string
}

var loadErrorCases = func() []loadErrorCase {
	const editor = "roles: Editor: {name: \"Editor\", permissions: [{action: \"documents\"}]}\n"
	record := func(role string) string {
		return `{"records": {"r1": {"name": "R1", "users": ["ann"], "statements": [{"roles": ["` + role + `"], "resources": ["documents"]}]}}}`
	}
	return []loadErrorCase{
		{
			name: "a schema error and an unknown role in another file",
			files: map[string]string{
				"a/roles.cue":    editor + "roles: Viewer: {name: 7, permissions: [{action: \"documents:read\"}]}\n",
				"b/records.json": record("Edtor"),
			},
			want: []string{
				"a/roles.cue:2:23: roles.Viewer.name: must be a string, got a number",
				`b/records.json:1:68: records.r1.statements.0.roles.0: role "Edtor" does not exist (did you mean "Editor"?)`,
			},
		},
		{
			name: "a reference to a role declared in a unit with a schema error",
			files: map[string]string{
				"roles.cue":    "roles: Editor: {name: \"Editor\", permissions: [{action: \"documents\", grant: \"yes\"}]}\n",
				"records.json": record("Editor"),
			},
			want: []string{
				`roles.cue:1:76: roles.Editor.permissions.0.grant: must be true or false, got a string`,
			},
		},
		{
			name: "a reference to a role declared in a data file with a schema error",
			files: map[string]string{
				"roles.yaml":   "roles:\n  Editor: {name: Editor, permissions: []}\n",
				"records.json": record("Editor"),
			},
			want: []string{
				"roles.yaml:2:39: roles.Editor.permissions: must not be empty",
			},
		},
		{
			name: "a reference that resolves nowhere while a file does not parse",
			files: map[string]string{
				"roles.cue":    "roles: Editor: {name: \"Editor\"\n",
				"records.json": record("Editor"),
			},
			want: []string{
				`records.json:1:68: records.r1.statements.0.roles.0: role "Editor" does not exist in the files that loaded; roles.cue did not parse and may declare it`,
				"roles.cue:1:32: expected '}', found 'EOF'",
			},
		},
		{
			name: "the good records of a broken data file are checked too",
			files: map[string]string{
				"roles.cue": editor,
				"records.json": `{"records": {
  "r1": {"name": "R1", "users": ["ann"], "statements": [{"roles": ["Editr"], "resources": ["documents"]}]},
  "r2": {"name": 2, "users": ["ann"], "statements": [{"roles": ["Editor"], "resources": ["documents"]}]}}}`,
			},
			want: []string{
				`records.json:2:57: records.r1.statements.0.roles.0: role "Editr" does not exist (did you mean "Editor"?)`,
				"records.json:3:18: records.r2.name: must be a string, got a number",
			},
		},
		{
			name: "a duplicate across units beside a schema error",
			files: map[string]string{
				"a/roles.cue":  editor,
				"b/roles.json": `{"roles": {"Editor": {"name": "Editor", "permissions": [{"action": "x"}]}}}`,
				"c/bad.json":   `{"groups": {"g": {"name": ""}}}`,
			},
			want: []string{
				"b/roles.json:1:12: roles.Editor: declared again: it is already declared at a/roles.cue:1:8 (an entity may be declared in one directory or data file only)",
				"c/bad.json:1:27: groups.g.name: must be 1 to 150 characters long, got 0",
			},
		},
	}
}()

// TestLoadReportsAllErrors: SPEC 3.1 asks for every error at once. A schema
// error in one unit must not hide the reference errors of the units that
// parsed, and a reference to an entity that a broken unit declares must not
// be reported as if the entity did not exist.
func TestLoadReportsAllErrors(t *testing.T) {
	for _, tc := range loadErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			_, err := NewLoader().Load(context.Background(), fsys)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want Errors", err)
			}
			got := strings.Split(errs.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
