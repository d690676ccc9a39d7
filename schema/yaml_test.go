package schema

import (
	"strings"
	"testing"
)

// TestParseYAMLDocuments: a YAML data file holds one document. A second
// document (after a "---" that follows content) is an error at its line,
// never silently dropped; a lone leading "---" is fine.
func TestParseYAMLDocuments(t *testing.T) {
	const group = "groups:\n  g: {name: G, users: [ann]}\n"
	const server = "resourceServers:\n  s: {name: S}\n"
	tests := []struct {
		name    string
		src     string
		wantErr string // prefix of the error, "" when the file parses
		groups  int
	}{
		{"one document", group, "", 1},
		{"leading marker", "---\n" + group, "", 1},
		{"leading marker and end marker", "---\n" + group + "...\n", "", 1},
		{"comment then marker", "# groups\n---\n" + group, "", 1},
		{"empty file", "", "", 0},
		{"marker only", "---\n", "", 0},
		{"second document", group + "---\n" + server, "f.yaml:3:1: invalid YAML: a second document starts here: a data file holds one document (split the file, one document per file)", 0},
		{"second document after a leading marker", "---\n" + group + "---\n" + server, "f.yaml:4:1: invalid YAML: a second document starts here", 0},
		{"empty second document", group + "---\n", "f.yaml:3:1: invalid YAML: a second document starts here", 0},
		{"second document after an end marker", group + "...\n---\n" + server, "f.yaml:4:1: invalid YAML: a second document starts here", 0},
		{"second document does not parse", group + "---\nb: [\n", "f.yaml:4:1: invalid YAML: ", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := parseYAML("f.yaml", []byte(tc.src))
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q...", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := fieldOf(n, "groups"); len(g.fields) != tc.groups {
				t.Errorf("%d groups, want %d", len(g.fields), tc.groups)
			}
		})
	}
}
