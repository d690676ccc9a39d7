package schema

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/charter-policy/charter/schema/quote"
)

// maxDepth bounds the nesting of data files; the schema needs seven levels.
const maxDepth = 64

// parseJSON parses a JSON document into a node tree whose positions point
// into file. It is a small recursive-descent parser because encoding/json
// reports no positions, and the positions of entities are needed for error
// messages and decision traces.
func parseJSON(file string, src []byte) (*node, *Error) {
	p := &jsonParser{file: file, src: src, line: 1, col: 1}
	p.skipSpace()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.off < len(p.src) {
		return nil, p.errorf("unexpected %q after the top-level value", p.src[p.off])
	}
	return n, nil
}

// jsonParser reads src from off. Positions are kept incrementally: col is
// the 1-based column, in runes, of the byte at colOff on line line, and
// pos advances it over the bytes read since, so that each byte is counted
// once however long its line is (json.Marshal writes a file on one line).
type jsonParser struct {
	file   string
	src    []byte
	off    int
	line   int
	col    int
	colOff int
}

// pos returns the position of the byte at off.
func (p *jsonParser) pos() Pos {
	p.col += utf8.RuneCount(p.src[p.colOff:p.off])
	p.colOff = p.off
	return Pos{File: p.file, Line: p.line, Col: p.col}
}

func (p *jsonParser) errorf(format string, args ...any) *Error {
	return &Error{Pos: p.pos(), Message: "invalid JSON: " + fmt.Sprintf(format, args...)}
}

func (p *jsonParser) skipSpace() {
	for p.off < len(p.src) {
		switch p.src[p.off] {
		case '\n':
			p.line, p.col, p.colOff = p.line+1, 1, p.off+1
		case ' ', '\t', '\r':
		default:
			return
		}
		p.off++
	}
}

