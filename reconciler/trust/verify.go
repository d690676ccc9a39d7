package trust

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
)

// SSHNamespace is the namespace git signs commits in (ssh-keygen -Y sign -n
// git); a signature made for another namespace does not sign a commit.
const SSHNamespace = "git"

// Result is the outcome of checking one commit's signature.
type Result struct {
	Status source.SignatureStatus
	// Signer names who made a good signature: the OpenPGP primary key's
	// fingerprint (40 upper-case hex digits), or the allowed signer's
	// principals and the SSH key's fingerprint ("ada@example.com
	// SHA256:…"). Empty unless Status is good.
	Signer string
	// Reason says why the signature is not good: "not signed", or
	// "invalid: …" (it does not verify) or "not trusted: …" (it verifies,
	// or cannot be checked, but no trusted key made it). Empty when good.
	Reason string
}

func bad(format string, args ...any) Result {
	return Result{Status: source.SignatureBad, Reason: fmt.Sprintf(format, args...)}
}

// Verify checks the signature of the commit c against the trusted keys as
// their files hold them now. A file that cannot be read or parsed is an
// error (the commit cannot be judged); every verdict on the commit itself
// is in the Result.
func (k *Keys) Verify(c *gitrepo.SignedCommit) (Result, error) {
	set := k.current()
	if set.err != nil {
		return Result{}, set.err
	}
	return set.verify(k.files, c), nil
}

// verify checks c's signature against the key set. A panic in a parsing
// library, on a signature anyone can push, is a bad signature, never a
// crash of the sidecar.
func (s *keySet) verify(files Files, c *gitrepo.SignedCommit) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = bad("invalid: the signature crashed its parser: %v", p)
		}
	}()
	sig := c.Signature
	if len(bytes.TrimSpace(sig)) == 0 {
		return Result{Status: source.SignatureNone, Reason: "not signed"}
	}
	if n := bytes.Count(sig, []byte("-----BEGIN ")); n > 1 {
		return bad("invalid: %d signature blocks where git makes one", n)
	}
	switch {
	case bytes.HasPrefix(sig, []byte("-----BEGIN PGP SIGNATURE-----")):
		return s.verifyOpenPGP(files.OpenPGP, sig, c.Payload)
	case bytes.HasPrefix(sig, []byte("-----BEGIN SSH SIGNATURE-----")):
		return s.verifySSH(files.SSH, sig, c.Payload, c.Committer.When)
	case bytes.HasPrefix(sig, []byte("-----BEGIN SIGNED MESSAGE-----")), bytes.HasPrefix(sig, []byte("-----BEGIN CERTIFICATE-----")):
		return bad("not trusted: an X.509 (gpgsm) signature, which Charter does not verify: sign with OpenPGP or SSH")
	}
	return bad("invalid: the signature is of no kind git makes (OpenPGP, SSH or X.509)")
}

// verifyOpenPGP checks an armored OpenPGP signature over payload.
func (s *keySet) verifyOpenPGP(file string, sig, payload []byte) Result {
	issuer, err := openPGPIssuer(sig)
	if err != nil {
		return bad("invalid: the OpenPGP signature does not parse: %v", err)
	}
	if len(s.openpgp) == 0 {
		return bad("not trusted: signed by OpenPGP key %s, and no OpenPGP key is trusted (--trusted-keys)", issuer)
	}
	signer, err := openpgp.CheckArmoredDetachedSignature(s.openpgp, bytes.NewReader(payload), bytes.NewReader(sig), nil)
	switch {
	case err == nil:
		return Result{Status: source.SignatureGood, Signer: fingerprint(signer)}
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return bad("not trusted: signed by OpenPGP key %s, which is not in %s", issuer, file)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return bad("not trusted: OpenPGP key %s has expired", fingerprintOr(signer, issuer))
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return bad("not trusted: OpenPGP key %s is revoked", fingerprintOr(signer, issuer))
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return bad("not trusted: the signature by OpenPGP key %s has expired", fingerprintOr(signer, issuer))
	}
	return bad("invalid: the OpenPGP signature by key %s does not verify (the commit was changed after it was signed, or the signature is damaged): %v", issuer, err)
}

// openPGPIssuer names the key that made an armored OpenPGP signature: its
// fingerprint when the signature carries it, else its key ID.
func openPGPIssuer(sig []byte) (string, error) {
	block, err := armor.Decode(bytes.NewReader(sig))
	if err != nil {
		return "", err
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		return "", err
	}
	sp, ok := p.(*packet.Signature)
	if !ok {
		return "", fmt.Errorf("a %T packet where a signature was expected", p)
	}
	switch {
	case len(sp.IssuerFingerprint) > 0:
		return strings.ToUpper(hex.EncodeToString(sp.IssuerFingerprint)), nil
	case sp.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sp.IssuerKeyId), nil
	}
	return "", errors.New("the signature names no issuer")
}

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

