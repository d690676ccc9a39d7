package schema

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"
)

// bom is the UTF-8 encoding of U+FEFF, which some Windows editors write at
// the start of a file.
const bom = "\ufeff"

// TestLoadByteOrderMark: a UTF-8 byte-order mark at the start of a JSON,
// YAML or CUE file is dropped before parsing, as the cue tool does, and
// positions count from the first character after it (column 1). A file
// whose first character after the mark is wrong is reported at 1:1.
func TestLoadByteOrderMark(t *testing.T) {
	tests := []struct {
		name, file, data string
		wantErr          string // the position of the first error, "" for a valid policy
		wantGroup        Pos    // where group g is declared, when valid
	}{
		{name: "json", file: "g.json",
			data:      bom + `{"groups": {"g": {"name": "G", "users": ["ann"]}}}`,
			wantGroup: Pos{File: "g.json", Line: 1, Col: 13}},
		{name: "yaml", file: "g.yaml",
			data:      bom + "groups:\n  g:\n    name: G\n    users: [ann]\n",
			wantGroup: Pos{File: "g.yaml", Line: 2, Col: 3}},
		{name: "yml", file: "g.yml",
			data:      bom + "groups:\n  g: {name: G, users: [ann]}\n",
			wantGroup: Pos{File: "g.yml", Line: 2, Col: 3}},
		{name: "cue", file: "g.cue",
			data:      bom + "groups: g: {name: \"G\", users: [\"ann\"]}\n",
			wantGroup: Pos{File: "g.cue", Line: 1, Col: 9}},
		{name: "cue with package", file: "g.cue",
			data:      bom + "package policies\n\ngroups: g: {name: \"G\", users: [\"ann\"]}\n",
			wantGroup: Pos{File: "g.cue", Line: 3, Col: 9}},
		{name: "json syntax error after the mark", file: "g.json", data: bom + `]`, wantErr: "g.json:1:1"},
		{name: "yaml syntax error after the mark", file: "g.yaml", data: bom + "\tgroups: {}\n", wantErr: "g.yaml:1:1"},
		{name: "cue syntax error after the mark", file: "g.cue", data: bom + "}\n", wantErr: "g.cue:1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{tt.file: {Data: []byte(tt.data)}}
			p, err := NewLoader().Load(context.Background(), fsys)
			if tt.wantErr != "" {
				var errs Errors
				if !errors.As(err, &errs) || len(errs) == 0 {
					t.Fatalf("Load: %v, want an error at %s", err, tt.wantErr)
				}
				if got := errs[0].Pos.String(); got != tt.wantErr {
					t.Errorf("first error %v at %s, want %s", errs[0], got, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			g := p.Groups["g"]
			if g == nil || g.Name != "G" || len(g.Users) != 1 || g.Users[0] != "ann" {
				t.Fatalf("group g = %+v", g)
			}
			if g.Pos != tt.wantGroup {
				t.Errorf("group g at %v, want %v", g.Pos, tt.wantGroup)
			}
			// The same file without the mark says the same.
			plain, err := NewLoader().Load(context.Background(), fstest.MapFS{tt.file: {Data: []byte(tt.data[len(bom):])}})
			if err != nil {
				t.Fatalf("without the mark: %v", err)
			}
			if pg := plain.Groups["g"]; pg == nil || pg.Pos != g.Pos {
				t.Errorf("without the mark group g is %+v, with it at %v", pg, g.Pos)
			}
		})
	}
}