func (p *jsonParser) value(depth int) (*node, *Error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d levels", maxDepth)
	}
	if p.off >= len(p.src) {
		return nil, p.errorf("unexpected end of file")
	}
	pos := p.pos()
	switch c := p.src[p.off]; {
	case c == '{':
		return p.object(pos, depth)
	case c == '[':
		return p.array(pos, depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return &node{kind: kindString, str: s, pos: pos}, nil
	case c == '-' || '0' <= c && c <= '9':
		return p.number(pos)
	default:
		for _, lit := range [...]struct {
			text string
			n    node
		}{{"true", node{kind: kindBool, b: true}}, {"false", node{kind: kindBool}}, {"null", node{kind: kindNull}}} {
			if p.hasPrefix(lit.text) {
				p.off += len(lit.text)
				n := lit.n
				n.pos = pos
				return &n, nil
			}
		}
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *jsonParser) hasPrefix(s string) bool {
	return len(p.src)-p.off >= len(s) && string(p.src[p.off:p.off+len(s)]) == s
}

func (p *jsonParser) object(pos Pos, depth int) (*node, *Error) {
	n := &node{kind: kindObject, pos: pos}
	p.off++ // {
	p.skipSpace()
	if p.off < len(p.src) && p.src[p.off] == '}' {
		p.off++
		return n, nil
	}
	for {
		p.skipSpace()
		if p.off >= len(p.src) || p.src[p.off] != '"' {
			return nil, p.errorf("expected a quoted field name")
		}
		keyPos := p.pos()
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.off >= len(p.src) || p.src[p.off] != ':' {
			return nil, p.errorf("expected ':' after field name %s", quote.String(key))
		}
		p.off++
		p.skipSpace()
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.fields = append(n.fields, field{key: key, pos: keyPos, val: val})
		p.skipSpace()
		if p.off >= len(p.src) {
			return nil, p.errorf("unexpected end of file in an object")
		}
		switch p.src[p.off] {
		case ',':
			p.off++
		case '}':
			p.off++
			return n, nil
		default:
			return nil, p.errorf("expected ',' or '}' in an object, found %q", p.src[p.off])
		}
	}
}

func (p *jsonParser) array(pos Pos, depth int) (*node, *Error) {
	n := &node{kind: kindArray, pos: pos}
	p.off++ // [
	p.skipSpace()
	if p.off < len(p.src) && p.src[p.off] == ']' {
		p.off++
		return n, nil
	}
	for {
		p.skipSpace()
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.items = append(n.items, val)
		p.skipSpace()
		if p.off >= len(p.src) {
			return nil, p.errorf("unexpected end of file in a list")
		}
		switch p.src[p.off] {
		case ',':
			p.off++
		case ']':
			p.off++
			return n, nil
		default:
			return nil, p.errorf("expected ',' or ']' in a list, found %q", p.src[p.off])
		}
	}
}

func (p *jsonParser) number(pos Pos) (*node, *Error) {
	start := p.off
	if p.src[p.off] == '-' {
		p.off++
	}
	digits := func() int {
		s := p.off
		for p.off < len(p.src) && '0' <= p.src[p.off] && p.src[p.off] <= '9' {
			p.off++
		}
		return p.off - s
	}
	intStart := p.off
	if digits() == 0 {
		return nil, p.errorf("malformed number")
	}
	if p.src[intStart] == '0' && p.off-intStart > 1 {
		lit := string(p.src[intStart:min(p.off, intStart+20)])
		p.off = intStart
		return nil, p.errorf("malformed number %s: a leading zero is not allowed (write %s, or quote it for a string)",
			lit, strings.TrimLeft(lit, "0"))
	}
	if p.off < len(p.src) && p.src[p.off] == '.' {
		p.off++
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	if p.off < len(p.src) && (p.src[p.off] == 'e' || p.src[p.off] == 'E') {
		p.off++
		if p.off < len(p.src) && (p.src[p.off] == '+' || p.src[p.off] == '-') {
			p.off++
		}
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	return &node{kind: kindNumber, str: string(p.src[start:p.off]), pos: pos}, nil
}

// string reads a quoted string; the common case without escapes is one allocation.
func (p *jsonParser) string() (string, *Error) {
	p.off++ // opening quote
	start := p.off
	for p.off < len(p.src) {
		c := p.src[p.off]
		switch {
		case c == '"':
			s := string(p.src[start:p.off])
			p.off++
			return s, nil
		case c == '\\':
			return p.escapedString(start)
		case c < 0x20:
			return "", p.errorf("control character in a string")
		}
		p.off++
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) escapedString(start int) (string, *Error) {
	buf := append([]byte(nil), p.src[start:p.off]...)
	for p.off < len(p.src) {
		c := p.src[p.off]
		switch {
		case c == '"':
			p.off++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			p.off++
			continue
		}
		if p.off+1 >= len(p.src) {
			break
		}
		esc := p.src[p.off+1]
		p.off += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("malformed \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A surrogate pair is two escapes; a surrogate that is
				// not half of a pair reads as U+FFFD, as encoding/json
				// has it, and the escape after it is read on its own.
				r = p.lowSurrogate(r)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("unknown escape \\%c", esc)
		}
	}
	return "", p.errorf("unterminated string")
}

// lowSurrogate completes the surrogate r with the \uXXXX escape at off, when
// that escape is its low half, and returns U+FFFD otherwise.
func (p *jsonParser) lowSurrogate(r rune) rune {
	if len(p.src)-p.off < 6 || !p.hasPrefix(`\u`) {
		return utf8.RuneError
	}
	v, err := strconv.ParseUint(string(p.src[p.off+2:p.off+6]), 16, 32)
	if err != nil {
		return utf8.RuneError
	}
	pair := utf16.DecodeRune(r, rune(v))
	if pair != utf8.RuneError {
		p.off += 6
	}
	return pair
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.src)-p.off < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.src[p.off:p.off+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.off += 4
	return rune(v), true
}
