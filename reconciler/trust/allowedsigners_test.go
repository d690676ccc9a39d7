package trust

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	edKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE6xsSPvjA33ksRJ+dSwA0ULtndRwG/UzfSRbGI+vsUo"
	ecdsaKey = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBP30zmGysFNGOZhIuN4H/FJu0NdMri137Q0AliNcTEERo84eqJSTUeYTtqGdLVFOI0KSWMncKs9w9ylszycEG3Q="
)

func TestParseAllowedSigners(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, in string
		want     []AllowedSigner // Key is compared by type only
	}{
		{"one key", "ada@example.com " + edKey + "\n",
			[]AllowedSigner{{Line: 1, Principals: "ada@example.com"}}},
		{"comment after the key", "ada@example.com " + edKey + " ada's laptop\n",
			[]AllowedSigner{{Line: 1, Principals: "ada@example.com"}}},
		{"blank lines, comments, CRLF, no final newline", "# team\r\n\r\n   \n\t# indented comment\nada@example.com,bob@example.com " + ecdsaKey + "\r\nbob@example.com\t" + edKey,
			[]AllowedSigner{{Line: 5, Principals: "ada@example.com,bob@example.com"}, {Line: 6, Principals: "bob@example.com"}}},
		{"quoted principals", `"ada@example.com" ` + edKey + "\n",
			[]AllowedSigner{{Line: 1, Principals: "ada@example.com"}}},
		{"namespaces", `*@example.com namespaces="git,file" ` + edKey,
			[]AllowedSigner{{Line: 1, Principals: "*@example.com", Namespaces: "git,file"}}},
		{"every option, any case", `ada@example.com NAMESPACES="git",Valid-After="20240101Z",valid-before="202501021530Z",cert-authority ` + edKey,
			[]AllowedSigner{{Line: 1, Principals: "ada@example.com", Namespaces: "git", CertAuthority: true,
				ValidAfter: utc("2024-01-01T00:00:00Z"), ValidBefore: utc("2025-01-02T15:30:00Z")}}},
		{"seconds, and an escaped quote", `ada@example.com valid-after="20240101123045Z",namespaces="a\"b" ` + edKey,
			[]AllowedSigner{{Line: 1, Principals: "ada@example.com", Namespaces: `a"b`, ValidAfter: utc("2024-01-01T12:30:45Z")}}},
		{"only comments", "# nobody yet\n", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAllowedSigners("allowed_signers", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d signers, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, g := range got {
				w := tt.want[i]
				if g.Key == nil {
					t.Fatalf("signer %d has no key", i)
				}
				g.Key = nil
				if g.Line != w.Line || g.Principals != w.Principals || g.Namespaces != w.Namespaces || g.CertAuthority != w.CertAuthority ||
					!g.ValidAfter.Equal(w.ValidAfter) || !g.ValidBefore.Equal(w.ValidBefore) {
					t.Errorf("signer %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestParseSignerLocalTime(t *testing.T) {
	got, err := ParseAllowedSigners("f", []byte(`a valid-before="20300102" `+edKey))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 1, 2, 0, 0, 0, 0, time.Local); !got[0].ValidBefore.Equal(want) {
		t.Errorf("valid-before without Z = %v, want %v (local time, as OpenSSH reads it)", got[0].ValidBefore, want)
	}
}

func TestParseAllowedSignersErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // the first error, exactly
	}{
		{"principals only", "ada@example.com\n", "f:1:16: missing key: want [options] keytype base64-key after the principals"},
		{"unclosed quote", `"ada@example.com ` + edKey, `f:1:1: the quoted principals have no closing quote`},
		{"empty quoted principals", `"" ` + edKey, "f:1:1: empty principals: want the identities the key signs for, such as ada@example.com"},
		{"text after a quote", `"ada"x ` + edKey, "f:1:6: want a space after the quoted principals"},
		{"unknown option", "ada@example.com no-touch-required " + edKey, `f:1:17: unknown key type or option "no-touch-required" (a key type such as ssh-ed25519, or an option: cert-authority, namespaces, valid-after, valid-before)`},
		{"unquoted value", "ada@example.com namespaces=git " + edKey, `f:1:28: want a quoted value ("…")`},
		{"no value", "ada@example.com namespaces " + edKey, `f:1:17: namespaces needs a quoted value: namespaces="…"`},
		{"value for a flag", `ada@example.com cert-authority="yes" ` + edKey, "f:1:17: cert-authority takes no value"},
		{"twice", `ada@example.com namespaces="git",namespaces="file" ` + edKey, "f:1:34: namespaces is given twice"},
		{"open quote", `ada@example.com namespaces="git ` + edKey, "f:1:28: the quoted value has no closing quote"},
		{"trailing comma", `ada@example.com namespaces="git", ` + edKey, "f:1:34: an option list cannot end with a comma"},
		{"junk after a value", `ada@example.com namespaces="git"x ` + edKey, "f:1:33: want a comma or a space after option namespaces"},
		{"bad time", `ada@example.com valid-after="2024-01-01" ` + edKey, `f:1:29: valid-after "2024-01-01" is not a time: want YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with a trailing Z for UTC`},
		{"impossible date", `ada@example.com valid-after="20241341" ` + edKey, `f:1:29: valid-after "20241341" is not a time: want YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with a trailing Z for UTC`},
		{"window backwards", `ada@example.com valid-after="20250101Z",valid-before="20240101Z" ` + edKey, "f:1:1: valid-before is not after valid-after"},
		{"options, no key", `ada@example.com namespaces="git"`, "f:1:33: missing key: want keytype base64-key after the options"},
		{"unknown key type after options", `ada@example.com namespaces="git" ssh-foo AAAA`, `f:1:34: unknown key type "ssh-foo": want one such as ssh-ed25519`},
		{"type without key", "ada@example.com ssh-ed25519", "f:1:28: missing the base64 key after ssh-ed25519"},
		{"not base64", "ada@example.com ssh-ed25519 not*base64", "f:1:29: the ssh-ed25519 key is not valid base64"},
		{"not a key", "ada@example.com ssh-ed25519 AAAA", "f:1:29: the ssh-ed25519 key does not parse: ssh: short read"},
		{"type mismatch", "ada@example.com ssh-rsa " + strings.Fields(edKey)[1], "f:1:25: the key is a ssh-ed25519 key, but the line says ssh-rsa"},
		{"DSA", "ada@example.com ssh-dss AAAA", "f:1:17: ssh-dss (DSA) keys are not accepted: they are insecure; sign with an ssh-ed25519 key"},
		{"second line", "# ok\nada@example.com " + edKey + "\nbob@example.com\n", "f:3:16: missing key: want [options] keytype base64-key after the principals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAllowedSigners("f", []byte(tt.in))
			var errs ParseErrors
			if !errors.As(err, &errs) {
				t.Fatalf("ParseAllowedSigners = %+v, %v; want ParseErrors", got, err)
			}
			if errs[0].Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", errs[0], tt.want)
			}
		})
	}
}

