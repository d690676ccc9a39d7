package schema

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

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
