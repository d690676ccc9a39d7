package match

import (
	"strings"
	"testing"
)

// TestDotSegments: "." and ".." segments are errors in checked URIs and in
// patterns (SPEC 2.2), so that "documents/d1/../../secret" is never covered
// by "documents/d1"; segments that only contain dots are fine.
func TestDotSegments(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"documents/d1/../../secret", false},
		{"documents/d1/..", false},
		{"../documents", false},
		{"..", false},
		{".", false},
		{"/./", false},
		{"documents/./d1", false},
		{"/documents/d1/./", false},
		{"documents//d1", false}, // empty segments stay errors
		{"documents/...", true},
		{"documents/.d1", true},
		{"documents/d1.", true},
		{"documents/..d1/x..", true},
		{"v1.2/a", true},
	} {
		_, err := ParseURI(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseURI(%q): error %v, want ok=%t", c.in, err, c.ok)
		}
		if !c.ok && err != nil && !strings.Contains(err.Error(), "segment") {
			t.Errorf("ParseURI(%q): error %q does not name the segment", c.in, err)
		}
		_, err = ParseURIPattern(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseURIPattern(%q): error %v, want ok=%t", c.in, err, c.ok)
		}
	}
	// Patterns with "*" segments follow the same rule.
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"organizations/*/..", false},
		{"*/./invoices", false},
		{"../*", false},
		{"organizations/*/.../invoices", true},
	} {
		if _, err := ParseURIPattern(c.in); (err == nil) != c.ok {
			t.Errorf("ParseURIPattern(%q): error %v, want ok=%t", c.in, err, c.ok)
		}
	}
}
