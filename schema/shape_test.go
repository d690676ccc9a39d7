package schema

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSchemaShapesGolden renders the tables derived from the compiled
// #Charter (every struct's fields, which are required, their defaults, the
// lists that must not be empty, the choices of each enumeration and the
// variants of discriminated structs) and compares them with
// testdata/charter-shapes.golden, so that a change of the schema shows in
// review as a change of what the Go validator enforces. Run with -update to
// rewrite it.
func TestSchemaShapesGolden(t *testing.T) {
	var b strings.Builder
	renderShape(&b, "#Charter", charterShapes().charter, "")
	got := b.String()
	const golden = "testdata/charter-shapes.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("derived tables differ from %s (run with -update and review the diff):\n%s", golden, got)
	}
}

func renderShape(b *strings.Builder, label string, s *shape, indent string) {
	switch s.kind {
	case shapeScalar:
		fmt.Fprintf(b, "%s%s %v", indent, label, s.scalar)
		if s.choices != nil {
			fmt.Fprintf(b, " one of %s", quoteAll(s.choices))
		}
		b.WriteString("\n")
	case shapeList:
		kind := "list"
		if s.nonEmpty {
			kind = "non-empty list"
		}
		fmt.Fprintf(b, "%s%s %s of\n", indent, label, kind)
		renderShape(b, "[#]", s.elem, indent+"  ")
	case shapeMap:
		fmt.Fprintf(b, "%s%s map of\n", indent, label)
		renderShape(b, "[*]", s.elem, indent+"  ")
	case shapeStruct:
		fmt.Fprintf(b, "%s%s struct\n", indent, label)
		renderFields(b, s, indent+"  ")
		if s.variants != nil {
			for _, c := range s.field(s.discriminator).shape.choices {
				fmt.Fprintf(b, "%s  if %s == %q: required %s; allowed %s\n", indent, s.discriminator, c,
					strings.Join(s.variants[c].required, ", "), s.variants[c].names)
				v := s.variants[c]
				var extra []*fieldShape
				for _, f := range v.fields {
					if s.field(f.name) == nil {
						extra = append(extra, f)
					}
				}
				renderFields(b, &shape{kind: shapeStruct, fields: extra}, indent+"    ")
			}
			fmt.Fprintf(b, "%s  any other %s: allowed %s\n", indent, s.discriminator, s.anyVariant.names)
		}
	}
}

func renderFields(b *strings.Builder, s *shape, indent string) {
	for _, f := range s.fields {
		label := f.name
		switch {
		case f.optional:
			label += "?"
		case f.required:
			label += "!"
		}
		if f.def != nil {
			label += " (default " + defaultText(f.def) + ")"
		}
		renderShape(b, label, f.shape, indent)
	}
}

// TestGoConstantsAreSchemaChoices: the exported constants that the engine
// compares with are exactly the choices of the schema's enumerations.
func TestGoConstantsAreSchemaChoices(t *testing.T) {
	sh := charterShapes()
	tests := []struct {
		at        *shape
		field     string
		constants []string
	}{
		{sh.server, "decisionStrategy", []string{StrategyUnanimous, StrategyAffirmative}},
		{sh.server, "enforcementMode", []string{EnforcementEnforcing, EnforcementPermissive, EnforcementDisabled}},
		{sh.policy, "logic", []string{LogicPositive, LogicNegative}},
		{sh.policy, "type", []string{PolicyRole, PolicyUser, PolicyGroup, PolicyTime, PolicyAggregate}},
		{sh.policy.variant(PolicyAggregate), "decisionStrategy", []string{StrategyUnanimous, StrategyAffirmative, StrategyConsensus}},
		{sh.permission, "type", []string{PermissionScope, PermissionResource}},
		{sh.permission, "decisionStrategy", []string{StrategyUnanimous, StrategyAffirmative, StrategyConsensus}},
		{sh.permission, "logic", []string{LogicPositive, LogicNegative}},
		{sh.test, "expect", []string{"allow", "deny"}},
	}
	for _, tc := range tests {
		f := tc.at.field(tc.field)
		if f == nil {
			t.Errorf("%s: no such field in %s", tc.field, tc.at.names)
			continue
		}
		if !slices.Equal(f.shape.choices, tc.constants) {
			t.Errorf("%s: schema choices %q, Go constants %q", tc.field, f.shape.choices, tc.constants)
		}
	}
}

// TestBuildShapesRejectsWhatItCannotRead: a schema that the derivation
// does not understand is an error naming the place, not a silent gap.
func TestBuildShapesRejectsWhatItCannotRead(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no #Charter", "#Other: {}", "build #Charter"},
		{"no roles", "#Charter: {groups?: [string]: {name: string}}", `#Charter.roles.*: no "roles" here`},
		{"does not parse", "#Charter: {", "parse"},
	}
	for _, tc := range tests {
		_, err := buildShapes(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// defaultText renders a schema default for the shapes golden.
func defaultText(n *node) string {
	if n.kind == kindBool {
		return strconv.FormatBool(n.b)
	}
	return n.token()
}
