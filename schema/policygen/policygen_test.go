package policygen

import (
	"context"
	"os"
	"testing"

	"github.com/charter-policy/charter/schema"
)

// TestGeneratedPolicyIsValid loads a small generated repository in both
// formats with the real loader.
func TestGeneratedPolicyIsValid(t *testing.T) {
	for _, format := range []string{"json", "cue"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Documents: 2500, Users: 300, PerFile: 1000, Format: format}
			n, err := Write(dir, o)
			if err != nil {
				t.Fatal(err)
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
