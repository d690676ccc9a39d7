package schema

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// FuzzDataFile feeds arbitrary bytes to the JSON and YAML data-file paths of
// the loader: they must never panic, every error must have a position in
// the file, and a file that decodes must pass the local checks without panicking.
func FuzzDataFile(f *testing.F) {
	for _, s := range differentialSamples {
		f.Add([]byte(s.doc))
	}
	for _, name := range []string{"../policies-example/support/customer-support.json", "../policies-example/support/contractors.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"roles": {"A": {"name": "\ud83d\ude00", "permissions": [{"action": "a\u0000"}]}}}`))
	f.Add([]byte("groups:\n  g: &a {name: G, users: [*a]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"fuzz.json", "fuzz.yaml"} {
			r := evalInProcess(&unit{key: "file:" + name, dir: ".", files: []sourceFile{{name: name, data: data}}})
			for _, e := range r.errs {
				if e.Pos.File != name || e.Pos.Line < 1 {
					t.Fatalf("%s: error without a position in the file: %v", name, e)
				}
			}
			if len(r.errs) == 0 && r.policy == nil {
				t.Fatalf("%s: no errors and no policy", name)
			}
		}
	})
}

// TestYAMLAliasBomb: aliases that expand exponentially are refused quickly.
func TestYAMLAliasBomb(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	_, err := parseYAML("bomb.yaml", []byte(bomb))
	if err == nil || !strings.Contains(err.Message, "too many values") {
		t.Fatalf("err = %v, want the expansion refused", err)
	}
}

// evalInProcess evaluates one unit the way a Loader without a CUERunner does.
func evalInProcess(u *unit) *unitResult {
	r, err := (&Loader{}).evalUnit(context.Background(), u)
	if err != nil {
		panic(fmt.Sprintf("a Loader without a CUERunner failed: %v", err)) // it has no error to return
	}
	return r
}
