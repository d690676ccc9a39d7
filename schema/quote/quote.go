// Package quote bounds how much of a user's value an error message shows.
// Policy files arrive through pull requests and may be links to anything,
// so a message names the identifier or token that is wrong and never more
// than MaxRunes characters of it (SPEC section 1); every message of the
// loader, the validator and the action and URI parsers that shows a value
// passes it through Cut or String.
package quote

import (
	"regexp"
	"strconv"
	"unicode/utf8"
)

// MaxRunes is the most characters of one value that a message shows.
const MaxRunes = 64

// Marker ends a value that was cut.
const Marker = "…"

// Cut returns s when it holds at most MaxRunes characters; otherwise its
// first MaxRunes-1 characters followed by Marker, MaxRunes in all. Bytes
// that are not UTF-8 count as one character each.
func Cut(s string) string {
	if len(s) <= MaxRunes || utf8.RuneCountInString(s) <= MaxRunes {
		return s
	}
	n := 0
	for i := range s { // i steps over runes, and over each invalid byte alone
		if n == MaxRunes-1 {
			return s[:i] + Marker
		}
		n++
	}
	return s // not reached: s has more than MaxRunes characters
}

// String returns s cut (Cut) and double-quoted with Go escapes, as in
// `role "Viewer" does not exist`.
func String(s string) string {
	return strconv.Quote(Cut(s))
}

// token matches a token of a message written by another library: a string
// in double, single or back quotes, or a run of characters without a space
// or quote.
var token = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'[^']*'|`[^`]*`|[^\\s\"'`]+")

// Tokens bounds what a message of another library (a parser's syntax
// error, a rendered CUE constraint) shows of the text it quotes: each
// token is cut (Cut), a quoted one inside its quotes.
func Tokens(msg string) string {
	return token.ReplaceAllStringFunc(msg, func(t string) string {
		if utf8.RuneCountInString(t) <= MaxRunes {
			return t
		}
		if c := t[0]; (c == '"' || c == '\'' || c == '`') && len(t) >= 2 {
			return t[:1] + Cut(t[1:len(t)-1]) + t[len(t)-1:]
		}
		return Cut(t)
	})
}
