package git

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw                    string
		scheme, host, path     string
		user, shown            string
		stripped               bool
		basicUser, basicSecret string
		err                    string
	}{
		{raw: "file:///srv/policy.git", scheme: "file", path: "/srv/policy.git", shown: "file:///srv/policy.git"},
		{raw: "file://localhost/srv/policy.git", scheme: "file", path: "/srv/policy.git", shown: "file:///srv/policy.git"},
		{raw: "git://example.com/policy.git", scheme: "git", host: "example.com", path: "/policy.git", shown: "git://example.com/policy.git"},
		{raw: "git://127.0.0.1:9418/policy.git", scheme: "git", host: "127.0.0.1:9418", path: "/policy.git", shown: "git://127.0.0.1:9418/policy.git"},
		{raw: "https://github.com/org/policy.git", scheme: "https", host: "github.com", path: "/org/policy.git", shown: "https://github.com/org/policy.git"},
		{raw: "HTTPS://github.com/org/policy.git", scheme: "https", host: "github.com", path: "/org/policy.git", shown: "https://github.com/org/policy.git"},
		{raw: "https://x-access-token:ghs_secret@github.com/org/policy.git", scheme: "https", host: "github.com", path: "/org/policy.git",
			shown: "https://github.com/org/policy.git", stripped: true, basicUser: "x-access-token", basicSecret: "ghs_secret"},
		{raw: "https://ghp_tokenasuser@github.com/org/policy.git", scheme: "https", host: "github.com", path: "/org/policy.git",
			shown: "https://github.com/org/policy.git", stripped: true, basicUser: "ghp_tokenasuser"},
		{raw: "ssh://git@github.com/org/policy.git", scheme: "ssh", host: "github.com", path: "/org/policy.git", user: "git",
			shown: "ssh://git@github.com/org/policy.git"},
		{raw: "ssh://git:pw@github.com:2222/org/policy.git", scheme: "ssh", host: "github.com:2222", path: "/org/policy.git", user: "git",
			shown: "ssh://git@github.com:2222/org/policy.git", stripped: true},
		{raw: "git@github.com:org/policy.git", scheme: "ssh", host: "github.com", path: "org/policy.git", user: "git",
			shown: "git@github.com:org/policy.git"},
		{raw: "git://user:pw@example.com/policy.git", scheme: "git", host: "example.com", path: "/policy.git",
			shown: "git://example.com/policy.git", stripped: true},
		{raw: "ftp://example.com/policy.git", err: `scheme "ftp" is not supported`},
		{raw: "file://host/srv/policy.git", err: "want file:///absolute/path"},
		{raw: "https:///policy.git", err: "without a host"},
		{raw: "https://example.com", err: "without a repository path"},
		{raw: "https://example.com/policy.git?ref=main", err: "no query or fragment"},
		{raw: "user:secret@host:org/policy.git", err: "cannot carry a password"},
		{raw: "https://example.com/policy git", err: "whitespace"},
		{raw: "https://user:p%zz@example.com/x.git", err: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			r, err := ParseURL(tt.raw)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseURL = %+v, %v; want an error %q", r, err, tt.err)
				}
				for _, secret := range []string{"secret", "p%zz"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("the error shows the URL's password: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Scheme != tt.scheme || r.Host != tt.host || r.Path != tt.path || r.User != tt.user || r.String() != tt.shown ||
				r.Stripped != tt.stripped || r.urlUser != tt.basicUser || r.urlPassword != tt.basicSecret {
				t.Errorf("ParseURL = %+v", r)
			}
			if !IsURL(tt.raw) {
				t.Errorf("IsURL(%q) = false", tt.raw)
			}
		})
	}
	for _, dir := range []string{"./policies", "/srv/policies", "policies", "C:\\policies", "host:path", "a@b"} {
		if IsURL(dir) {
			t.Errorf("IsURL(%q) = true: a directory", dir)
		}
	}
}

