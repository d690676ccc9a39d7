package match

import (
	"errors"
	"fmt"
	"strings"

	"github.com/charter-policy/charter/schema/quote"
)

// ErrWildcardURI is returned by ParseURI for a resource URI with a "*" segment.
var ErrWildcardURI = errors.New("a checked resource URI cannot hold a \"*\" segment")

// ParseURI normalizes a resource URI that is asked about: the leading and
// trailing "/" are dropped, segments must be non-empty, none may be "." or
// ".." and none may be "*".
// It never allocates.
func ParseURI(s string) (string, error) {
	u, err := trimURI(s)
	if err != nil {
		return "", err
	}
	if hasStarSegment(u) {
		return "", fmt.Errorf("resource %s: %w", quote.String(s), ErrWildcardURI)
	}
	return u, nil
}

// URIPattern is a statement or resource-server URI pattern. It covers every
// URI equal to it or below it; a "*" segment matches exactly one segment.
type URIPattern struct {
	text     string // normalized
	wildcard bool   // holds a "*" segment
}

// ParseURIPattern parses a resource URI pattern such as "documents",
// "organizations/*/invoices" or "*". Its segments obey the rules of
// ParseURI, except that a segment may be "*".
func ParseURIPattern(s string) (URIPattern, error) {
	u, err := trimURI(s)
	if err != nil {
		return URIPattern{}, err
	}
	for seg := range strings.SplitSeq(u, "/") {
		if seg != "*" && strings.IndexByte(seg, '*') >= 0 {
			return URIPattern{}, fmt.Errorf("resource %s: a \"*\" must be a whole segment", quote.String(s))
		}
	}
	return URIPattern{text: u, wildcard: hasStarSegment(u)}, nil
}

// String returns the normalized pattern.
func (p URIPattern) String() string { return p.text }

// Wildcard reports whether the pattern holds a "*" segment.
func (p URIPattern) Wildcard() bool { return p.wildcard }

// Covers reports whether the pattern covers a normalized URI (from ParseURI).
func (p URIPattern) Covers(uri string) bool {
	if !p.wildcard {
		return underPrefix(uri, p.text, '/')
	}
	pat, u := p.text, uri
	for pat != "" {
		if u == "" {
			return false
		}
		ps, prest := cutSegment(pat)
		us, urest := cutSegment(u)
		if ps != "*" && ps != us {
			return false
		}
		pat, u = prest, urest
	}
	return true
}

// Ancestors calls yield with uri and each of its ancestors, longest first:
// "a/b/c", "a/b", "a". It stops when yield returns false.
func Ancestors(uri string, yield func(string) bool) {
	for uri != "" {
		if !yield(uri) {
			return
		}
		i := strings.LastIndexByte(uri, '/')
		if i < 0 {
			return
		}
		uri = uri[:i]
	}
}

func cutSegment(s string) (seg, rest string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func trimURI(s string) (string, error) {
	if len(s) > MaxLen {
		return "", fmt.Errorf("resource URI is longer than %d bytes", MaxLen)
	}
	u := strings.TrimPrefix(s, "/")
	u = strings.TrimSuffix(u, "/")
	if u == "" {
		return "", fmt.Errorf("resource URI %s is empty", quote.String(s))
	}
	if err := checkSegments(u, '/', "resource URI"); err != nil {
		return "", err
	}
	if seg := dotSegment(u); seg != "" {
		return "", fmt.Errorf("resource URI %s has a %s segment", quote.String(s), quote.String(seg))
	}
	return u, nil
}

// dotSegment returns the first "." or ".." segment of the trimmed URI u, or
// "" when it has none. Such segments are errors (SPEC 2.2): were ".." a
// literal name, "documents/d1" would cover "documents/d1/../../secret",
// which a client that resolves dot segments reads as "secret".
func dotSegment(u string) string {
	for u != "" {
		seg, rest := cutSegment(u)
		if seg == "." || seg == ".." {
			return seg
		}
		u = rest
	}
	return ""
}

func hasStarSegment(u string) bool {
	for u != "" {
		seg, rest := cutSegment(u)
		if seg == "*" {
			return true
		}
		u = rest
	}
	return false
}
