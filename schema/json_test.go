package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/charter-policy/charter/schema/policygen"
)

// TestParseJSONPositions: lines and columns are 1-based, columns count
// runes (not bytes), and an escape counts as the characters it is written with.
func TestParseJSONPositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		path []string // object keys down to the value
		want Pos      // of the value
	}{
		{"first value", `{"a": 1}`, []string{"a"}, Pos{Line: 1, Col: 7}},
		{"after multi-byte runes", `{"ä€😀": "x", "b": true}`, []string{"b"}, Pos{Line: 1, Col: 19}},
		{"after an escape", `{"a": "\u00e4\n", "b": null}`, []string{"b"}, Pos{Line: 1, Col: 24}},
		{"second line", "{\n  \"a\": [1,\n    2]}", []string{"a"}, Pos{Line: 2, Col: 8}},
		{"CRLF", "{\r\n\"a\":\r\n  \"é\",\r\n \"b\": 2}", []string{"b"}, Pos{Line: 4, Col: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := parseJSON("f.json", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range tc.path {
				n = fieldOf(n, key)
			}
			tc.want.File = "f.json"
			if n.pos != tc.want {
				t.Errorf("pos = %v, want %v", n.pos, tc.want)
			}
		})
	}
}

// TestParseJSONErrorPositions: a syntax error is placed where it is found.
func TestParseJSONErrorPositions(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{`{"é": 012}`, `f.json:1:7: invalid JSON: malformed number 012: a leading zero is not allowed (write 12, or quote it for a string)`},
		{`[-00.5]`, `f.json:1:3: invalid JSON: malformed number 00: a leading zero is not allowed`},
		{"{\n\"a\": [1, 2,]}", "f.json:2:12: invalid JSON: "},
		{"{\"é\": 1,\n\"€\": \"x\"]", "f.json:2:9: invalid JSON: "},
		{`{"a": "€" "b"}`, "f.json:1:11: invalid JSON: "},
		{"{\"a\":\n\n  tru}", "f.json:3:3: invalid JSON: "},
	}
	for _, tc := range tests {
		_, err := parseJSON("f.json", []byte(tc.src))
		if err == nil || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("parseJSON(%q) = %v, want %q...", tc.src, err, tc.want)
		}
	}
}

func fieldOf(n *node, key string) *node {
	for _, f := range n.fields {
		if f.key == key {
			return f.val
		}
	}
	return &node{}
}

// TestParseJSONLongLine: a data file of 10,000 records written on one line
// by json.Marshal (1.3 MB) parses in linear time. The bound is generous
// (a linear parser needs some 30 ms, 0.3 s with -race); the parser that
// counted each value's column from the start of its line took two minutes.
// BenchmarkLoadJSONMinified measures it.
func TestParseJSONLongLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1.3 MB file")
	}
	recs := map[string]any{}
	for i := range 10_000 {
		recs[fmt.Sprintf("owner-d%d", i)] = policygen.OwnerRecord(i, 10_000, "")
	}
	src, err := json.Marshal(map[string]any{"records": recs})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Error, 1)
	go func() {
		_, err := parseJSON("one-line.json", src)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("parsing %d bytes on one line took over 10 s: finding a column must not rescan the line", len(src))
	}
}

// FuzzJSONValid holds the data-file parser to encoding/json: it accepts
// exactly the documents that json.Valid accepts, and on UTF-8 input it
// decodes the same values as json.Unmarshal. The one deliberate difference:
// a document with a value nested deeper than maxDepth is refused (the
// schema needs seven levels; the bound keeps recursion small). Invalid
// UTF-8, which encoding/json lets through, is refused by the loader before
// parsing (checkUTF8), so values are compared on UTF-8 input only.
//
//	go test ./schema -run '^$' -fuzz FuzzJSONValid -fuzztime 3m
func FuzzJSONValid(f *testing.F) {
	seeds, err := filepath.Glob("../policies-example/support/*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed files (%v)", err)
	}
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`012`, `-012`, `0`, `-0`, `-0.5e-3`, `1E+2`, `0.`, `.5`, `01.5`, `-`, `1e`, ` [] `, `{}x`,
		`"\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`, `"\udc00"`, `"\u00e9\/\b"`,
		`{"a": 1, "a": 2}`, "\ufeff{}", `[1,]`, `{"a" 1}`, `tru`, `nul`, `"a` + "\x7f" + `"`,
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
		strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, perr := parseJSON("f.json", data)
		valid := json.Valid(data)
		switch {
		case perr == nil && !valid:
			t.Fatalf("parseJSON accepts %q, which encoding/json rejects", data)
		case perr != nil && valid:
			if !strings.Contains(perr.Message, "nested deeper than") || valueDepth(t, data) <= maxDepth {
				t.Fatalf("parseJSON rejects %q, which encoding/json accepts: %v", data, perr)
			}
			return
		case perr != nil:
			if perr.Pos.File != "f.json" || perr.Pos.Line < 1 || perr.Pos.Col < 1 {
				t.Fatalf("error without a position: %v", perr)
			}
			return
		}
		if !utf8.Valid(data) {
			return
		}
		var want any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("json.Valid accepts %q but Decode fails: %v", data, err)
		}
		if got := nodeValue(n); !reflect.DeepEqual(got, want) {
			t.Fatalf("parseJSON(%q) = %#v, encoding/json decodes %#v", data, got, want)
		}
	})
}

// valueDepth returns how deeply the most nested value of a valid JSON
// document lies: 0 for the top-level value, 1 for its elements, and so on.
func valueDepth(t *testing.T, data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	open, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return deepest
		}
		if err != nil {
			t.Fatalf("json.Valid accepts %q but Token fails: %v", data, err)
		}
		if d, ok := tok.(json.Delim); ok && (d == ']' || d == '}') {
			open--
			continue
		}
		deepest = max(deepest, open)
		if d, ok := tok.(json.Delim); ok && (d == '[' || d == '{') {
			open++
		}
	}
}

// nodeValue converts a node tree to what json.Unmarshal with UseNumber
// makes of the same document (the last of duplicate keys wins).
func nodeValue(n *node) any {
	switch n.kind {
	case kindObject:
		m := make(map[string]any, len(n.fields))
		for _, f := range n.fields {
			m[f.key] = nodeValue(f.val)
		}
		return m
	case kindArray:
		l := make([]any, 0, len(n.items))
		for _, it := range n.items {
			l = append(l, nodeValue(it))
		}
		return l
	case kindString:
		return n.str
	case kindNumber:
		return json.Number(n.str)
	case kindBool:
		return n.b
	}
	return nil
}
