package schema

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	lang string
	body string
	line int // of the opening fence
}

func readmeBlocks(t *testing.T) (string, []readmeBlock) {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		b := readmeBlock{lang: lang, line: i + 1}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		b.body = strings.Join(body, "\n") + "\n"
		blocks = append(blocks, b)
	}
	return string(data), blocks
}

// TestREADMENamesEverySchemaField: every field of the compiled #Charter,
// in every struct and every variant, and every choice of its enumerations
// appears in README.md in backquotes, so that a field added to the schema
// cannot go undocumented.
func TestREADMENamesEverySchemaField(t *testing.T) {
	readme, _ := readmeBlocks(t)
	fields, choices := map[string]bool{}, map[string]bool{}
	var walk func(s *shape)
	walk = func(s *shape) {
		switch s.kind {
		case shapeStruct:
			for _, f := range s.fields {
				fields[f.name] = true
				walk(f.shape)
			}
			for _, v := range s.variants {
				walk(v)
			}
		case shapeMap, shapeList:
			walk(s.elem)
		case shapeScalar:
			for _, c := range s.choices {
				choices[c] = true
			}
		}
	}
	walk(charterShapes().charter)
	if len(fields) < 30 || len(choices) < 15 {
		t.Fatalf("found %d fields and %d choices in the schema; the walk is broken", len(fields), len(choices))
	}
	for name := range fields {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("README.md does not name the field `%s`", name)
		}
	}
	for c := range choices {
		if !strings.Contains(readme, "`\""+c+"\"`") && !strings.Contains(readme, "`"+c+"`") {
			t.Errorf("README.md does not name the choice `%q`", c)
		}
	}
}

// TestREADMEExamples loads every cue, json and yaml block of README.md on
// its own, as the only file of a policy root. A block is valid, unless its
// first line is "// invalid": then the text block right after it holds the
// errors the loader reports, exactly. A block whose first line is
// "// fragment" is not loaded.
func TestREADMEExamples(t *testing.T) {
	_, blocks := readmeBlocks(t)
	loaded := 0
	for i, b := range blocks {
		ext, ok := map[string]string{"cue": ".cue", "json": ".json", "yaml": ".yaml"}[b.lang]
		if !ok {
			continue
		}
		first, _, _ := strings.Cut(b.body, "\n")
		if first == "// fragment" {
			continue
		}
		loaded++
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "policy"+ext), []byte(b.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := NewLoader().Load(context.Background(), os.DirFS(dir))
		if first != "// invalid" {
			if err != nil {
				t.Errorf("README.md:%d: the %s example does not load:\n%v", b.line, b.lang, err)
			}
			continue
		}
		var errs Errors
		if !errors.As(err, &errs) {
			t.Errorf("README.md:%d: the invalid example loads (err = %v)", b.line, err)
			continue
		}
		if i+1 >= len(blocks) || blocks[i+1].lang != "text" {
			t.Errorf("README.md:%d: an invalid example without a text block of its errors", b.line)
			continue
		}
		if got, want := errs.Error()+"\n", blocks[i+1].body; got != want {
			t.Errorf("README.md:%d: the example's errors are\n%s\nthe README shows\n%s", b.line, got, want)
		}
	}
	if loaded < 10 {
		t.Errorf("loaded %d examples of README.md, want at least 10", loaded)
	}
}
