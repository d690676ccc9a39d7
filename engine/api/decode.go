package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// readBody reads r's whole body, at most MaxBodyBytes, into a buffer of its
// own that nothing writes to afterwards. A longer body is answered 413
// (errBodyTooLarge) after drainTooLarge.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	if r.ContentLength > MaxBodyBytes {
		return nil, drainTooLarge(w, r, 0, h.drainTimeout)
	}
	size := 512
	if r.ContentLength >= 0 {
		size = int(r.ContentLength) + 1 // +1: room to read EOF without growing
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, drainTooLarge(w, r, int64(len(buf)), h.drainTimeout)
			}
			return nil, badRequest(codeInvalidJSON, "reading the body: "+err.Error())
		}
	}
}

// Bounds of drainTooLarge.
const (
	// maxDrainBytes bounds the body, read and drained, that a 413 reads to
	// its end before it is answered.
	maxDrainBytes = 8 << 20
	// defaultDrainTimeout bounds the time spent draining (handler.drainTimeout).
	defaultDrainTimeout = 5 * time.Second
)

// drainTooLarge prepares the 413 of a body over MaxBodyBytes, of which read
// bytes were read: it reads and discards the rest of the body, as long as
// the whole is at most maxDrainBytes and for at most timeout, and returns
// errBodyTooLarge.
//
// A client that writes its whole body before it reads the answer (Python's
// urllib does) would otherwise see a connection reset instead of the 413:
// closing a TCP connection whose received data was not read makes the
// kernel send a reset, and a client still writing then fails with "broken
// pipe" or "connection reset" before it reads anything. When the body is
// read to its end, the connection closes cleanly or stays open for the next
// request. A body too long to drain, a client too slow, or one that waits
// for "100 Continue" (nothing of its body was sent) is answered at once and
// the connection closed.
func drainTooLarge(w http.ResponseWriter, r *http.Request, read int64, timeout time.Duration) *apiError {
	hdr := w.Header()
	expectsContinue := read == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue")
	if expectsContinue || r.ContentLength > maxDrainBytes {
		hdr.Set("Connection", "close")
		return errBodyTooLarge
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		hdr.Set("Connection", "close")
		return errBodyTooLarge
	}
	budget := maxDrainBytes - read
	n, err := io.CopyN(io.Discard, r.Body, budget+1)
	if errors.Is(err, io.EOF) && n <= budget {
		// The whole body is read: nothing left to reset the connection.
		_ = rc.SetReadDeadline(time.Time{})
		return errBodyTooLarge
	}
	hdr.Set("Connection", "close")
	return errBodyTooLarge
}

// jsonDecoder decodes the request bodies of the API without reflection:
// POST /v1/check {"checks":[{"userId","resourceUri","action"},...],"time"}
// and POST /v1/explain {"userId","resourceUri","action","role","assign","time"}.
// It is stricter than encoding/json: names match exactly (not
// case-insensitively) and a name may not repeat. Like encoding/json, null
// leaves a field unset and invalid UTF-8 in strings becomes U+FFFD. Strings
// without escapes alias the body, which is never written to afterwards.
type jsonDecoder struct {
	data []byte
	i    int
}

var errSyntax = errors.New("syntax")

// decodeChecks decodes a batch; it stops at MaxChecks+1 checks.
func decodeChecks(data []byte) (*checkRequest, *apiError) {
	d := &jsonDecoder{data: data}
	req := &checkRequest{}
	d.ws()
	if d.literal("null") {
		return req, d.end()
	}
	seen := 0
	err := d.object(func(key string) *apiError {
		switch key {
		case "checks":
			if seen&1 != 0 {
				return duplicateField(key)
			}
			seen |= 1
			return d.checks(req)
		case "time":
			if seen&2 != 0 {
				return duplicateField(key)
			}
			seen |= 2
			return d.stringField(&req.Time, "time")
		}
		return unknownField(key)
	})
	if err != nil {
		return nil, err
	}
	return req, d.end()
}

func (d *jsonDecoder) checks(req *checkRequest) *apiError {
	if d.literal("null") {
		req.Checks = nil
		return nil
	}
	if !d.consume('[') {
		return d.typeError("checks", "an array")
	}
	req.Checks = make([]checkItem, 0, min(len(d.data)/48, MaxChecks+1)) // a check takes 48 bytes at least
	d.ws()
	if d.consume(']') {
		return nil
	}
	for {
		if len(req.Checks) == MaxChecks {
			return badRequest(codeTooManyChecks, "more than "+strconv.Itoa(MaxChecks)+" checks in one request")
		}
		req.Checks = append(req.Checks, checkItem{})
		if e := d.check(&req.Checks[len(req.Checks)-1]); e != nil {
			return e
		}
		d.ws()
		if d.consume(']') {
			return nil
		}
		if !d.consume(',') {
			return d.syntaxError("',' or ']' after a check")
		}
		d.ws()
	}
}

func (d *jsonDecoder) check(c *checkItem) *apiError {
	if d.literal("null") {
		return nil
	}
	if d.peek() != '{' {
		return d.typeError("checks", "an object")
	}
	return d.stringObject("checks.", func(key string) *string {
		switch key {
		case "userId":
			return &c.UserID
		case "resourceUri":
			return &c.ResourceURI
		case "action":
			return &c.Action
		}
		return nil
	})
}

