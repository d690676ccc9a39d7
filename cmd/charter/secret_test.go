package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plantedSecret stands for a CI token that a pull request tries to read
// through a symbolic link in the policy tree (issue 8, the first row).
const plantedSecret = "ghp_FAKESECRET1234567890"

// plantSecretLink writes a secret outside the policy root dir and links
// tok.yaml (and a CUE and a JSON file) in the root to it.
func plantSecretLink(t *testing.T, dir string) {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret-token")
	if err := os.WriteFile(secret, []byte(plantedSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tok.yaml", "tok.json", "tok.cue"} {
		if err := os.Symlink(secret, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSymlinkedSecretNeverShown: a symbolic link out of the policy root is
// an error that names the link, and no byte of its target's content appears
// in any output: charter validate in every format, and charter serve's
// status and log.
func TestSymlinkedSecretNeverShown(t *testing.T) {
	dir := t.TempDir()
	writePolicyFile(t, dir, "roles.cue", serveRoles)
	plantSecretLink(t, dir)
	for _, format := range []string{"text", "json", "github"} {
		code, stdout, stderr := runCLI(t, "validate", "--format", format, dir)
		out := stdout + stderr
		if code != exitFailed {
			t.Errorf("validate --format %s: exit %d, want %d\n%s", format, code, exitFailed, out)
		}
		if strings.Contains(out, plantedSecret) || strings.Contains(out, "FAKESECRET") {
			t.Errorf("validate --format %s shows the secret:\n%s", format, out)
		}
		if !strings.Contains(out, "tok.yaml") {
			t.Errorf("validate --format %s does not name the link tok.yaml:\n%s", format, out)
		}
		if format == "github" && !strings.Contains(out, "::error file=tok.yaml,line=1::") {
			t.Errorf("validate --format github: want a whole-file annotation of tok.yaml (no column):\n%s", out)
		}
	}

	s := launchServer(t, serveConfig{source: dir, debounce: 50 * time.Millisecond})
	var body string
	s.waitFor(t, func() bool {
		resp, err := http.Get(s.base + "/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		body = string(data)
		return strings.Contains(body, "tok.")
	})
	if strings.Contains(body, "FAKESECRET") || strings.Contains(s.logs.String(), "FAKESECRET") {
		t.Errorf("charter serve shows the secret:\nstatus: %s\nlog:\n%s", body, s.logs.String())
	}
}
