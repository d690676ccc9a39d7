package policygen

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/charter-policy/charter/schema"
)

// TestGeneratedPolicyIsValid loads a small generated repository in each
// format, indented and minified, with the real loader.
func TestGeneratedPolicyIsValid(t *testing.T) {
	for _, tc := range []struct {
		format   string
		minified bool
	}{
		{"json", false},
		{"json", true},
		{"cue", false},
		{"cue", true},
	} {
		name := tc.format
		if tc.minified {
			name += "-minified"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Documents: 2500, Users: 300, PerFile: 1000, Format: tc.format, Minified: tc.minified}
			n, err := Write(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(OwnerFile(o, 0))))
			if err != nil {
				t.Fatal(err)
			}
			body := data[bytes.IndexByte(data, '{'):] // after a CUE package clause
			if lines := bytes.Count(body, []byte("\n")); tc.minified != (lines == 0) {
				t.Errorf("%s has %d line breaks in its JSON, minified = %v", OwnerFile(o, 0), lines, tc.minified)
			}
			p, err := schema.NewLoader().Load(context.Background(), os.DirFS(dir))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Records) != n || n != 2500+300+2+20 {
				t.Fatalf("%d records loaded, %d written", len(p.Records), n)
			}
			if err := RewriteOwnerFile(dir, o, 1500, "edited"); err != nil {
				t.Fatal(err)
			}
			p2, err := schema.NewLoader().Load(context.Background(), os.DirFS(dir))
			if err != nil {
				t.Fatal(err)
			}
			if p2.Records["owner-d1500"].Description != "edited" || p2.Records["owner-d500"].Description != "" || len(p2.Records) != n {
				t.Fatalf("rewrite changed the wrong records")
			}
		})
	}
}
