package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// runTranscripts runs the commands of every testdata/<dir>/*.txtar archive
// against the policy in its policy/ files and compares the transcript with
// its "want" section. The "cmd" section holds one command a line, with
// $DIR for the policy root. Run with -update to rewrite the transcripts.
func runTranscripts(t *testing.T, dir string) {
	archives, err := filepath.Glob(filepath.Join("testdata", dir, "*.txtar"))
	if err != nil || len(archives) == 0 {
		t.Fatalf("no golden archives in testdata/%s: %v", dir, err)
	}
	for _, file := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(t.TempDir(), "policy")
			var cmds []string
			want, wantIdx := "", -1
			for i, f := range ar.Files {
				switch name, isPolicy := strings.CutPrefix(f.Name, "policy/"); {
				case isPolicy:
					path := filepath.Join(root, filepath.FromSlash(name))
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
				case f.Name == "cmd":
					for _, line := range strings.Split(string(f.Data), "\n") {
						if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
							cmds = append(cmds, line)
						}
					}
				case f.Name == "want":
					want, wantIdx = string(f.Data), i
				}
			}
			var b strings.Builder
			for _, line := range cmds {
				args := strings.Fields(strings.ReplaceAll(line, "$DIR", root))
				code, stdout, stderr := runCLI(t, args...)
				fmt.Fprintf(&b, "$ charter %s\nexit %d\n", line, code)
				if stdout != "" {
					fmt.Fprintf(&b, "stdout:\n%s", stdout)
				}
				if stderr != "" {
					fmt.Fprintf(&b, "stderr:\n%s", stderr)
				}
				b.WriteString("\n")
			}
			got := strings.ReplaceAll(b.String(), root, "$DIR")
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = []byte(got)
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if wantIdx < 0 {
				t.Fatalf("%s: no want section (run with -update)", file)
			}
			if got != want {
				t.Errorf("transcript differs:\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestCheckGolden runs `charter check` transcripts from testdata/check.
func TestCheckGolden(t *testing.T) { runTranscripts(t, "check") }

// TestTestGolden runs `charter test` transcripts from testdata/test.
func TestTestGolden(t *testing.T) { runTranscripts(t, "test") }

// TestCheckExample asks the example policies a question.
func TestCheckExample(t *testing.T) {
	code, stdout, stderr := runCLI(t, "check", "--dir", "../../policies-example", "bob", "documents/d1", "documents:read")
	if code != exitOK || !strings.HasPrefix(stdout, "allowed:") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
