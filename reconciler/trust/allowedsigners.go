package trust

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// AllowedSigner is one line of an allowed_signers file (ssh-keygen(1),
// ALLOWED SIGNERS): who may sign with a key, and for what.
type AllowedSigner struct {
	// Line is the line's number in its file, from 1.
	Line int
	// Principals is the line's first field as written: comma-separated
	// patterns of the identities the key signs for ("ada@example.com").
	Principals string
	// Key is the public key; with CertAuthority, the key of a certificate
	// authority.
	Key ssh.PublicKey
	// CertAuthority: the key is a certificate authority, trusted for the
	// certificates it issues, not a signing key itself.
	CertAuthority bool
	// Namespaces is the namespaces= pattern list, empty when the line has
	// none (any namespace).
	Namespaces string
	// ValidAfter and ValidBefore bound when the key may sign (compared with
	// the commit's committer time, as git does); zero when unbounded.
	ValidAfter, ValidBefore time.Time
}

// ParseError is a mistake in a trusted-keys file, at a position.
type ParseError struct {
	File string
	Line int
	// Col is the byte column on the line, from 1; 0 for the whole line.
	Col int
	Msg string
}

func (e *ParseError) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ParseErrors are every mistake found in one file, in order.
type ParseErrors []*ParseError

func (e ParseErrors) Error() string {
	msgs := make([]string, len(e))
	for i, pe := range e {
		msgs[i] = pe.Error()
	}
	return strings.Join(msgs, "\n")
}

// maxParseErrors bounds the mistakes one file reports.
const maxParseErrors = 20