func TestCacheKey(t *testing.T) {
	key := func(raw string) string {
		t.Helper()
		r, err := ParseURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		return r.CacheKey()
	}
	same := [][]string{
		{"https://github.com/org/p.git", "https://user:token@github.com/org/p.git", "https://other@github.com/org/p.git"},
		{"ssh://git@host/org/p.git", "ssh://deploy@host/org/p.git", "ssh://host/org/p.git"},
		{"git@host:org/p.git", "deploy@host:org/p.git"},
	}
	seen := map[string]string{}
	for _, group := range same {
		k := key(group[0])
		if len(k) != 16 {
			t.Errorf("CacheKey = %q, want 16 hex digits", k)
		}
		for _, raw := range group[1:] {
			if got := key(raw); got != k {
				t.Errorf("CacheKey(%s) = %s, CacheKey(%s) = %s: the userinfo changed the key", raw, got, group[0], k)
			}
		}
		if prev, dup := seen[k]; dup {
			t.Errorf("%s and %s share a clone", prev, group[0])
		}
		seen[k] = group[0]
	}
	if key("https://github.com/org/p.git") == key("https://github.com/org/q.git") {
		t.Error("two repositories share a key")
	}
}

func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"file:///srv/p.git", "git://h/p.git", "https://u:secret@h/p.git", "ssh://git:secret@h:22/p", "git@h:o/p.git",
		"secret@h:p", "https://secret@h/p", "http://[::1]:80/p.git", "ssh://u@[::1]/p", "https://h/%2e%2e/p",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := ParseURL(raw)
		if err != nil {
			return
		}
		shown := r.String()
		if r.urlPassword != "" && strings.Contains(shown, r.urlPassword) && !strings.Contains(strings.Replace(raw, r.urlPassword, "", 1), r.urlPassword) {
			t.Errorf("String() = %q shows the password of %q", shown, raw)
		}
		if u, err := url.Parse(shown); r.Scheme != "ssh" && (err != nil || u.User != nil) {
			t.Errorf("String() = %q keeps userinfo for %s (%v)", shown, r.Scheme, err)
		}
		if k := r.CacheKey(); len(k) != 16 {
			t.Errorf("CacheKey() = %q", k)
		}
		again, err := ParseURL(shown)
		if err != nil || again.String() != shown {
			t.Errorf("String() = %q does not parse back to itself: %+v, %v", shown, again, err)
		}
	})
}

func TestCredentialErrors(t *testing.T) {
	dir := t.TempDir()
	encrypted := filepath.Join(dir, "encrypted")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", encrypted).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	key := gittest.NewSSHKey(t, "charter-test")
	plain := key.Private
	notAKey := filepath.Join(dir, "token")
	os.WriteFile(notAKey, []byte("ghp_notakey_secret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	knownHosts := filepath.Join(dir, "known_hosts")
	os.WriteFile(knownHosts, []byte("example.com "+key.Public+"\n"), 0o644)

	for _, tt := range []struct {
		url   string
		creds Credentials
		want  string
	}{
		{"ssh://git@example.com/p.git", Credentials{SSHKeyFile: encrypted, KnownHostsFile: knownHosts}, "encrypted with a passphrase"},
		{"ssh://git@example.com/p.git", Credentials{SSHKeyFile: notAKey, KnownHostsFile: knownHosts}, "is not a private key"},
		{"ssh://git@example.com/p.git", Credentials{SSHKeyFile: filepath.Join(dir, "missing"), KnownHostsFile: knownHosts}, "--git-ssh-key-file: open"},
		{"ssh://git@example.com/p.git", Credentials{SSHKeyFile: plain, KnownHostsFile: filepath.Join(dir, "none")}, "the remote's host keys are required"},
		{"https://example.com/p.git", Credentials{TokenFile: empty}, "--git-token-file: " + empty + " is empty"},
	} {
		s, err := New(tt.url, Options{Credentials: tt.creds, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.connect(DefaultFetchTimeout)
		s.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "ghp_notakey_secret") {
			t.Errorf("%s with %+v: %v, want %q", tt.url, tt.creds, err, tt.want)
		}
	}
	// A good key: the auth names the key's fingerprint, never the key.
	s, err := New("ssh://git@example.com/p.git", Options{Credentials: Credentials{SSHKeyFile: plain, KnownHostsFile: knownHosts}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := s.connect(DefaultFetchTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.auth.String(); !strings.Contains(got, "SHA256:") || strings.Contains(got, "PRIVATE") {
		t.Errorf("auth.String() = %q", got)
	}
}

func TestCloneLockedAgainstAnotherSource(t *testing.T) {
	cache := t.TempDir()
	s, err := New("file:///srv/p.git", Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New("file:///srv/p.git", Options{CacheDir: cache}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("a second source on the same clone: %v", err)
	}
	s.Close()
	again, err := New("file:///srv/p.git", Options{CacheDir: cache})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}
