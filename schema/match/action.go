package match

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/charter-policy/charter/schema/quote"
)

// MaxLen bounds the length of an action or a resource URI in bytes.
const MaxLen = 1024

// ErrWildcardAction is returned by ParseAction for an action that holds a "*".
var ErrWildcardAction = errors.New("a checked action cannot hold a wildcard")

// ParseAction normalizes an action that is asked about: lower case, ":"
// separated, non-empty segments and no wildcard. It allocates only when the
// action holds upper-case letters.
func ParseAction(s string) (string, error) {
	if err := checkSegments(s, ':', "action"); err != nil {
		return "", err
	}
	if strings.IndexByte(s, '*') >= 0 {
		return "", fmt.Errorf("action %s: %w", quote.String(s), ErrWildcardAction)
	}
	return lowerChecked(s)
}

// lowerChecked lowers s and rejects a result longer than MaxLen: lower case
// may take more bytes than upper case ("İ" becomes "i̇"), and a normalized
// name must parse again.
func lowerChecked(s string) (string, error) {
	l := lower(s)
	if len(l) > MaxLen {
		return "", fmt.Errorf("action is longer than %d bytes in lower case", MaxLen)
	}
	return l, nil
}

// ActionPattern is the action of a role permission entry: it matches itself
// and every action below it. The zero value matches nothing; see All.
type ActionPattern struct {
	prefix string // normalized, without a trailing ":*"; "" when all
	all    bool
}

// ParseActionPattern parses a role permission's action: "documents",
// "documents:read", "documents:*" or "*". A "*" is allowed only as the whole
// last segment; "documents" and "documents:*" are the same pattern.
func ParseActionPattern(s string) (ActionPattern, error) {
	if s == "*" {
		return ActionPattern{all: true}, nil
	}
	if err := checkSegments(s, ':', "action"); err != nil {
		return ActionPattern{}, err
	}
	body := strings.TrimSuffix(s, ":*")
	if strings.IndexByte(body, '*') >= 0 {
		return ActionPattern{}, fmt.Errorf("action %s: a \"*\" may only stand as the whole last segment, as in \"documents:*\" or \"*\"", quote.String(s))
	}
	prefix, err := lowerChecked(body)
	if err != nil {
		return ActionPattern{}, err
	}
	return ActionPattern{prefix: prefix}, nil
}

// All reports whether the pattern is "*".
func (p ActionPattern) All() bool { return p.all }

// String returns the normalized pattern: "*", or the action without ":*".
func (p ActionPattern) String() string {
	if p.all {
		return "*"
	}
	return p.prefix
}

// Matches reports whether the pattern matches a normalized action (from ParseAction).
func (p ActionPattern) Matches(action string) bool {
	if p.all {
		return true
	}
	return underPrefix(action, p.prefix, ':')
}

// Covers reports whether p matches every action that q matches (SPEC 2.5).
func (p ActionPattern) Covers(q ActionPattern) bool {
	if p.all {
		return true
	}
	if q.all {
		return false
	}
	return underPrefix(q.prefix, p.prefix, ':')
}

// underPrefix reports whether s equals prefix or lies below it in a sep-separated hierarchy.
func underPrefix(s, prefix string, sep byte) bool {
	if len(s) == len(prefix) {
		return s == prefix
	}
	return len(s) > len(prefix) && s[len(prefix)] == sep && s[:len(prefix)] == prefix
}

// checkSegments rejects empty names, over-long names, control characters and empty segments.
func checkSegments(s string, sep byte, what string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxLen {
		return fmt.Errorf("%s is longer than %d bytes", what, MaxLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %s is not valid UTF-8", what, quote.String(s))
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] < 0x20 {
			return fmt.Errorf("%s %s holds a control character", what, quote.String(s))
		}
		if i == len(s) || s[i] == sep {
			if i == start {
				return fmt.Errorf("%s %s has an empty segment", what, quote.String(s))
			}
			start = i + 1
		}
	}
	return nil
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}
