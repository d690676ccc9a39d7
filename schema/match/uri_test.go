package match

import (
	"strings"
	"testing"
)

// TestURISegments: SPEC 2.2 makes empty segments, "." and ".." errors, in
// checked URIs and in policy patterns alike; a leading or trailing "/" is
// ignored.
func TestURISegments(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"/documents/d1/", "documents/d1", ""},
		{"documents/.x/..y", "documents/.x/..y", ""},
		{"documents//d1", "", "empty segment"},
		{"documents/./d1", "", `"." segment`},
		{"documents/../admin", "", `".." segment`},
		{"..", "", `".." segment`},
		{"/./", "", `"." segment`},
		{"documents/d1/..", "", `".." segment`},
	}
	for _, tc := range tests {
		u, err := ParseURI(tc.in)
		p, perr := ParseURIPattern(tc.in)
		for _, got := range []struct {
			what, s string
			err     error
		}{{"ParseURI", u, err}, {"ParseURIPattern", p.String(), perr}} {
			switch {
			case tc.wantErr == "" && (got.err != nil || got.s != tc.want):
				t.Errorf("%s(%q) = %q, %v; want %q", got.what, tc.in, got.s, got.err, tc.want)
			case tc.wantErr != "" && (got.err == nil || !strings.Contains(got.err.Error(), tc.wantErr)):
				t.Errorf("%s(%q) = %q, %v; want an error about a %s", got.what, tc.in, got.s, got.err, tc.wantErr)
			}
		}
	}
}

// TestParseURIDoesNotAllocate holds ParseURI to its doc comment.
func TestParseURIDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseURI("/documents/d1/comments/2/") }); n != 0 {
		t.Errorf("ParseURI allocates %v times", n)
	}
}
