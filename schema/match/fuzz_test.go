package match

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// seeds returns realistic inputs: every quoted string of the example
// policies (actions, URIs, IDs, names), plus edge cases.
func seeds(t testing.TB) []string {
	out := []string{
		"documents", "documents:read", "documents:*", "*", "Documents:READ", "documents::read", ":read", "read:",
		"documents/d1", "/documents/d1/", "documents//d1", "organizations/*/invoices", "*/x", "a*/b", "",
		"/", "//", "documents/d1/comments/2", "documents:flat-documents:read", "a\x00b", "é:Ü", strings.Repeat("a/", 600),
		"documents/d1/../../secret", "./documents", "documents/.", "documents/...", "a/.b/c.", "*/../x",
	}
	files, _ := filepath.Glob("../../policies-example/*.cue")
	more, _ := filepath.Glob("../../policies-example/*/*")
	quoted := regexp.MustCompile(`"([^"\\]*)"`)
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range quoted.FindAllStringSubmatch(string(data), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// segmentsMatch is a naive reading of SPEC 2.2: pattern segments are a
// prefix of the URI's, "*" matching any one segment.
func segmentsMatch(pattern, uri string) bool {
	ps, us := strings.Split(pattern, "/"), strings.Split(uri, "/")
	if len(us) < len(ps) {
		return false
	}
	for i, p := range ps {
		if p != "*" && p != us[i] {
			return false
		}
	}
	return true
}

func FuzzParseAction(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAction(s)
		if err != nil {
			return
		}
		if strings.Contains(a, "*") || a == "" || strings.Contains(a, "::") || strings.HasPrefix(a, ":") || strings.HasSuffix(a, ":") {
			t.Fatalf("ParseAction(%q) = %q, a malformed action", s, a)
		}
		if a != strings.ToLower(a) {
			t.Fatalf("ParseAction(%q) = %q, not lower case", s, a)
		}
		if again, err := ParseAction(a); err != nil || again != a {
			t.Fatalf("ParseAction is not idempotent: %q -> %q -> %q, %v", s, a, again, err)
		}
		// An action pattern of the same text matches it, and so does "*".
		p, err := ParseActionPattern(s)
		if err != nil || !p.Matches(a) {
			t.Fatalf("pattern %q does not match its own action %q: %v", s, a, err)
		}
		if all, _ := ParseActionPattern("*"); !all.Matches(a) {
			t.Fatalf("* does not match %q", a)
		}
	})
}

func FuzzParseActionPattern(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, "documents:read")
	}
	f.Fuzz(func(t *testing.T, s, other string) {
		p, err := ParseActionPattern(s)
		if err != nil {
			return
		}
		again, err := ParseActionPattern(p.String())
		if err != nil || again != p {
			t.Fatalf("pattern %q -> %q does not parse back: %v", s, p.String(), err)
		}
		if !p.Covers(p) {
			t.Fatalf("%q does not cover itself", s)
		}
		q, err := ParseActionPattern(other)
		if err != nil {
			return
		}
		// Covers means: matches every action q matches; q's own text is one.
		if p.Covers(q) && !q.All() && !p.Matches(q.String()) {
			t.Fatalf("%q covers %q but does not match %q", s, other, q.String())
		}
		if p.Covers(q) && q.Covers(p) && p != q {
			t.Fatalf("%q and %q cover each other but differ", s, other)
		}
		if a, err := ParseAction(other); err == nil && p.Matches(a) {
			// A match is a prefix of whole segments.
			if !p.All() && a != p.String() && !strings.HasPrefix(a, p.String()+":") {
				t.Fatalf("%q matches %q, which is not below it", s, a)
			}
		}
	})
}

func FuzzParseURI(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		if u == "" || strings.HasPrefix(u, "/") || strings.HasSuffix(u, "/") || strings.Contains(u, "//") {
			t.Fatalf("ParseURI(%q) = %q, not normalized", s, u)
		}
		for _, seg := range strings.Split(u, "/") {
			if seg == "*" {
				t.Fatalf("ParseURI(%q) = %q holds a * segment", s, u)
			}
			if seg == "." || seg == ".." {
				t.Fatalf("ParseURI(%q) = %q holds a %q segment", s, u, seg)
			}
		}
		if again, err := ParseURI(u); err != nil || again != u {
			t.Fatalf("ParseURI is not idempotent: %q -> %q -> %q, %v", s, u, again, err)
		}
		// Ancestors are the whole-segment prefixes, longest first, each covering u.
		var got []string
		Ancestors(u, func(a string) bool { got = append(got, a); return true })
		if len(got) != strings.Count(u, "/")+1 || got[0] != u {
			t.Fatalf("Ancestors(%q) = %q", u, got)
		}
		for _, a := range got {
			if a != u && !strings.HasPrefix(u, a+"/") {
				t.Fatalf("ancestor %q of %q is not a whole-segment prefix", a, u)
			}
		}
	})
}

func FuzzParseURIPattern(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, "documents/d1/comments/2")
	}
	f.Fuzz(func(t *testing.T, pattern, uri string) {
		p, err := ParseURIPattern(pattern)
		if err != nil {
			return
		}
		if again, err := ParseURIPattern(p.String()); err != nil || again != p {
			t.Fatalf("pattern %q -> %q does not parse back: %v", pattern, p.String(), err)
		}
		for _, seg := range strings.Split(p.String(), "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("ParseURIPattern(%q) = %q holds a %q segment", pattern, p.String(), seg)
			}
		}
		if p.Wildcard() != segmentsMatch("*", p.String()) && strings.Contains("/"+p.String()+"/", "/*/") != p.Wildcard() {
			t.Fatalf("Wildcard() of %q is %t", pattern, p.Wildcard())
		}
		u, err := ParseURI(uri)
		if err != nil {
			return
		}
		if got, want := p.Covers(u), segmentsMatch(p.String(), u); got != want {
			t.Fatalf("pattern %q covers %q: %t, naive reading says %t", p.String(), u, got, want)
		}
	})
}

// TestInvalidUTF8 is the regression test of a fuzz finding: lower-casing
// turned invalid bytes into U+FFFD, so that distinct raw actions became
// equal and a normalized action could grow past MaxLen and fail to parse
// again. Invalid UTF-8 is now rejected.
func TestInvalidUTF8(t *testing.T) {
	for _, s := range []string{"documents:\xe8", "\xff"} {
		if _, err := ParseAction(s); err == nil {
			t.Errorf("ParseAction(%q) accepted invalid UTF-8", s)
		}
		if _, err := ParseActionPattern(s); err == nil {
			t.Errorf("ParseActionPattern(%q) accepted invalid UTF-8", s)
		}
		if _, err := ParseURI(s); err == nil {
			t.Errorf("ParseURI(%q) accepted invalid UTF-8", s)
		}
	}
	long := strings.Repeat("Ⱥ", MaxLen/2) // 1024 bytes; "ⱥ" takes 3
	if a, err := ParseAction(long); err == nil {
		t.Errorf("ParseAction of %d bytes lowering to %d accepted", len(long), len(a))
	}
}
