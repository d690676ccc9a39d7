package schema

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/charter-policy/charter/schema/quote"
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

// fuzzSecret is what FuzzNoMessageQuotesContent plants: 200 characters
// that no message may show 65 of in a row.
var fuzzSecret = strings.Repeat("k9Qz", 50)

// FuzzNoMessageQuotesContent plants fuzzSecret wherever the input holds
// "@" and loads the result as a JSON, a YAML and a CUE file: whatever the
// input, no error shows more than quote.MaxRunes characters of the secret.
// fuzzSecret repeats a 4-character unit, so that every piece of it longer
// than 64 characters is one of four strings.
func FuzzNoMessageQuotesContent(f *testing.F) {
	for _, seed := range []string{
		`{"roles": {"R": {"name": "@", "permissions": [{"action": "a"}]}}}`,
		`{"roles": {"R": {"name": "R", "permissions": "@"}}}`,
		`{"roles": {"@": {"name": "R", "permissions": [{"action": "@*"}]}}}`,
		`{"tests": {"t": {"user": "ann", "resource": "d/1", "action": "a", "expect": "@"}}}`,
		`{"records": {"r": {"name": "R", "users": ["ann"], "statements": [{"roles": ["@"], "resources": ["@//x"]}]}}}`,
		`{"roles": {"@" 1}}`,
		"roles: *@\n",
		"roles: !!bool @\n",
		"roles: R: name: \"@\"\nroles: R: name: \"x@\"\n",
		"roles: R: name: =~\"^@$\"\n",
		"import \"@\"\n",
		"roles: R: name: x@\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if len(doc) > 4096 {
			return
		}
		data := []byte(strings.ReplaceAll(doc, "@", fuzzSecret))
		for _, name := range []string{"fuzz.json", "fuzz.yaml", "fuzz.cue"} {
			u := &unit{key: "file:" + name, dir: ".", files: []sourceFile{{name: name, data: data}}}
			if name == "fuzz.cue" {
				u.key = "dir:."
			}
			r := evalInProcess(u)
			errs := r.errs
			if r.policy != nil && len(errs) == 0 {
				errs = checkRefs(r.policy, r.policy)
			}
			for _, e := range errs {
				for i := range 4 {
					if piece := fuzzSecret[i : i+quote.MaxRunes+1]; strings.Contains(e.Error(), piece) {
						t.Fatalf("%s: the error shows more than %d characters of the secret:\n%v", name, quote.MaxRunes, e)
					}
				}
			}
		}
	})
}

// evalInProcess evaluates one unit the way a Loader without a CUERunner does.
func evalInProcess(u *unit) *unitResult {
	r, err := (&Loader{}).evalUnit(context.Background(), u)
	if err != nil {
		panic(fmt.Sprintf("a Loader without a CUERunner failed: %v", err)) // it has no error to return
	}
	return r
}
