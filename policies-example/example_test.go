package policiesexample

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/charter-policy/charter/schema"
)

// TestExampleIsValidAndItsTestsPass loads the example as charter validate
// does, from the directory and from the copy embedded in the binary, and
// runs its policy tests.
func TestExampleIsValidAndItsTestsPass(t *testing.T) {
	sources := map[string]func() (*schema.PolicySet, error){
		"directory": func() (*schema.PolicySet, error) { return schema.NewLoader().Load(context.Background(), os.DirFS(".")) },
		"embedded":  func() (*schema.PolicySet, error) { return schema.NewLoader().Load(context.Background(), FS()) },
	}
	var counts []int
	for name, load := range sources {
		t.Run(name, func(t *testing.T) {
			p, err := load()
			if err != nil {
				t.Fatal(err)
			}
			report, err := engine.RunTests(p, nil, time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			// One test for every seed rule of the engine issue, and more.
			if len(p.Tests) < 70 || report.Passed != len(p.Tests) {
				t.Errorf("%d tests, %d passed; want at least 70, all passing", len(p.Tests), report.Passed)
			}
			if !report.OK() {
				var b strings.Builder
				_ = report.WriteText(&b)
				t.Fatalf("policy tests fail:\n%s", b.String())
			}
			counts = append(counts, len(p.Roles)+len(p.Groups)+len(p.Records)+len(p.ResourceServers)+len(p.Tests))
		})
	}
	if len(counts) == 2 && counts[0] != counts[1] {
		t.Errorf("the embedded copy differs from the directory: %d vs %d entities (does embed.go list every file?)", counts[0], counts[1])
	}
}