// ParseAllowedSigners parses git's allowed_signers format (the format of
// ssh-keygen -Y verify -f, which git's gpg.ssh.allowedSignersFile names):
// one signer a line, "principals [options] keytype base64-key [comment]",
// with blank lines and lines starting with # ignored. The options are
// cert-authority, namespaces="…", valid-after="…" and valid-before="…"
// (YYYYMMDD[HHMM[SS]], UTC with a trailing Z, else local time); names are
// case-insensitive, values quoted, as OpenSSH reads them. file names the
// file in errors. Every mistake is reported, as ParseErrors, each with its
// line and column.
func ParseAllowedSigners(file string, data []byte) ([]AllowedSigner, error) {
	var (
		signers []AllowedSigner
		errs    ParseErrors
	)
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		s, err := parseSignerLine(string(line))
		if err != nil {
			err.File, err.Line = file, n+1
			if errs = append(errs, err); len(errs) == maxParseErrors {
				break
			}
			continue
		}
		if s != nil {
			s.Line = n + 1
			signers = append(signers, *s)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return signers, nil
}

// lineScanner reads one line of an allowed_signers file.
type lineScanner struct {
	line string
	pos  int // byte offset of what is left
}

// errorf returns a ParseError at the byte offset at (File and Line are set
// by the caller).
func (l *lineScanner) errorf(at int, format string, args ...any) *ParseError {
	return &ParseError{Col: at + 1, Msg: fmt.Sprintf(format, args...)}
}

func (l *lineScanner) skipSpace() {
	for l.pos < len(l.line) && (l.line[l.pos] == ' ' || l.line[l.pos] == '\t') {
		l.pos++
	}
}

func (l *lineScanner) done() bool { return l.pos >= len(l.line) }

// word returns the text up to the next space or tab.
func (l *lineScanner) word() string {
	start := l.pos
	for l.pos < len(l.line) && l.line[l.pos] != ' ' && l.line[l.pos] != '\t' {
		l.pos++
	}
	return l.line[start:l.pos]
}

// parseSignerLine parses one line; nil, nil for a blank or comment line.
func parseSignerLine(line string) (*AllowedSigner, *ParseError) {
	l := &lineScanner{line: line}
	l.skipSpace()
	if l.done() || line[l.pos] == '#' {
		return nil, nil
	}
	s := &AllowedSigner{}
	start := l.pos
	if line[l.pos] == '"' {
		end := strings.IndexByte(line[l.pos+1:], '"')
		if end < 0 {
			return nil, l.errorf(start, "the quoted principals have no closing quote")
		}
		s.Principals = line[l.pos+1 : l.pos+1+end]
		l.pos += end + 2
		if !l.done() && line[l.pos] != ' ' && line[l.pos] != '\t' {
			return nil, l.errorf(l.pos, "want a space after the quoted principals")
		}
	} else {
		s.Principals = l.word()
	}
	if s.Principals == "" {
		return nil, l.errorf(start, "empty principals: want the identities the key signs for, such as ada@example.com")
	}
	l.skipSpace()
	if l.done() {
		return nil, l.errorf(l.pos, "missing key: want [options] keytype base64-key after the principals")
	}
	// As OpenSSH does: a known key type here is the key; anything else is
	// the options, then the key.
	w := l.peekWord()
	if w == dsaKeyType {
		return nil, l.errorf(l.pos, "ssh-dss (DSA) keys are not accepted: they are insecure; sign with an ssh-ed25519 key")
	}
	if !isKeyType(w) {
		if err := l.options(s); err != nil {
			return nil, err
		}
		l.skipSpace()
		if l.done() {
			return nil, l.errorf(l.pos, "missing key: want keytype base64-key after the options")
		}
	}
	if err := l.key(s); err != nil {
		return nil, err
	}
	return s, nil
}

// peekWord returns the next word without consuming it.
func (l *lineScanner) peekWord() string {
	pos := l.pos
	w := l.word()
	l.pos = pos
	return w
}

// options parses option[,option...] up to the next space or tab.
func (l *lineScanner) options(s *AllowedSigner) *ParseError {
	seen := map[string]bool{}
	for {
		start := l.pos
		end := l.pos
		for end < len(l.line) && l.line[end] != '=' && l.line[end] != ',' && l.line[end] != ' ' && l.line[end] != '\t' {
			end++
		}
		name := strings.ToLower(l.line[l.pos:end])
		l.pos = end
		hasValue := end < len(l.line) && l.line[end] == '='
		switch name {
		case "cert-authority":
			if hasValue {
				return l.errorf(start, "cert-authority takes no value")
			}
			s.CertAuthority = true
		case "namespaces", "valid-after", "valid-before":
			if !hasValue {
				return l.errorf(start, "%s needs a quoted value: %s=\"…\"", name, name)
			}
			if seen[name] {
				return l.errorf(start, "%s is given twice", name)
			}
			l.pos++ // the '='
			valueAt := l.pos
			value, err := l.quoted()
			if err != nil {
				return err
			}
			switch name {
			case "namespaces":
				s.Namespaces = value
			case "valid-after", "valid-before":
				t, ok := parseSignerTime(value)
				if !ok {
					return l.errorf(valueAt, "%s %q is not a time: want YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with a trailing Z for UTC", name, value)
				}
				if name == "valid-after" {
					s.ValidAfter = t
				} else {
					s.ValidBefore = t
				}
			}
		case "":
			return l.errorf(start, "empty option")
		default:
			if !isPrintable(name) {
				return l.errorf(start, "unknown key type or option (a key type such as ssh-ed25519, or an option: cert-authority, namespaces, valid-after, valid-before)")
			}
			return l.errorf(start, "unknown key type or option %q (a key type such as ssh-ed25519, or an option: cert-authority, namespaces, valid-after, valid-before)", name)
		}
		seen[name] = true
		if l.done() || l.line[l.pos] == ' ' || l.line[l.pos] == '\t' {
			break
		}
		if l.line[l.pos] != ',' {
			return l.errorf(l.pos, "want a comma or a space after option %s", name)
		}
		l.pos++
		if l.done() || l.line[l.pos] == ' ' || l.line[l.pos] == '\t' {
			return l.errorf(l.pos, "an option list cannot end with a comma")
		}
	}
	if !s.ValidAfter.IsZero() && !s.ValidBefore.IsZero() && !s.ValidBefore.After(s.ValidAfter) {
		return l.errorf(0, "valid-before is not after valid-after")
	}
	return nil
}

// quoted reads a double-quoted value in which \" stands for a quote.
func (l *lineScanner) quoted() (string, *ParseError) {
	if l.done() || l.line[l.pos] != '"' {
		return "", l.errorf(l.pos, "want a quoted value (\"…\")")
	}
	start := l.pos
	l.pos++
	var b strings.Builder
	for !l.done() && l.line[l.pos] != '"' {
		if l.line[l.pos] == '\\' && l.pos+1 < len(l.line) && l.line[l.pos+1] == '"' {
			l.pos++
		}
		b.WriteByte(l.line[l.pos])
		l.pos++
	}
	if l.done() {
		return "", l.errorf(start, "the quoted value has no closing quote")
	}
	l.pos++
	return b.String(), nil
}

// key parses "keytype base64-key [comment]".
func (l *lineScanner) key(s *AllowedSigner) *ParseError {
	typeAt := l.pos
	keyType := l.word()
	if !isKeyType(keyType) {
		if !isPrintable(keyType) {
			return l.errorf(typeAt, "unknown key type: want one such as ssh-ed25519")
		}
		return l.errorf(typeAt, "unknown key type %q: want one such as ssh-ed25519", keyType)
	}
	l.skipSpace()
	if l.done() {
		return l.errorf(l.pos, "missing the base64 key after %s", keyType)
	}
	keyAt := l.pos
	blob, err := base64.StdEncoding.DecodeString(l.word())
	if err != nil {
		return l.errorf(keyAt, "the %s key is not valid base64", keyType)
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return l.errorf(keyAt, "the %s key does not parse: %v", keyType, err)
	}
	if pub.Type() != keyType {
		return l.errorf(keyAt, "the key is a %s key, but the line says %s", pub.Type(), keyType)
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return l.errorf(typeAt, "a certificate cannot be an allowed signer: name the key of its authority with the cert-authority option")
	}
	s.Key = pub
	return nil // the rest of the line is a comment
}

// dsaKeyType is DSA's key type, refused: OpenSSH no longer signs with it.
const dsaKeyType = "ssh-dss"

// isKeyType reports whether t names an SSH public key type (DSA aside).
func isKeyType(t string) bool {
	switch t {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoRSA,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return true
	}
	return strings.HasSuffix(t, "-cert-v01@openssh.com")
}

// isPrintable reports whether s is short printable ASCII, fit to quote in
// a message.
func isPrintable(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseSignerTime parses OpenSSH's absolute time: YYYYMMDD, YYYYMMDDHHMM or
// YYYYMMDDHHMMSS, in UTC with a trailing Z, else in local time.
func parseSignerTime(s string) (time.Time, bool) {
	loc := time.Local
	if rest, ok := strings.CutSuffix(s, "Z"); ok {
		s, loc = rest, time.UTC
	}
	var layout string
	switch len(s) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, false
		}
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil || t.Unix() <= 0 {
		return time.Time{}, false
	}
	return t, true
}

// matchPatternList matches s against a comma-separated list of patterns,
// as OpenSSH's match_pattern_list does: 1 when a pattern matches, -1 when a
// negated one (!pattern) does, which wins, else 0.
func matchPatternList(s, list string) int {
	got := 0
	for p := range strings.SplitSeq(list, ",") {
		negated := strings.HasPrefix(p, "!")
		if negated {
			p = p[1:]
		}
		if matchPattern(s, p) {
			if negated {
				return -1
			}
			got = 1
		}
	}
	return got
}

// matchPattern matches s against a pattern in which * matches any run of
// bytes and ? any one byte.
func matchPattern(s, p string) bool {
	// Iterative, with one backtrack point: linear in practice, never
	// exponential.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