func fingerprintOr(e *openpgp.Entity, issuer string) string {
	if e != nil && e.PrimaryKey != nil {
		return fingerprint(e)
	}
	return issuer
}

// verifySSH checks an armored SSH signature over payload, then looks for an
// allowed signer of its key that allows the namespace git at the commit's
// time when, as git does (ssh-keygen -Y verify -Overify-time).
func (s *keySet) verifySSH(file string, sig, payload []byte, when time.Time) Result {
	parsed, err := sshsig.Unarmor(sig)
	if err != nil {
		return bad("invalid: the SSH signature does not parse: %v", err)
	}
	if parsed.Namespace != SSHNamespace {
		return bad("invalid: the SSH signature is for namespace %q, not %q: it does not sign a commit", parsed.Namespace, SSHNamespace)
	}
	signing := parsed.PublicKey
	cert, isCert := signing.(*ssh.Certificate)
	if isCert {
		signing = cert.Key
	}
	fp := ssh.FingerprintSHA256(signing)
	if err := sshsig.Verify(bytes.NewReader(payload), parsed, parsed.PublicKey, parsed.HashAlgorithm, SSHNamespace); err != nil {
		return bad("invalid: the SSH signature by key %s does not verify (the commit was changed after it was signed, or the signature is damaged): %v", fp, err)
	}
	if len(s.ssh) == 0 {
		return bad("not trusted: signed by SSH key %s, and no SSH signer is trusted (--trusted-ssh-signers)", fp)
	}
	var why []string
	for _, line := range s.ssh {
		principal := line.Principals
		switch {
		case line.CertAuthority:
			if !isCert || !sameKey(cert.SignatureKey, line.Key) {
				continue
			}
			p, err := certPrincipal(cert, line.Principals, when)
			if err != nil {
				why = append(why, fmt.Sprintf("%s:%d: %v", file, line.Line, err))
				continue
			}
			principal = p
		case isCert || !sameKey(line.Key, signing):
			continue
		}
		if line.Namespaces != "" && matchPatternList(SSHNamespace, line.Namespaces) != 1 {
			why = append(why, fmt.Sprintf("%s:%d: namespaces=%q does not allow %q", file, line.Line, line.Namespaces, SSHNamespace))
			continue
		}
		if !line.ValidAfter.IsZero() && when.Before(line.ValidAfter) {
			why = append(why, fmt.Sprintf("%s:%d: the key is valid after %s, and the commit is dated %s", file, line.Line, line.ValidAfter.Format(time.RFC3339), when.Format(time.RFC3339)))
			continue
		}
		if !line.ValidBefore.IsZero() && when.After(line.ValidBefore) {
			why = append(why, fmt.Sprintf("%s:%d: the key is valid before %s, and the commit is dated %s", file, line.Line, line.ValidBefore.Format(time.RFC3339), when.Format(time.RFC3339)))
			continue
		}
		return Result{Status: source.SignatureGood, Signer: principal + " " + fp}
	}
	if len(why) > 0 {
		return bad("not trusted: SSH key %s: %s", fp, strings.Join(why, "; "))
	}
	if isCert {
		return bad("not trusted: signed by SSH key %s with a certificate by %s, which no cert-authority line of %s allows", fp, ssh.FingerprintSHA256(cert.SignatureKey), file)
	}
	return bad("not trusted: signed by SSH key %s, which no line of %s allows", fp, file)
}

func sameKey(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// certPrincipal returns the first principal of a user certificate that the
// line's principal patterns allow, once the certificate is checked (its
// authority's signature, its validity at when).
func certPrincipal(cert *ssh.Certificate, patterns string, when time.Time) (string, error) {
	if cert.CertType != ssh.UserCert {
		return "", errors.New("the certificate is not a user certificate")
	}
	checker := &ssh.CertChecker{Clock: func() time.Time { return when }}
	var lastErr error
	for _, p := range cert.ValidPrincipals {
		if matchPatternList(p, patterns) != 1 {
			continue
		}
		if lastErr = checker.CheckCert(p, cert); lastErr == nil {
			return p, nil
		}
	}
	if lastErr != nil {
		return "", fmt.Errorf("the certificate does not check: %v", lastErr)
	}
	return "", fmt.Errorf("no principal of the certificate (%s) matches %q", strings.Join(cert.ValidPrincipals, ","), patterns)
}
