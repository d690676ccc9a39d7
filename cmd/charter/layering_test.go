package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering checks the import graph of the module: data flows one way,
// cmd → reconciler → engine → schema, with engine/api beside the engine
// (cmd may use it; the engine, the reconciler and the schema may not).
func TestLayering(t *testing.T) {
	const module = "github.com/charter-policy/charter"
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// layer returns a package's rank: a package may import packages of its
	// own or a lower rank only.
	layer := func(pkg string) (rank int, ok bool) {
		rel, found := strings.CutPrefix(pkg, module+"/")
		if !found {
			return 0, false
		}
		switch {
		case rel == "schema" || strings.HasPrefix(rel, "schema/"):
			return 1, true
		case rel == "engine/api" || strings.HasPrefix(rel, "engine/api/"):
			return 3, true
		case rel == "engine" || strings.HasPrefix(rel, "engine/"):
			return 2, true
		case rel == "policies-example":
			return 1, true
		case rel == "reconciler" || strings.HasPrefix(rel, "reconciler/"):
			return 4, true
		case strings.HasPrefix(rel, "cmd/"):
			return 5, true
		}
		t.Errorf("package %s belongs to no layer: add it to TestLayering", pkg)
		return 0, false
	}
	checked := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from, ok := layer(fields[0])
		if !ok {
			continue
		}
		for _, imp := range fields[1:] {
			to, ok := layer(imp)
			if !ok {
				continue
			}
			checked++
			if to > from {
				t.Errorf("%s imports %s: data flows cmd → reconciler → engine (api beside it) → schema, never back up", fields[0], imp)
			}
			if from == 4 && to == 3 {
				t.Errorf("%s imports %s: the reconciler does not serve HTTP; cmd wires the two together", fields[0], imp)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d module imports seen: go list output was not what this test expects", checked)
	}
}
