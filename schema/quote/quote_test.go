package quote

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct{ in, want string }{
		{"", ""},
		{"Viewer", "Viewer"},
		{long + "b", long + "b"},     // 64: kept
		{long + "bc", long + Marker}, // 65: cut
		{strings.Repeat("é", 64), strings.Repeat("é", 64)}, // 64 characters in 128 bytes
		{strings.Repeat("é", 100), strings.Repeat("é", 63) + Marker},
		{strings.Repeat("\xff", 70), strings.Repeat("\xff", 63) + Marker},
	}
	for _, tc := range tests {
		got := Cut(tc.in)
		if got != tc.want {
			t.Errorf("Cut(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > MaxRunes {
			t.Errorf("Cut(%q) has %d characters", tc.in, n)
		}
	}
}

func TestString(t *testing.T) {
	secret := strings.Repeat("0123456789", 20)
	got := String(secret)
	if want := `"` + secret[:63] + Marker + `"`; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
	if got := String("a\nb"); got != `"a\nb"` {
		t.Errorf(`String("a\nb") = %s`, got)
	}
}

func TestTokens(t *testing.T) {
	secret := strings.Repeat("0123456789", 20)
	cut := secret[:63] + Marker
	tests := []struct{ in, want string }{
		{"found character that cannot start any token", "found character that cannot start any token"},
		{"unknown anchor '" + secret + "' referenced", "unknown anchor '" + cut + "' referenced"},
		{"cannot decode !!str `" + secret + "` as a !!bool", "cannot decode !!str `" + cut + "` as a !!bool"},
		{`out of bound =~"^` + secret + `$"`, `out of bound =~"^` + secret[:62] + Marker + `"`},
		{`a "quoted \" ` + secret + `" string`, `a "quoted \" ` + secret[:53] + Marker + `" string`},
		{"x" + secret + " y", "x" + secret[:62] + Marker + " y"},
		{"a\n" + secret, "a\n" + secret[:63] + Marker}, // a line break ends a token
	}
	for _, tc := range tests {
		if got := Tokens(tc.in); got != tc.want {
			t.Errorf("Tokens(%q)\n= %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
