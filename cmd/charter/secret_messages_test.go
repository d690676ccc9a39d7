package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/charter-policy/charter/schema"
)

// messageSecret is 200 characters that stand for a token a pull request
// plants in a policy file, hoping that an error message echoes it into a
// CI log. No output may hold 65 characters of it in a row.
var messageSecret = func() string {
	var b strings.Builder
	seed := []byte("issue 8: no error message quotes file content")
	for b.Len() < 200 {
		sum := sha256.Sum256(seed)
		b.WriteString(hex.EncodeToString(sum[:]))
		seed = sum[:]
	}
	return "s" + b.String()[:199]
}()

// leak returns a 65-character piece of messageSecret that out holds, or "".
func leak(out string) string { return leakOf(out, 65) }

// leakOf returns a piece of messageSecret n characters long that out holds, or "".
func leakOf(out string, n int) string {
	for i := 0; i+n <= len(messageSecret); i++ {
		if piece := messageSecret[i : i+n]; strings.Contains(out, piece) {
			return piece
		}
	}
	return ""
}

// baseRole is a valid role that the planted documents refer to.
var baseRole = map[string]any{"name": "Viewer", "permissions": []any{map[string]any{"action": "documents:read"}}}

// secretDoc is a data document that plants messageSecret somewhere.
type secretDoc struct {
	name   string
	doc    map[string]any
	field  string // the path the error is at; "" when any field will do
	shown  string // what the message must still show of the wrong token ("" for nothing)
	hidden bool   // the value is of the wrong type or too long: no piece of it is shown
}

