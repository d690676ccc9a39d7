package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Signer makes signed commits: the git configuration and environment that
// git commit -S needs to sign with one key.
type Signer struct {
	// Config holds "name=value" git configuration (passed with -c).
	Config []string
	// Env holds extra environment variables ("NAME=value").
	Env []string
}

// GPGKey is an OpenPGP signing key made with gpg in a temporary GNUPGHOME,
// without a passphrase. Its agent is stopped when the test ends.
type GPGKey struct {
	// Home is the key's GNUPGHOME.
	Home string
	// Fingerprint is the primary key's fingerprint, upper-case hex.
	Fingerprint string
	// Public is the armored public key (gpg --export --armor).
	Public string
}

// NewGPGKey makes an ed25519 OpenPGP key for the user ID "name <email>"
// with gpg --batch --quick-gen-key.
func NewGPGKey(t testing.TB, name, email string) *GPGKey {
	t.Helper()
	// gpg-agent's socket path must stay short: not below t.TempDir().
	home, err := os.MkdirTemp("", "gnupg")
	if err != nil {
		t.Fatal(err)
	}
	k := &GPGKey{Home: home}
	t.Cleanup(func() {
		// Stop the agent gpg started for this home, then remove it.
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	k.gpg(t, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", name+" <"+email+">", "ed25519", "sign", "never")
	for line := range strings.SplitSeq(k.gpg(t, "--with-colons", "--list-keys", email), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			k.Fingerprint = f[9]
			break
		}
	}
	if k.Fingerprint == "" {
		t.Fatalf("gpg made no key for %s", email)
	}
	k.Public = k.gpg(t, "--armor", "--export", k.Fingerprint)
	return k
}

// gpg runs gpg in batch mode with the key's home and returns its output.
func (k *GPGKey) gpg(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--quiet"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+k.Home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Signer signs commits with this key (gpg.format openpgp).
func (k *GPGKey) Signer() Signer {
	return Signer{
		Config: []string{"gpg.format=openpgp", "user.signingkey=" + k.Fingerprint},
		Env:    []string{"GNUPGHOME=" + k.Home},
	}
}

// SSHKey is an ed25519 SSH key pair made with ssh-keygen, without a
// passphrase.
type SSHKey struct {
	// Private is the private key's file.
	Private string
	// Public is the public key's line: "ssh-ed25519 AAAA… comment".
	Public string
	// Fingerprint is its SHA256 fingerprint ("SHA256:…").
	Fingerprint string
}

// NewSSHKey makes an ed25519 key pair in a temporary directory with
// ssh-keygen, commented with comment.
func NewSSHKey(t testing.TB, comment string) *SSHKey {
	t.Helper()
	priv := filepath.Join(t.TempDir(), "id_ed25519")
	runTool(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", priv)
	pub, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fp := strings.Fields(runTool(t, "ssh-keygen", "-l", "-E", "sha256", "-f", priv+".pub"))
	if len(fp) < 2 {
		t.Fatalf("ssh-keygen -l: %q", fp)
	}
	return &SSHKey{Private: priv, Public: strings.TrimSpace(string(pub)), Fingerprint: fp[1]}
}

// Signer signs commits with this key (gpg.format ssh).
func (k *SSHKey) Signer() Signer {
	return Signer{Config: []string{"gpg.format=ssh", "user.signingkey=" + k.Private}}
}

// AllowedSigner returns the key's line for an allowed_signers file, for
// principal and with options ("" for none).
func (k *SSHKey) AllowedSigner(principal, options string) string {
	if options != "" {
		return principal + " " + options + " " + k.Public
	}
	return principal + " " + k.Public
}

// CommitSigned commits every change in the work tree at dir (none is
// fine) with a signature by s, and returns the new commit's hash.
func CommitSigned(t testing.TB, dir, msg string, s Signer) string {
	t.Helper()
	Git(t, dir, "add", "-A")
	args := make([]string, 0, 2*len(s.Config)+6)
	for _, c := range s.Config {
		args = append(args, "-c", c)
	}
	args = append(args, "commit", "-q", "--allow-empty", "-S", "-m", msg)
	GitEnv(t, dir, s.Env, args...)
	return Git(t, dir, "rev-parse", "HEAD")
}

// Tamper writes a copy of the commit rev names with its message replaced
// by msg, its signature kept, and moves the current branch to it: a commit
// whose signature no longer matches. It returns the new commit's hash.
func Tamper(t testing.TB, dir, rev, msg string) string {
	t.Helper()
	raw := Git(t, dir, "cat-file", "commit", rev)
	head, _, ok := strings.Cut(raw, "\n\n")
	if !ok {
		t.Fatalf("commit %s has no message", rev)
	}
	obj := filepath.Join(t.TempDir(), "commit")
	if err := os.WriteFile(obj, []byte(head+"\n\n"+msg+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hash := Git(t, dir, "hash-object", "-t", "commit", "-w", obj)
	Git(t, dir, "reset", "-q", "--soft", hash)
	return hash
}

func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ExportSecret returns the armored private key (for tests that a private
// key is refused where a public one belongs).
func (k *GPGKey) ExportSecret(t testing.TB) string {
	t.Helper()
	return k.gpg(t, "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", k.Fingerprint)
}
