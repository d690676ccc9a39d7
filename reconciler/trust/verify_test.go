package trust

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
)

var ctx = context.Background()

// fixture is a repository and the keys that sign its commits: two OpenPGP
// keys and two SSH keys, of which the first of each kind is trusted.
type fixture struct {
	repo                       string
	gpgTrusted, gpgStranger    *gittest.GPGKey
	sshTrusted, sshStranger    *gittest.SSHKey
	trustedKeys, allowedSigner string // the files
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{repo: t.TempDir()}
	gittest.Init(t, f.repo)
	f.gpgTrusted = gittest.NewGPGKey(t, "Ada Author", "ada@example.com")
	f.gpgStranger = gittest.NewGPGKey(t, "Mallory", "mallory@example.com")
	f.sshTrusted = gittest.NewSSHKey(t, "ada@example.com")
	f.sshStranger = gittest.NewSSHKey(t, "mallory@example.com")
	dir := t.TempDir()
	f.trustedKeys = writeFile(t, dir, "trusted.asc", f.gpgTrusted.Public)
	f.allowedSigner = writeFile(t, dir, "allowed_signers", "# who may sign policy commits\n"+f.sshTrusted.AllowedSigner("ada@example.com", `namespaces="git"`)+"\n")
	return f
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) keys(t *testing.T) *Keys {
	t.Helper()
	k, err := Load(Files{OpenPGP: f.trustedKeys, SSH: f.allowedSigner})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (f *fixture) commit(t *testing.T, msg string, s *gittest.Signer) string {
	t.Helper()
	gittest.WriteFile(t, f.repo, "roles.cue", "package p\n// "+msg+"\n")
	if s == nil {
		return gittest.CommitAll(t, f.repo, msg)
	}
	return gittest.CommitSigned(t, f.repo, msg, *s)
}

func signer(s gittest.Signer) *gittest.Signer { return &s }

func verify(t *testing.T, k *Keys, repo, hash string) Result {
	t.Helper()
	r, err := gitrepo.Open(repo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Signed(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	res, err := k.Verify(c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := f.keys(t)
	type want struct {
		status source.SignatureStatus
		signer string // exact, when good
		reason string // a part of it, when not good
	}
	tests := []struct {
		name string
		make func() string
		want want
	}{
		{"unsigned", func() string { return f.commit(t, "unsigned", nil) }, want{source.SignatureNone, "", "not signed"}},
		{"OpenPGP, trusted", func() string { return f.commit(t, "gpg", signer(f.gpgTrusted.Signer())) },
			want{source.SignatureGood, f.gpgTrusted.Fingerprint, ""}},
		{"OpenPGP, not trusted", func() string { return f.commit(t, "gpg stranger", signer(f.gpgStranger.Signer())) },
			want{source.SignatureBad, "", "not trusted: signed by OpenPGP key " + f.gpgStranger.Fingerprint + ", which is not in " + f.trustedKeys}},
		{"OpenPGP, tampered", func() string {
			return gittest.Tamper(t, f.repo, f.commit(t, "gpg", signer(f.gpgTrusted.Signer())), "evil")
		}, want{source.SignatureBad, "", "invalid: the OpenPGP signature by key " + f.gpgTrusted.Fingerprint + " does not verify"}},
		{"SSH, trusted", func() string { return f.commit(t, "ssh", signer(f.sshTrusted.Signer())) },
			want{source.SignatureGood, "ada@example.com " + f.sshTrusted.Fingerprint, ""}},
		{"SSH, not trusted", func() string { return f.commit(t, "ssh stranger", signer(f.sshStranger.Signer())) },
			want{source.SignatureBad, "", "not trusted: signed by SSH key " + f.sshStranger.Fingerprint + ", which no line of " + f.allowedSigner + " allows"}},
		{"SSH, tampered", func() string {
			return gittest.Tamper(t, f.repo, f.commit(t, "ssh", signer(f.sshTrusted.Signer())), "evil")
		}, want{source.SignatureBad, "", "invalid: the SSH signature by key " + f.sshTrusted.Fingerprint + " does not verify"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := verify(t, k, f.repo, tt.make())
			if got.Status != tt.want.status || tt.want.status == source.SignatureGood && got.Signer != tt.want.signer ||
				tt.want.status != source.SignatureGood && (got.Signer != "" || !strings.Contains(got.Reason, tt.want.reason)) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestVerifyOneKindTrusted: a signature of a kind for which no key is
// trusted is bad, and says so.
func TestVerifyOneKindTrusted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pgpOnly, err := Load(Files{OpenPGP: f.trustedKeys})
	if err != nil {
		t.Fatal(err)
	}
	sshOnly, err := Load(Files{SSH: f.allowedSigner})
	if err != nil {
		t.Fatal(err)
	}
	sshCommit := f.commit(t, "ssh", signer(f.sshTrusted.Signer()))
	if got := verify(t, pgpOnly, f.repo, sshCommit); got.Status != source.SignatureBad || !strings.Contains(got.Reason, "no SSH signer is trusted (--trusted-ssh-signers)") {
		t.Errorf("SSH-signed with OpenPGP keys only: %+v", got)
	}
	gpgCommit := f.commit(t, "gpg", signer(f.gpgTrusted.Signer()))
	if got := verify(t, sshOnly, f.repo, gpgCommit); got.Status != source.SignatureBad || !strings.Contains(got.Reason, "no OpenPGP key is trusted (--trusted-keys)") {
		t.Errorf("OpenPGP-signed with SSH signers only: %+v", got)
	}
}

// TestVerifyAllowedSignerOptions: a line's namespaces and validity window
// decide, at the commit's committer time, as git's ssh-keygen -Y verify
// -Overify-time does.
func TestVerifyAllowedSignerOptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	gittest.WriteFile(t, f.repo, "roles.cue", "package p\n")
	gittest.Git(t, f.repo, "add", "-A")
	s := f.sshTrusted.Signer()
	args := []string{}
	for _, c := range s.Config {
		args = append(args, "-c", c)
	}
	date := []string{"GIT_COMMITTER_DATE=2025-06-01T12:00:00Z", "GIT_AUTHOR_DATE=2025-06-01T12:00:00Z"}
	gittest.GitEnv(t, f.repo, date, append(args, "commit", "-q", "-S", "-m", "dated")...)
	hash := gittest.Git(t, f.repo, "rev-parse", "HEAD")
	tests := []struct {
		options string
		good    bool
		reason  string
	}{
		{``, true, ""},
		{`namespaces="git"`, true, ""},
		{`namespaces="file,g*"`, true, ""},
		{`namespaces="file"`, false, `:2: namespaces="file" does not allow "git"`},
		{`namespaces="*,!git"`, false, `:2: namespaces="*,!git" does not allow "git"`},
		{`valid-after="20250101Z",valid-before="20260101Z"`, true, ""},
		{`valid-after="20250701Z"`, false, ":2: the key is valid after 2025-07-01T00:00:00Z, and the commit is dated 2025-06-01T12:00:00Z"},
		{`valid-before="20250531Z"`, false, ":2: the key is valid before 2025-05-31T00:00:00Z, and the commit is dated 2025-06-01T12:00:00Z"},
	}
	for _, tt := range tests {
		file := writeFile(t, t.TempDir(), "allowed_signers", f.sshStranger.AllowedSigner("mallory@example.com", "")+"\n"+f.sshTrusted.AllowedSigner("ada@example.com,ops@example.com", tt.options)+"\n")
		k, err := Load(Files{SSH: file})
		if err != nil {
			t.Fatal(err)
		}
		got := verify(t, k, f.repo, hash)
		if tt.good {
			if got.Status != source.SignatureGood || got.Signer != "ada@example.com,ops@example.com "+f.sshTrusted.Fingerprint {
				t.Errorf("options %s: %+v, want good", tt.options, got)
			}
			continue
		}
		if got.Status != source.SignatureBad || !strings.Contains(got.Reason, file+tt.reason) {
			t.Errorf("options %s: %+v, want bad with %q", tt.options, got, file+tt.reason)
		}
	}
}

// TestVerifySSHNamespace: a signature made for another namespace than git
// (ssh-keygen -Y sign -n file) does not sign a commit, even by a trusted
// key.
func TestVerifySSHNamespace(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	unsigned := f.commit(t, "unsigned", nil)
	raw := gittest.Git(t, f.repo, "cat-file", "commit", unsigned) + "\n"
	dir := t.TempDir()
	payload := writeFile(t, dir, "payload", raw)
	out, err := exec.Command("ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f", f.sshTrusted.Private, payload).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(payload + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	head, msg, _ := strings.Cut(raw, "\n\n")
	obj := head + "\ngpgsig " + strings.ReplaceAll(strings.TrimSpace(string(sig)), "\n", "\n ") + "\n\n" + msg
	hash := gittest.Git(t, f.repo, "hash-object", "-t", "commit", "-w", writeFile(t, dir, "obj", obj))
	got := verify(t, f.keys(t), f.repo, hash)
	if got.Status != source.SignatureBad || !strings.Contains(got.Reason, `for namespace "file", not "git"`) {
		t.Errorf("%+v", got)
	}
}

// TestVerifySSHCertificate: a commit signed with an SSH certificate is good
// when its authority has a cert-authority line whose principals match one
// of the certificate's.
func TestVerifySSHCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ca := gittest.NewSSHKey(t, "ca")
	user := gittest.NewSSHKey(t, "ada")
	out, err := exec.Command("ssh-keygen", "-q", "-s", ca.Private, "-I", "ada", "-n", "ada@example.com", user.Private+".pub").CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -s: %v\n%s", err, out)
	}
	hash := gittest.CommitSigned(t, f.repo, "cert", gittest.Signer{Config: []string{"gpg.format=ssh", "user.signingkey=" + user.Private + "-cert.pub"}})
	for _, tt := range []struct {
		line string
		good bool
	}{
		{ca.AllowedSigner("*@example.com", "cert-authority"), true},
		{ca.AllowedSigner("bob@example.com", "cert-authority"), false},
		{ca.AllowedSigner("*@example.com", ""), false},     // the CA's key, not as an authority
		{user.AllowedSigner("ada@example.com", ""), false}, // the bare key does not stand for its certificate
	} {
		k, err := Load(Files{SSH: writeFile(t, t.TempDir(), "allowed", tt.line+"\n")})
		if err != nil {
			t.Fatal(err)
		}
		got := verify(t, k, f.repo, hash)
		if tt.good != (got.Status == source.SignatureGood) || tt.good && got.Signer != "ada@example.com "+user.Fingerprint {
			t.Errorf("line %q: %+v", tt.line, got)
		}
	}
}

// TestKeysReread: the key files are read again at each check: a key added
// to the file is trusted at once, a file made unparsable is an error naming
// file and line, and a file restored is used again.
func TestKeysReread(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	k := f.keys(t)
	hash := f.commit(t, "by the stranger", signer(f.sshStranger.Signer()))
	r, err := gitrepo.Open(f.repo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Signed(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	before := k.Digest()
	if res, _ := k.Verify(c); res.Status != source.SignatureBad {
		t.Fatalf("before: %+v", res)
	}
	good := "ada@example.com " + f.sshTrusted.Public + "\nmallory@example.com " + f.sshStranger.Public + "\n"
	writeFile(t, filepath.Dir(f.allowedSigner), "allowed_signers", good)
	if res, err := k.Verify(c); err != nil || res.Status != source.SignatureGood || res.Signer != "mallory@example.com "+f.sshStranger.Fingerprint {
		t.Errorf("after adding the key: %+v, %v", res, err)
	}
	if k.Digest() == before {
		t.Error("the digest did not change with the file")
	}
	writeFile(t, filepath.Dir(f.allowedSigner), "allowed_signers", good+"broken\n")
	_, err = k.Verify(c)
	var errs ParseErrors
	if !errors.As(err, &errs) || !strings.Contains(err.Error(), f.allowedSigner+":3:7: missing key") {
		t.Errorf("after breaking the file: %v", err)
	}
	os.Remove(f.allowedSigner)
	if _, err := k.Verify(c); err == nil || !strings.Contains(err.Error(), f.allowedSigner) {
		t.Errorf("after removing the file: %v", err)
	}
	writeFile(t, filepath.Dir(f.allowedSigner), "allowed_signers", good)
	if res, err := k.Verify(c); err != nil || res.Status != source.SignatureGood {
		t.Errorf("after restoring the file: %+v, %v", res, err)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	private := f.gpgTrusted.ExportSecret(t)
	tests := []struct {
		files Files
		want  string
	}{
		{Files{}, "no file named"},
		{Files{OpenPGP: filepath.Join(dir, "missing.asc")}, "missing.asc: no such file"},
		{Files{OpenPGP: writeFile(t, dir, "empty.asc", "")}, "empty.asc:1: no armored public key"},
		{Files{OpenPGP: writeFile(t, dir, "ssh.asc", f.sshTrusted.Public)}, "ssh.asc:1: no armored public key"},
		{Files{OpenPGP: writeFile(t, dir, "two.asc", f.gpgTrusted.Public+"\n"+armorBegin+"\n\nnot base64\n-----END PGP PUBLIC KEY BLOCK-----\n")},
			"two.asc:" + lineAfter(f.gpgTrusted.Public) + ": the public key block does not parse"},
		{Files{OpenPGP: writeFile(t, dir, "secret.asc", "# mine\n"+private)}, "secret.asc:2: a private key"},
		{Files{SSH: writeFile(t, dir, "none", "# nobody\n")}, "none holds no key"},
		{Files{SSH: writeFile(t, dir, "bad", "ada@example.com ssh-ed25519\n")}, "bad:1:28: missing the base64 key"},
	}
	for _, tt := range tests {
		if _, err := Load(tt.files); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%+v) = %v, want %q", tt.files, err, tt.want)
		}
	}
	both := writeFile(t, dir, "both.asc", f.gpgTrusted.Public+f.gpgStranger.Public)
	k, err := Load(Files{OpenPGP: both})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(k.current().openpgp); n != 2 {
		t.Errorf("two concatenated exports: %d keys, want 2", n)
	}
}

// lineAfter returns the number of the line that follows text and a newline.
func lineAfter(text string) string { return strconv.Itoa(strings.Count(text+"\n", "\n") + 1) }
