package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// readmeExample is a curl command of the README and the JSON it shows.
type readmeExample struct {
	command string
	want    string
}

// readmeExamples returns each ```sh block holding one curl command that is
// directly followed by a ```json block.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []struct{ lang, body string }
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok || lang == "" {
			continue
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		blocks = append(blocks, struct{ lang, body string }{lang, strings.Join(body, "\n")})
	}
	var out []readmeExample
	for i := 0; i+1 < len(blocks); i++ {
		if blocks[i].lang == "sh" && strings.HasPrefix(blocks[i].body, "curl ") && !strings.Contains(blocks[i].body, "\n") && blocks[i+1].lang == "json" {
			out = append(out, readmeExample{blocks[i].body, blocks[i+1].body})
		}
	}
	return out
}

// TestREADMECurlExamples runs the README's curl examples against a real
// charter serve of the embedded example and compares the answers with the
// JSON the README shows (every "revision" is shown as "…").
func TestREADMECurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed: this test runs the README's curl commands (.ci/test installs it)")
	}
	examples := readmeExamples(t)
	if len(examples) < 7 {
		t.Fatalf("found %d curl examples with answers in README.md, want at least 7", len(examples))
	}
	s := launchServer(t, serveConfig{})
	s.waitFor(t, func() bool { return s.status(t).Revision != "" })
	addr := strings.TrimPrefix(s.base, "http://")
	for _, ex := range examples {
		t.Run(ex.command, func(t *testing.T) {
			cmdline := strings.ReplaceAll(ex.command, "127.0.0.1:8181", addr)
			out, err := exec.Command("sh", "-c", cmdline).Output()
			if err != nil {
				t.Fatalf("%s: %v", cmdline, err)
			}
			var got, want any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("answer is not JSON: %q", out)
			}
			if err := json.Unmarshal([]byte(ex.want), &want); err != nil {
				t.Fatalf("README shows invalid JSON: %v", err)
			}
			dropRevisions(got)
			dropRevisions(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answer differs from the README\ngot:  %s\nwant: %s", out, ex.want)
			}
		})
	}
}

// dropRevisions removes every "revision" field, which the README shows as "…".
func dropRevisions(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "revision")
		for _, e := range v {
			dropRevisions(e)
		}
	case []any:
		for _, e := range v {
			dropRevisions(e)
		}
	}
}