// decodeExplain decodes the body of POST /v1/explain.
func decodeExplain(data []byte) (*explainRequest, *apiError) {
	d := &jsonDecoder{data: data}
	req := &explainRequest{}
	d.ws()
	if d.literal("null") {
		return req, d.end()
	}
	err := d.stringObject("", func(key string) *string {
		switch key {
		case "userId":
			return &req.UserID
		case "resourceUri":
			return &req.ResourceURI
		case "action":
			return &req.Action
		case "role":
			return &req.Role
		case "assign":
			return &req.Assign
		case "time":
			return &req.Time
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return req, d.end()
}

// stringObject decodes an object of at most 8 string fields; field returns
// where the field of a name goes, nil for an unknown name.
func (d *jsonDecoder) stringObject(prefix string, field func(key string) *string) *apiError {
	var seen [8]*string
	n := 0
	return d.object(func(key string) *apiError {
		dst := field(key)
		if dst == nil {
			return unknownField(prefix + key)
		}
		for _, p := range seen[:n] {
			if p == dst {
				return duplicateField(prefix + key)
			}
		}
		if n < len(seen) {
			seen[n] = dst
			n++
		}
		return d.stringField(dst, prefix+key)
	})
}

// object decodes an object whose values field decodes, from the current
// position (after whitespace).
func (d *jsonDecoder) object(field func(key string) *apiError) *apiError {
	if !d.consume('{') {
		if d.i >= len(d.data) {
			return d.syntaxError("a JSON object")
		}
		if c := d.data[d.i]; c == '[' || c == '"' || c == '-' || c == 't' || c == 'f' || (c >= '0' && c <= '9') {
			return badRequest(codeInvalidJSON, "expected a JSON object")
		}
		return d.syntaxError("a JSON object")
	}
	d.ws()
	if d.consume('}') {
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.syntaxError("a field name")
		}
		key, err := d.str()
		if err != nil {
			return d.syntaxError("a field name")
		}
		d.ws()
		if !d.consume(':') {
			return d.syntaxError("':' after a field name")
		}
		d.ws()
		if e := field(key); e != nil {
			return e
		}
		d.ws()
		if d.consume('}') {
			return nil
		}
		if !d.consume(',') {
			return d.syntaxError("',' or '}' after a field")
		}
		d.ws()
	}
}

// stringField decodes a string or null (which leaves *dst as it is).
func (d *jsonDecoder) stringField(dst *string, name string) *apiError {
	if d.literal("null") {
		return nil
	}
	if d.peek() != '"' {
		return d.typeError(name, "a string")
	}
	s, err := d.str()
	if err != nil {
		return d.syntaxError("a string")
	}
	*dst = s
	return nil
}

// str decodes the string at d.i (a '"'). A string of printable ASCII or
// valid UTF-8 without escapes aliases the body; any other is decoded by
// encoding/json, for its exact rules on escapes and invalid UTF-8.
func (d *jsonDecoder) str() (string, error) {
	start := d.i + 1
	plain := true
	i := start
	for ; i < len(d.data); i++ {
		c := d.data[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return "", errSyntax
		}
		if c == '\\' {
			plain = false
			i++ // skip the escaped byte; encoding/json checks it
		} else if c >= utf8.RuneSelf {
			plain = false
		}
	}
	if i >= len(d.data) {
		return "", errSyntax
	}
	d.i = i + 1
	raw := d.data[start:i]
	if plain || (utf8.Valid(raw) && !hasBackslash(raw)) {
		if len(raw) == 0 {
			return "", nil
		}
		return unsafe.String(&raw[0], len(raw)), nil
	}
	var s string
	if err := json.Unmarshal(d.data[start-1:i+1], &s); err != nil {
		return "", errSyntax
	}
	return s, nil
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// end accepts only whitespace after the value.
func (d *jsonDecoder) end() *apiError {
	d.ws()
	if d.i != len(d.data) {
		return badRequest(codeInvalidJSON, "unexpected data after the JSON value")
	}
	return nil
}

func (d *jsonDecoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *jsonDecoder) consume(c byte) bool {
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

// literal consumes lit when it is next and not followed by more of a word.
func (d *jsonDecoder) literal(lit string) bool {
	end := d.i + len(lit)
	if end > len(d.data) || string(d.data[d.i:end]) != lit {
		return false
	}
	if end < len(d.data) {
		if c := d.data[end]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return false
		}
	}
	d.i = end
	return true
}

func (d *jsonDecoder) syntaxError(want string) *apiError {
	if d.i >= len(d.data) {
		return badRequest(codeInvalidJSON, "truncated JSON: expected "+want)
	}
	return badRequest(codeInvalidJSON, "invalid JSON at byte "+strconv.Itoa(d.i)+": expected "+want)
}

func (d *jsonDecoder) typeError(field, want string) *apiError {
	return badRequest(codeInvalidJSON, field+": expected "+want)
}

func unknownField(key string) *apiError {
	return badRequest(codeUnknownField, "unknown field "+strconv.Quote(key))
}

func duplicateField(key string) *apiError {
	return badRequest(codeInvalidJSON, "duplicate field "+strconv.Quote(key))
}
