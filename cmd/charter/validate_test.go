package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the golden sections of testdata/*.txtar")

// testClock is the fixed "now" of CLI tests, so that traces in goldens are stable.
var testClock = time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)

// runCLI runs charter with args and returns the exit code and what it printed.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &cliEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, now: func() time.Time { return testClock }}
	code := run(context.Background(), env, args)
	return code, stdout.String(), stderr.String()
}

// TestValidateGolden runs `charter validate` in every format over each
// testdata/validate/*.txtar archive: the files under policy/ form the policy
// root; an optional "args" section holds more flags, one a line; the
// sections want.text, want.json and want.github hold the exit code and
// output. Run with -update to rewrite them.
func TestValidateGolden(t *testing.T) {
	archives, err := filepath.Glob("testdata/validate/*.txtar")
	if err != nil || len(archives) == 0 {
		t.Fatalf("no golden archives: %v", err)
	}
	for _, file := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			dir := filepath.Join(root, "policy")
			for _, f := range ar.Files {
				name, ok := strings.CutPrefix(f.Name, "policy/")
				if !ok {
					continue
				}
				path := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !strings.Contains(string(ar.Comment), "no-dir") {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var flags []string
			for _, f := range ar.Files {
				if f.Name == "args" {
					flags = strings.Fields(string(f.Data))
				}
			}
			changed := false
			for _, format := range []string{"text", "json", "github"} {
				args := append(append([]string{"validate", "--format", format}, flags...), dir)
				code, stdout, stderr := runCLI(t, args...)
				got := fmt.Sprintf("exit %d\n-- stdout\n%s-- stderr\n%s", code, stdout, stderr)
				got = strings.ReplaceAll(got, root, "$ROOT")
				section := "want." + format
				idx := -1
				for i, f := range ar.Files {
					if f.Name == section {
						idx = i
					}
				}
				if *update {
					if idx < 0 {
						ar.Files = append(ar.Files, txtar.File{Name: section})
						idx = len(ar.Files) - 1
					}
					if string(ar.Files[idx].Data) != got {
						ar.Files[idx].Data = []byte(got)
						changed = true
					}
					continue
				}
				if idx < 0 {
					t.Fatalf("%s: no %s section (run with -update)", file, section)
				}
				if want := string(ar.Files[idx].Data); got != want {
					t.Errorf("validate --format %s:\ngot:\n%s\nwant:\n%s", format, got, want)
				}
			}
			if changed {
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestValidateExample(t *testing.T) {
	code, stdout, stderr := runCLI(t, "validate", "../../policies-example")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "valid (") {
		t.Errorf("stdout = %q, want a valid summary", stdout)
	}
}

func TestValidateUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two directories", []string{"validate", "a", "b"}, "want at most one directory"},
		{"bad format", []string{"validate", "--format", "xml", "."}, "must be one of text, json, github"},
		{"unknown flag", []string{"validate", "--colour"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != exitFailure || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := &cliEnv{stdout: &stdout, stderr: &stderr, now: time.Now, getenv: func(k string) string {
		if k == "CHARTER_FORMAT" {
			return "json"
		}
		return ""
	}}
	if code := run(context.Background(), env, []string{"validate", "../../policies-example"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "{") {
		t.Errorf("CHARTER_FORMAT=json ignored: %q", stdout.String())
	}
	stdout.Reset()
	if code := run(context.Background(), env, []string{"validate", "--format", "text", "../../policies-example"}); code != exitOK || strings.HasPrefix(stdout.String(), "{") {
		t.Errorf("a flag on the command line must win over CHARTER_FORMAT: %q", stdout.String())
	}
}
