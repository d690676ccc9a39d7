package trust

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo"
	"github.com/charter-policy/charter/reconciler/source"
)

// FuzzParseOpenPGPKeys: any input parses to public keys only, or fails
// with positioned errors on lines of the input; nothing panics.
func FuzzParseOpenPGPKeys(f *testing.F) {
	f.Add([]byte(armorBegin + "\n\nxjMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Add([]byte("# keys\n" + armorPrivate + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := ParseOpenPGPKeys("f", data)
		lines := strings.Count(string(data), "\n") + 1
		if err != nil {
			var errs ParseErrors
			if !errors.As(err, &errs) || len(errs) == 0 || list != nil {
				t.Fatalf("error %v (%T), %d keys", err, err, len(list))
			}
			for _, e := range errs {
				if e.File != "f" || e.Line < 1 || e.Line > lines || e.Msg == "" {
					t.Fatalf("error %+v out of the input (%d lines)", e, lines)
				}
			}
			return
		}
		if len(list) == 0 {
			t.Fatal("no error and no key")
		}
		for _, e := range list {
			if e.PrivateKey != nil || e.PrimaryKey == nil {
				t.Fatalf("entity %+v", e)
			}
		}
	})
}

// FuzzParseState: a state file's content gives a commit hash of the source,
// or an error; nothing panics.
func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"source":"dir:/srv/policies","commit":"` + strings.Repeat("0a", 20) + `","servedAt":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"source":"dir:/srv/policies","commit":"HEAD"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		commit, err := parseState(data, "dir:/srv/policies")
		if err == nil && !IsCommitHash(commit) {
			t.Fatalf("parseState = %q without an error", commit)
		}
		if err != nil && commit != "" {
			t.Fatalf("parseState = %q with %v", commit, err)
		}
	})
}

// FuzzVerifySignature: any signature over any payload is judged without a
// panic, with a reason unless good; the seeds (testdata/keys: a payload
// signed with the SSH and OpenPGP keys the files there trust) are good,
// and a changed byte of payload or signature is not.
func FuzzVerifySignature(f *testing.F) {
	k, err := Load(Files{OpenPGP: "testdata/keys/trusted.asc", SSH: "testdata/keys/allowed_signers"})
	if err != nil {
		f.Fatal(err)
	}
	set := k.current()
	seedPayload, err := os.ReadFile("testdata/keys/payload")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sig, payload []byte) {
		c := &gitrepo.SignedCommit{Signature: sig, Payload: payload}
		c.Committer.When = time.Unix(1767225600, 0)
		res := set.verify(k.files, c)
		switch res.Status {
		case source.SignatureGood:
			if res.Signer == "" || res.Reason != "" {
				t.Fatalf("good without a signer: %+v", res)
			}
			if !bytes.Equal(payload, seedPayload) {
				t.Fatalf("good over a payload no trusted key signed: %q", payload)
			}
		case source.SignatureBad, source.SignatureNone:
			if res.Signer != "" || res.Reason == "" {
				t.Fatalf("%+v", res)
			}
		default:
			t.Fatalf("status %q", res.Status)
		}
	})
}

func TestVerifySeedSignatures(t *testing.T) {
	k, err := Load(Files{OpenPGP: "testdata/keys/trusted.asc", SSH: "testdata/keys/allowed_signers"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ssh", "openpgp"} {
		c := seedCommit(t, name)
		payload := c.Payload
		if res, err := k.Verify(c); err != nil || res.Status != source.SignatureGood {
			t.Errorf("%s seed: %+v, %v; want good", name, res, err)
		}
		c.Payload = append(bytes.Clone(payload), '!')
		if res, _ := k.Verify(c); res.Status != source.SignatureBad || !strings.HasPrefix(res.Reason, "invalid: ") {
			t.Errorf("%s seed over a changed payload: %+v; want bad, invalid", name, res)
		}
	}
}

// seedCommit returns the commit of a FuzzVerifySignature seed: a corpus
// file holds a header line, then one Go literal a line (the signature,
// then the payload).
func seedCommit(tb testing.TB, name string) *gitrepo.SignedCommit {
	tb.Helper()
	data, err := os.ReadFile("testdata/fuzz/FuzzVerifySignature/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	c := &gitrepo.SignedCommit{Signature: unquote(tb, lines[1]), Payload: unquote(tb, lines[2])}
	c.Committer.When = time.Unix(1767225600, 0)
	return c
}

func unquote(t testing.TB, lit string) []byte {
	t.Helper()
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// BenchmarkVerify measures the check of one commit's signature, the key
// files read again (unchanged, so not parsed again) each time, as the
// reconciler does for every new commit.
func BenchmarkVerify(b *testing.B) {
	k, err := Load(Files{OpenPGP: "testdata/keys/trusted.asc", SSH: "testdata/keys/allowed_signers"})
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"ssh", "openpgp"} {
		c := seedCommit(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res, err := k.Verify(c); err != nil || res.Status != source.SignatureGood {
					b.Fatalf("%+v, %v", res, err)
				}
			}
		})
	}
}
