package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/charter-policy/charter/schema"
)

// hostileFile is a row of issue 8's table that plants, in the policy tree,
// a file that must not be read.
type hostileFile struct {
	name string
	// file is the policy file planted, relative to the root; status and
	// validate must place the refusal at file:1.
	file string
	// plant makes file below root; secret is a file outside the root that
	// holds the planted secret.
	plant func(t *testing.T, root, secret string)
	// refusal is a phrase of the message that says why file is not read.
	refusal string
}

var hostileFiles = []hostileFile{
	{
		name: "symlink to a secret", file: "tok.yaml", refusal: "leads outside the policy root",
		plant: func(t *testing.T, root, secret string) { symlinkTo(t, secret, filepath.Join(root, "tok.yaml")) },
	},
	{
		name: "relative symlink to a secret", file: "support/tok.json", refusal: "leads outside the policy root",
		plant: func(t *testing.T, root, secret string) {
			link := filepath.Join(root, "support", "tok.json")
			rel, err := filepath.Rel(filepath.Dir(link), secret)
			if err != nil {
				t.Fatal(err)
			}
			symlinkTo(t, rel, link)
		},
	},
	{
		name: "symlink chain to a secret", file: "tok.cue", refusal: "leads outside the policy root",
		plant: func(t *testing.T, root, secret string) {
			// tok.cue → hop (inside the root, not a policy file) → the secret.
			symlinkTo(t, secret, filepath.Join(root, "hop"))
			symlinkTo(t, "hop", filepath.Join(root, "tok.cue"))
		},
	},
	{
		name: "symlink to the password file", file: "users.yaml", refusal: "leads outside the policy root",
		plant: func(t *testing.T, root, _ string) { symlinkTo(t, "/etc/passwd", filepath.Join(root, "users.yaml")) },
	},
	{
		name: "symlink to /dev/zero", file: "zero.json", refusal: "leads outside the policy root",
		plant: func(t *testing.T, root, _ string) { symlinkTo(t, "/dev/zero", filepath.Join(root, "zero.json")) },
	},
	{
		name: "FIFO", file: "support/f.json", refusal: "not a regular file (a named pipe)",
		plant: func(t *testing.T, root, _ string) {
			if err := syscall.Mkfifo(filepath.Join(root, "support", "f.json"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		name: "device", file: "dev.json", refusal: "not a regular file (a device)",
		plant: func(t *testing.T, root, _ string) {
			// The character device 1:5 is what /dev/zero is.
			if err := syscall.Mknod(filepath.Join(root, "dev.json"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
				if errors.Is(err, syscall.EPERM) {
					t.Skipf("cannot make a device node here: %v", err)
				}
				t.Fatal(err)
			}
		},
	},
	{
		name: "socket", file: "sock.yaml", refusal: "not a regular file (a socket)",
		plant: func(t *testing.T, root, _ string) {
			ln, err := net.Listen("unix", filepath.Join(root, "sock.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false) // the test removes it
			t.Cleanup(func() { ln.Close() })
		},
	},
	{
		name: "over the size cap", file: "big.json", refusal: "more than the",
		plant: func(t *testing.T, root, _ string) {
			// Sparse: a file that would take 64 MiB to read and costs nothing
			// to make. It must be refused by its size, never read.
			f, err := os.Create(filepath.Join(root, "big.json"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(schema.MaxFileBytes + 1); err != nil {
				t.Fatal(err)
			}
		},
	},
}

func symlinkTo(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// newSecret writes a unique secret to a file outside every policy root and
// returns the secret and the file.
func newSecret(t *testing.T) (secret, file string) {
	t.Helper()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	secret = "ghp_PLANTED" + hex.EncodeToString(b)
	file = filepath.Join(t.TempDir(), "secret-token")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret, file
}

// TestServeHostileFiles plants each file of hostileFiles in the policy tree
// of a real charter serve (no --interval: its watcher alone reloads) and
// expects, as issue 8 asks: the sidecar stays ready and keeps serving its
// last good snapshot; /v1/status names the file at file:1, and the
// reconcile is counted invalid; no byte of the secret outside the root
// shows in status, metrics or the log, nor in charter validate's text, json
// and github output, which place the refusal at the same position; and
// once the file is gone an edit is served again.
func TestServeHostileFiles(t *testing.T) {
	for _, tt := range hostileFiles {
		t.Run(tt.name, func(t *testing.T) {
			secret, secretFile := newSecret(t)
			root := filepath.Join(t.TempDir(), "policy")
			writePolicyFile(t, root, "roles.cue", serveRoles)
			writePolicyFile(t, root, "support/records.cue", versionRecords(1))
			s := launchServer(t, serveConfig{source: root, debounce: 50 * time.Millisecond})
			s.waitFor(t, func() bool { return s.status(t).Revision != "" })
			good := s.status(t).Revision
			invalidBefore := reconcileCount(t, s.metrics, "invalid")

			tt.plant(t, root, secretFile)
			s.waitFor(t, func() bool { return s.status(t).Error != nil })
			st := s.status(t)
			if st.Revision != good || len(st.Error.Errors) != 1 {
				t.Fatalf("status after planting %s: revision %s (want %s), error %+v", tt.file, st.Revision, good, st.Error)
			}
			if e := st.Error.Errors[0]; e.Position != tt.file+":1" || !strings.Contains(e.Message, tt.refusal) {
				t.Errorf("status error %q at %q, want %q at %s:1", e.Message, e.Position, tt.refusal, tt.file)
			}
			if ok, rev, err := s.check("ann", "documents/d1", "documents:read"); err != nil || !ok || rev != good {
				t.Errorf("check from the last good snapshot: %v at %q, %v; want allowed at %s", ok, rev, err, good)
			}
			if code := getCode(t, s.base+"/readyz"); code != http.StatusOK {
				t.Errorf("/readyz %d, want 200", code)
			}
			if n := reconcileCount(t, s.metrics, "invalid"); n != invalidBefore+1 {
				t.Errorf("charter_reconcile_total{result=\"invalid\"} went from %v to %v, want one more", invalidBefore, n)
			}
			noSecret(t, s, secret)

			for format, want := range map[string]string{
				"text":   tt.file + ":1: ",
				"json":   `"position": "` + tt.file + `:1"`,
				"github": "::error file=" + tt.file + ",line=1::",
			} {
				code, stdout, stderr := runCLI(t, "validate", "--format", format, root)
				out := stdout + stderr
				if code != exitFailed || !strings.Contains(out, want) || !strings.Contains(out, tt.refusal) {
					t.Errorf("validate --format %s: exit %d, want %d and %q with %q:\n%s", format, code, exitFailed, want, tt.refusal, out)
				}
				if strings.Contains(out, secret) {
					t.Errorf("validate --format %s shows the secret:\n%s", format, out)
				}
			}

			if err := os.Remove(filepath.Join(root, tt.file)); err != nil {
				t.Fatal(err)
			}
			writePolicyFile(t, root, "support/records.cue", versionRecords(2))
			// The status is published just after the snapshot is swapped in:
			// once it shows the new revision, checks are answered from it.
			s.waitFor(t, func() bool { st := s.status(t); return st.Error == nil && st.Revision != good })
			if ok, _, err := s.check("ann", "documents/d2", "documents:read"); err != nil || !ok {
				t.Errorf("the edit made once %s is gone is not served: %v %v", tt.file, ok, err)
			}
			noSecret(t, s, secret)
		})
	}
}

// noSecret fails the test when secret, or its line of /etc/passwd's
// kind, shows in s's status, metrics or log.
func noSecret(t *testing.T, s *server, secret string) {
	t.Helper()
	outputs := map[string]string{"status": getBody(t, s.base+"/v1/status"), "metrics": getBody(t, s.base+"/metrics"), "log": s.logs.String()}
	for what, out := range outputs {
		for _, leak := range []string{secret, "ghp_PLANTED", "root:x:0:0"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s shows %q:\n%s", what, leak, out)
			}
		}
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func getCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// reconcileCount returns charter_reconcile_total{result} from g.
func reconcileCount(t *testing.T, g prometheus.Gatherer, result string) float64 {
	t.Helper()
	m := findMetric(t, g, "charter_reconcile_total", "result", result)
	if m == nil {
		t.Fatalf("no charter_reconcile_total{result=%q}", result)
	}
	return m.GetCounter().GetValue()
}

// findMetric returns the sample of the family name from g whose label has
// value, or nil.
func findMetric(t *testing.T, g prometheus.Gatherer, name, label, value string) *dto.Metric {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m
				}
			}
		}
	}
	return nil
}
