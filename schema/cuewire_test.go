package schema

import (
	"bytes"
	"io/fs"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
)

// wireSamples returns CUE units whose evaluation yields every part of a
// response: trees of every kind of value (the example policies, the
// differential samples), errors with and without declared entities, and
// errors of files that do not parse.
func wireSamples(t testing.TB) [][]sourceFile {
	var units [][]sourceFile
	example := os.DirFS("../policies-example")
	dirs := map[string][]sourceFile{}
	err := fs.WalkDir(example, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(name) != ".cue" {
			return err
		}
		data, err := fs.ReadFile(example, name)
		dirs[path.Dir(name)] = append(dirs[path.Dir(name)], sourceFile{name: name, data: data})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, files := range dirs {
		units = append(units, files)
	}
	for _, s := range differentialSamples {
		units = append(units, []sourceFile{{name: "sample.cue", data: []byte(s.doc)}})
	}
	for _, src := range []string{
		`roles: R: {name: 7, permissions: [{action: "a"}]}`, // an error, with declared roles
		`roles: R: {name: "R"`,                              // does not parse
		"package a\n",                                       // with the next file: two packages
	} {
		units = append(units, []sourceFile{{name: "e.cue", data: []byte(src)}})
	}
	units[len(units)-1] = append(units[len(units)-1], sourceFile{name: "f.cue", data: []byte("package b\n")})
	return units
}

// withoutLabels returns r with its errors' CUE labels dropped: they serve
// the evaluation only and are not sent.
func withoutLabels(r cueResult) cueResult {
	for i, e := range r.errs {
		c := *e
		c.labels = nil
		r.errs[i] = &c
	}
	return r
}

// TestCUEWireRoundTrip: a response decodes to the result that was encoded,
// and a request to the files that were sent.
func TestCUEWireRoundTrip(t *testing.T) {
	var trees, errs, declared int
	for _, files := range wireSamples(t) {
		want := withoutLabels(evalCUE("d", files))
		got, err := decodeCUEResponse(encodeCUEResponse(want))
		if err != nil {
			t.Fatalf("%s: %v", files[0].name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the response decodes to\n%#v\nwant\n%#v", files[0].name, got, want)
		}
		if want.tree != nil {
			trees++
		}
		if want.declared != nil {
			declared++
		}
		if want.errs != nil {
			errs++
		}

		dir, gotFiles, err := decodeCUERequest(encodeCUERequest("d/e", files))
		if err != nil || dir != "d/e" || !reflect.DeepEqual(gotFiles, files) {
			t.Fatalf("%s: the request decodes to %q %v (%v)", files[0].name, dir, gotFiles, err)
		}
	}
	if trees == 0 || errs == 0 || declared == 0 {
		t.Fatalf("the samples cover %d trees, %d error lists, %d declared lists: want each", trees, errs, declared)
	}
}

// TestCUEWireRejects: malformed input is an error, never a panic or an
// allocation the input cannot pay for.
func TestCUEWireRejects(t *testing.T) {
	valid := encodeCUEResponse(cueResult{tree: &node{kind: kindString, str: "x", pos: Pos{File: "a.cue", Line: 1, Col: 2}}})
	deep := &node{kind: kindNull}
	for range maxDepth + 1 {
		deep = &node{kind: kindArray, items: []*node{deep}}
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a"},
		{"a request", encodeCUERequest("d", []sourceFile{{name: "a.cue"}}), "not a"},
		{"another version", append([]byte("chr\x02"), valid[4:]...), "version 2"},
		{"trailing bytes", append(bytes.Clone(valid), 0), "trailing"},
		{"truncated", valid[:len(valid)-1], ""},
		{"a huge count", []byte("chr\x01\xff\xff\xff\xff\x0f"), "cannot fit"},
		{"a huge string", []byte("chr\x01\x01\xff\xff\xff\xff\x0f"), "a string of"},
		{"a file beyond the table", []byte("chr\x01\x00\x01\x05\x01\x01\x00\x00\x00\x00"), "file 5 of a table of 0"},
		{"a bad kind", []byte("chr\x01\x00\x00\x00\x01\x09\x00\x01\x01"), "node kind 9"},
		{"a bad flag", []byte("chr\x01\x00\x00\x02"), "flag 2"},
		{"too deep", encodeCUEResponse(cueResult{tree: deep}), "deeper than 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeCUEResponse(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, _, err := decodeCUERequest(valid); err == nil {
		t.Error("a response decodes as a request")
	}
	if _, _, err := decodeCUERequest(encodeCUERequest("d", nil)); err == nil || !strings.Contains(err.Error(), "no files") {
		t.Errorf("a request without files: err = %v", err)
	}
}

// TestCUENodeDepth: the conversion of an evaluated instance refuses a value
// nested deeper than a data file may be, at its position.
func TestCUENodeDepth(t *testing.T) {
	src := "x: " + strings.Repeat("{a: ", maxDepth) + "1" + strings.Repeat("}", maxDepth) + "\n"
	v := cuecontext.New().CompileString(src, cue.Filename("deep.cue"))
	if _, err := cueNode(v, v, nil, Pos{File: "deep.cue", Line: 1, Col: 1}); err == nil ||
		err.Message != "nested deeper than 64 levels" || err.Pos.File != "deep.cue" || err.Pos.Col < 4 || !strings.HasPrefix(err.Path, "x.a.a.") {
		t.Fatalf("err = %v, want nested deeper than 64 levels at a position in deep.cue", err)
	}
	shallow := cuecontext.New().CompileString("x: "+strings.Repeat("{a: ", maxDepth-1)+"1"+strings.Repeat("}", maxDepth-1), cue.Filename("ok.cue"))
	if _, err := cueNode(shallow, shallow, nil, Pos{File: "ok.cue", Line: 1, Col: 1}); err != nil {
		t.Fatalf("64 levels: %v", err)
	}
}

// FuzzCUEResponse feeds arbitrary bytes to the response decoder: it must
// never panic, and what it accepts must encode to bytes that decode to the
// same result and encode again to the same bytes.
func FuzzCUEResponse(f *testing.F) {
	for _, files := range wireSamples(f) {
		f.Add(encodeCUEResponse(evalCUE("d", files)))
	}
	f.Add([]byte("chr\x01\x00\x00\x00\x01\x04\x00\x01\x01\x01\x00\x00\x01\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeCUEResponse(data)
		if err != nil {
			return
		}
		again := encodeCUEResponse(r)
		r2, err := decodeCUEResponse(again)
		if err != nil {
			t.Fatalf("a decoded response does not decode once encoded: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip: %#v, want %#v", r2, r)
		}
		if third := encodeCUEResponse(r2); !bytes.Equal(third, again) {
			t.Fatal("the encoding is not stable")
		}
	})
}

// FuzzCUERequest feeds arbitrary bytes to the request decoder, as
// FuzzCUEResponse does to the response decoder.
func FuzzCUERequest(f *testing.F) {
	for _, files := range wireSamples(f) {
		f.Add(encodeCUERequest(".", files))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir, files, err := decodeCUERequest(data)
		if err != nil {
			return
		}
		again := encodeCUERequest(dir, files)
		dir2, files2, err := decodeCUERequest(again)
		if err != nil || dir2 != dir || !reflect.DeepEqual(files2, files) {
			t.Fatalf("round trip: %q %v (%v), want %q %v", dir2, files2, err, dir, files)
		}
	})
}