func secretDocs() []secretDoc {
	s := messageSecret
	role := func(fields map[string]any) map[string]any {
		r := map[string]any{"name": "R", "permissions": []any{map[string]any{"action": "a"}}}
		for k, v := range fields {
			r[k] = v
		}
		return map[string]any{"roles": map[string]any{"Viewer": baseRole, "R": r}}
	}
	record := func(statement map[string]any) map[string]any {
		st := map[string]any{"roles": []any{"Viewer"}, "resources": []any{"documents/d1"}}
		for k, v := range statement {
			st[k] = v
		}
		return map[string]any{
			"roles":   map[string]any{"Viewer": baseRole},
			"records": map[string]any{"r1": map[string]any{"name": "R1", "users": []any{"ann"}, "statements": []any{st}}},
		}
	}
	server := func(fields map[string]any) map[string]any {
		srv := map[string]any{"name": "Docs", "scopes": []any{"read"}}
		for k, v := range fields {
			srv[k] = v
		}
		return map[string]any{"resourceServers": map[string]any{"docs": srv}}
	}
	timePolicy := func(fields map[string]any) map[string]any {
		pol := map[string]any{"name": "Office", "type": "time", "timezone": "UTC"}
		for k, v := range fields {
			pol[k] = v
		}
		return server(map[string]any{"policies": map[string]any{"office": pol}})
	}
	return []secretDoc{
		{name: "a string for a list", doc: role(map[string]any{"permissions": s}), field: "roles.R.permissions", hidden: true},
		{name: "a string for a boolean", doc: role(map[string]any{"permissions": []any{map[string]any{"action": "a", "grant": s}}}), field: "roles.R.permissions.0.grant", hidden: true},
		{name: "a list for a string", doc: role(map[string]any{"name": []any{s}}), field: "roles.R.name", hidden: true},
		{name: "a struct for a string", doc: role(map[string]any{"name": map[string]any{"k": s}}), field: "roles.R.name", hidden: true},
		{name: "a string for a struct", doc: map[string]any{"roles": map[string]any{"R": s}}, field: "roles.R", hidden: true},
		{name: "a string for the entities", doc: map[string]any{"groups": s}, field: "groups", hidden: true},
		{name: "an overlong name", doc: role(map[string]any{"name": s}), field: "roles.R.name", hidden: true},
		{name: "an overlong description", doc: role(map[string]any{"description": strings.Repeat(s, 6)}), field: "roles.R.description", hidden: true},
		{name: "a bad enum value", doc: map[string]any{"roles": map[string]any{"Viewer": baseRole},
			"tests": map[string]any{"t": map[string]any{"user": "ann", "resource": "documents/d1", "action": "documents:read", "expect": s}}},
			field: `tests.t.expect`, shown: s[:63] + "…"},
		{name: "a bad enum value in a server", doc: server(map[string]any{"decisionStrategy": s}), field: "resourceServers.docs.decisionStrategy", shown: s[:63] + "…"},
		{name: "a malformed role reference", doc: record(map[string]any{"roles": []any{s}}), field: "records.r1.statements.0.roles.0", shown: s[:63] + "…"},
		{name: "an unknown role reference", doc: record(map[string]any{"roles": []any{s[:128]}}), field: "records.r1.statements.0.roles.0", shown: s[:63] + "…"},
		{name: "an unknown role close to a declared one", doc: map[string]any{
			"roles":   map[string]any{s[:128]: baseRole},
			"records": map[string]any{"r1": map[string]any{"name": "R1", "users": []any{"ann"}, "statements": []any{map[string]any{"roles": []any{s[:127] + "x"}, "resources": []any{"d/1"}}}}},
		}, field: "records.r1.statements.0.roles.0"},
		{name: "an unknown group reference", doc: map[string]any{"roles": map[string]any{"Viewer": baseRole},
			"records": map[string]any{"r1": map[string]any{"name": "R1", "groups": []any{s[:128]}, "statements": []any{map[string]any{"roles": []any{"Viewer"}, "resources": []any{"d/1"}}}}}},
			field: "records.r1.groups.0"},
		{name: "a malformed entity ID", doc: map[string]any{"roles": map[string]any{s: baseRole}}},
		{name: "an unknown field", doc: role(map[string]any{s: "x"})},
		{name: "a user ID with a control character", doc: record(map[string]any{"users": []any{"\x01" + s}}), field: "records.r1.statements.0.users.0"},
		{name: "a malformed time", doc: timePolicy(map[string]any{"notBefore": s}), field: "resourceServers.docs.policies.office.notBefore"},
		{name: "an unknown time zone", doc: timePolicy(map[string]any{"timezone": s}), field: "resourceServers.docs.policies.office.timezone"},
		{name: "a malformed action", doc: role(map[string]any{"permissions": []any{map[string]any{"action": s + "*"}}}), field: "roles.R.permissions.0.action"},
		{name: "a malformed resource URI", doc: record(map[string]any{"resources": []any{s + "//x"}}), field: "records.r1.statements.0.resources.0"},
		{name: "a scope among declared secrets", doc: server(map[string]any{"scopes": []any{s, s + "2"},
			"resources": map[string]any{"d": map[string]any{"name": "D", "uris": []any{"d/1"}, "scopes": []any{"nope"}}}}), field: "resourceServers.docs.resources.d.scopes.0"},
		{name: "a duplicate permission name", doc: server(map[string]any{"permissions": map[string]any{
			"p1": map[string]any{"name": s[:150], "type": "scope", "scopes": []any{"read"}},
			"p2": map[string]any{"name": s[:150], "type": "scope", "scopes": []any{"read"}},
		}}), field: "resourceServers.docs.permissions.p2.name"},
	}
}

// secretFile is a policy file, of any format, that plants messageSecret.
type secretFile struct {
	name, file, data string
	field            string
	shown            string
	hidden           bool
}

