package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hostileTestName is a test named in the README's "Hostile input" table:
// `PACKAGE.TestName` or `PACKAGE.TestName/subtest`, the package a
// directory relative to the module root.
var hostileTestName = regexp.MustCompile("`([a-z][a-z0-9/_-]*)\\.((?:Test|Benchmark|Fuzz)[A-Za-z0-9_]*)(?:/([^`]+))?`")

// TestHostileInputTable holds the README's "Hostile input" table to the
// code: each row names at least one test, and each test named exists as a
// function of that package's test files; a subtest exists as a quoted name
// in them (a table case or t.Run) or as a file of the package's testdata
// (a golden archive).
func TestHostileInputTable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Hostile input\n")
	if !ok {
		t.Fatal(`README.md has no section "## Hostile input"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := 0
	sources := map[string]string{} // package → its test files, concatenated
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| attack") || strings.HasPrefix(line, "| ---") {
			continue
		}
		rows++
		cells := strings.Split(line, " | ")
		if len(cells) != 3 {
			t.Errorf("a row of three cells (attack, tests, what they assert), not %d: %s", len(cells), line)
			continue
		}
		names := hostileTestName.FindAllStringSubmatch(cells[1], -1)
		if len(names) == 0 {
			t.Errorf("the row %q names no test as `package.TestName`", cells[0])
		}
		for _, m := range names {
			pkg, fn, sub := m[1], m[2], m[3]
			src, ok := sources[pkg]
			if !ok {
				src = testSources(t, pkg)
				sources[pkg] = src
			}
			if !strings.Contains(src, "func "+fn+"(") {
				t.Errorf("README.md names %s.%s, which is not a function of %s's test files", pkg, fn, pkg)
				continue
			}
			if sub != "" && !strings.Contains(src, strconv.Quote(sub)) && !inTestdata(pkg, sub) {
				t.Errorf("README.md names %s.%s/%s: no case %q in %s's test files, nor a testdata file of that name", pkg, fn, sub, sub, pkg)
			}
		}
	}
	if rows < 13 {
		t.Errorf("the table has %d rows; issue 8 has 13 without the two CUE evaluation attacks", rows)
	}
}

// testSources returns the test files of the package in the directory pkg,
// relative to the module root, concatenated.
func testSources(t *testing.T, pkg string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", filepath.FromSlash(pkg), "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Errorf("no test files in %s (%v)", pkg, err)
		return ""
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

// inTestdata reports whether the testdata of pkg holds a file named name
// with any extension, at any depth.
func inTestdata(pkg, name string) bool {
	found := false
	_ = filepath.WalkDir(filepath.Join("..", "..", filepath.FromSlash(pkg), "testdata"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.TrimSuffix(d.Name(), filepath.Ext(d.Name())) == name {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}