func TestParseAllowedSignersReportsEveryLine(t *testing.T) {
	in := "a\nada@example.com " + edKey + "\nb\n" + strings.Repeat("c\n", 30)
	_, err := ParseAllowedSigners("f", []byte(in))
	var errs ParseErrors
	if !errors.As(err, &errs) {
		t.Fatal(err)
	}
	if len(errs) != maxParseErrors || errs[0].Line != 1 || errs[1].Line != 3 || errs[2].Line != 4 {
		t.Errorf("%d errors (want %d), lines %d, %d, %d (want 1, 3, 4)", len(errs), maxParseErrors, errs[0].Line, errs[1].Line, errs[2].Line)
	}
	if !strings.Contains(err.Error(), "f:1:2: missing key") || !strings.Contains(err.Error(), "\nf:3:2: missing key") {
		t.Errorf("message:\n%s", err)
	}
}

func TestMatchPatternList(t *testing.T) {
	tests := []struct {
		s, list string
		want    int
	}{
		{"git", "git", 1},
		{"git", "file,git", 1},
		{"git", "file", 0},
		{"git", "g*", 1},
		{"git", "g?t", 1},
		{"git", "*", 1},
		{"git", "*,!git", -1},
		{"git", "!file", 0},
		{"ada@example.com", "*@example.com", 1},
		{"ada@example.org", "*@example.com", 0},
		{"", "*", 1},
		{"aaa", "a*a*a*a", 0},
		{"git", "", 0},
	}
	for _, tt := range tests {
		if got := matchPatternList(tt.s, tt.list); got != tt.want {
			t.Errorf("matchPatternList(%q, %q) = %d, want %d", tt.s, tt.list, got, tt.want)
		}
	}
}

// FuzzParseAllowedSigners: any input parses, or fails with positioned
// errors on lines of the input; nothing panics; parsing is deterministic.
func FuzzParseAllowedSigners(f *testing.F) {
	f.Add([]byte("ada@example.com " + edKey + "\n"))
	f.Add([]byte(`"ada@example.com" namespaces="git",valid-after="20240101Z",cert-authority ` + ecdsaKey + " comment\r\n# x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		signers, err := ParseAllowedSigners("f", data)
		lines := strings.Split(string(data), "\n")
		if err != nil {
			var errs ParseErrors
			if !errors.As(err, &errs) || len(errs) == 0 || len(errs) > maxParseErrors || signers != nil {
				t.Fatalf("error %v (%T) with %d signers", err, err, len(signers))
			}
			for _, e := range errs {
				if e.File != "f" || e.Line < 1 || e.Line > len(lines) || e.Col < 0 || e.Col > len(lines[e.Line-1])+1 || e.Msg == "" {
					t.Fatalf("error %+v out of the input (%d lines)", e, len(lines))
				}
			}
			return
		}
		for _, s := range signers {
			if s.Key == nil || s.Principals == "" || s.Line < 1 || s.Line > len(lines) {
				t.Fatalf("signer %+v", s)
			}
			if !s.ValidAfter.IsZero() && !s.ValidBefore.IsZero() && !s.ValidBefore.After(s.ValidAfter) {
				t.Fatalf("signer %+v: window backwards", s)
			}
		}
		again, err := ParseAllowedSigners("f", data)
		if err != nil || len(again) != len(signers) {
			t.Fatalf("second parse: %d signers, %v; first: %d", len(again), err, len(signers))
		}
	})
}