// secretFiles renders each document as JSON, YAML and CUE (JSON is CUE),
// and adds the syntax errors and CUE-only errors that plant the secret.
func secretFiles(t *testing.T) []secretFile {
	s := messageSecret
	var out []secretFile
	for _, d := range secretDocs() {
		j, err := json.MarshalIndent(d.doc, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(d.doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out,
			secretFile{d.name, "p.json", string(j), d.field, d.shown, d.hidden},
			secretFile{d.name, "p.yaml", string(y), d.field, d.shown, d.hidden},
			secretFile{d.name, "p.cue", "package policies\n\n" + string(j), d.field, d.shown, d.hidden})
	}
	const cueRole = "package policies\n\nroles: R: permissions: [{action: \"a\"}]\n"
	return append(out,
		secretFile{name: "JSON: a field name without a colon", file: "p.json", data: `{"roles": {"` + s + `" 1}}`},
		secretFile{name: "JSON: a bare word", file: "p.json", data: `{"roles": ` + s + `}`},
		secretFile{name: "JSON: an unterminated string", file: "p.json", data: `{"roles": "` + s},
		secretFile{name: "JSON: a bad escape", file: "p.json", data: `{"roles": "` + s + `\q"}`},
		secretFile{name: "YAML: an unknown anchor", file: "p.yaml", data: "roles: *" + s + "\n"},
		secretFile{name: "YAML: a bad boolean", file: "p.yaml", data: "roles: !!bool " + s + "\n"},
		secretFile{name: "YAML: a tab", file: "p.yaml", data: "roles:\n\t" + s + ": 1\n"},
		secretFile{name: "YAML: an unterminated quote", file: "p.yaml", data: "roles: '" + s + "\n"},
		secretFile{name: "YAML: a mapping in a scalar", file: "p.yaml", data: "roles: " + s + ": " + s + "\n"},
		secretFile{name: "YAML: a bad directive", file: "p.yaml", data: "%YAML " + s + "\n---\nroles: {}\n"},
		secretFile{name: "CUE: two strings in a row", file: "p.cue", data: "roles: \"" + s + "\" \"x\"\n"},
		secretFile{name: "CUE: an unterminated string", file: "p.cue", data: "roles: R: name: \"" + s + "\n"},
		secretFile{name: "CUE: an unknown import", file: "p.cue", data: "import \"" + s + "\"\n\nroles: {}\n"},
		secretFile{name: "CUE: an identifier after a value", file: "p.cue", data: "roles: R: name: \"R\" x" + s + "\n"},
		secretFile{name: "CUE: a reference to nothing", file: "p.cue", data: "roles: R: name: x" + s + "\n"},
		secretFile{name: "CUE: conflicting values", file: "p.cue", data: cueRole + "roles: R: name: \"" + s + "\"\nroles: R: name: \"other\"\n", field: "roles.R.name"},
		secretFile{name: "CUE: two conflicting secrets", file: "p.cue", data: cueRole + "roles: R: name: \"" + s + "\"\nroles: R: name: \"" + s + "x\"\n", field: "roles.R.name"},
		secretFile{name: "CUE: conflicting types", file: "p.cue", data: cueRole + "roles: R: name: \"" + s + "\"\nroles: R: name: 5\n", field: "roles.R.name"},
		secretFile{name: "CUE: a value out of its own bound", file: "p.cue", data: cueRole + "roles: R: name: \"" + s[:100] + "\" & =~\"^" + s + "$\"\n", field: "roles.R.name"},
		secretFile{name: "CUE: an incomplete value", file: "p.cue", data: cueRole + "roles: R: name: =~\"^" + s + "$\"\n", field: "roles.R.name"},
		secretFile{name: "CUE: an unresolved disjunction", file: "p.cue", data: cueRole +
			"roles: R: name: \"R\"\ntests: t: {user: \"ann\", resource: \"d/1\", action: \"a\", expect: \"" + s + "\" | \"x" + s + "\"}\n", field: "tests.t.expect"},
		secretFile{name: "CUE: a struct for a string", file: "p.cue", data: cueRole + "roles: R: name: {k: \"" + s + "\"}\n", field: "roles.R.name", hidden: true},
		secretFile{name: "CUE: a label as an identifier", file: "p.cue", data: "roles: x" + s + ": name: 1\n"},
		secretFile{name: "CUE: packages that differ", file: "q.cue", data: "package x" + s + "\n\nroles: {}\n"},
		secretFile{name: "CUE: an interpolation", file: "p.cue", data: cueRole + "roles: R: name: \"\\(x" + s + ")\"\n", field: "roles.R.name"},
		secretFile{name: "CUE: a list for a name", file: "p.cue", data: cueRole + "roles: R: name: [\"" + s + "\", 1]\n", field: "roles.R.name", hidden: true},
	)
}

// TestNoMessageQuotesContent plants a 200-character secret in every kind
// of error the loader and validator report (issue 8, item 1): a value of
// the wrong type, an overlong name, a bad enumeration value, an unknown or
// malformed reference, syntax errors of JSON, YAML and CUE, CUE's
// conflicts, and more, each in each format where it applies. No output
// (the Errors text; charter validate in text, json and github formats) may
// hold 65 characters of it in a row; every error still names its file and
// line, and the field where there is one; an error that shows the wrong
// token shows it cut, with the marker.
func TestNoMessageQuotesContent(t *testing.T) {
	for _, tc := range secretFiles(t) {
		t.Run(tc.name+"/"+tc.file, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file == "q.cue" { // a second file of the directory, with another package
				writePolicyFile(t, dir, "p.cue", "package policies\n\nroles: {}\n")
			}
			writePolicyFile(t, dir, tc.file, tc.data)
			_, err := schema.NewLoader().Load(context.Background(), os.DirFS(dir))
			var errs schema.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("load: %v, want errors", err)
			}
			text := errs.Error()
			if piece := leak(text); piece != "" {
				t.Errorf("the errors show %q of the secret:\n%s", piece, text)
			}
			onField := tc.field == ""
			for _, e := range errs {
				if e.Pos.File == "" || e.Pos.Line < 1 {
					t.Errorf("error without a file and line: %v", e)
				}
				if e.Path == tc.field {
					onField = true
				}
			}
			if !onField {
				t.Errorf("no error at %s:\n%s", tc.field, text)
			}
			if piece := leakOf(text, 16); tc.hidden && piece != "" {
				t.Errorf("the errors show %q of a value of the wrong type or length:\n%s", piece, text)
			}
			if tc.shown != "" && !strings.Contains(text, tc.shown) {
				t.Errorf("the errors do not show the wrong token cut, %q:\n%s", tc.shown, text)
			}
			for _, format := range []string{"text", "json", "github"} {
				code, stdout, stderr := runCLI(t, "validate", "--format", format, dir)
				out := stdout + stderr
				if code != exitFailed {
					t.Errorf("validate --format %s: exit %d, want %d\n%s", format, code, exitFailed, out)
				}
				if piece := leak(out); piece != "" {
					t.Errorf("validate --format %s shows %q of the secret:\n%s", format, piece, out)
				}
				if !strings.Contains(out, tc.file) {
					t.Errorf("validate --format %s does not name %s:\n%s", format, tc.file, out)
				}
			}
		})
	}
}

// TestNoMessageQuotesLinkTarget: the target of a symbolic link out of the
// root is shown cut, like any other token of a policy file.
func TestNoMessageQuotesLinkTarget(t *testing.T) {
	dir := t.TempDir()
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	if err := os.Symlink(filepath.Join("..", messageSecret), filepath.Join(dir, "tok.json")); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json", "github"} {
		code, stdout, stderr := runCLI(t, "validate", "--format", format, dir)
		out := stdout + stderr
		if code != exitFailed || !strings.Contains(out, "tok.json") || !strings.Contains(out, "leads outside the policy root") {
			t.Errorf("validate --format %s: exit %d, want %d and the link named:\n%s", format, code, exitFailed, out)
		}
		if piece := leak(out); piece != "" {
			t.Errorf("validate --format %s shows %q of the link's target:\n%s", format, piece, out)
		}
	}
}

func TestMessageSecret(t *testing.T) {
	if len(messageSecret) != 200 || leak(messageSecret[1:66]) == "" || leak(fmt.Sprint(messageSecret[:64])) != "" {
		t.Fatalf("messageSecret or leak is broken: %d %q", len(messageSecret), messageSecret)
	}
}
