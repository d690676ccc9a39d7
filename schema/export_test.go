package schema

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// This file exports to package schema_test, whose test binary can be the
// child of a cueproc.Runner (an internal test cannot import cueproc, which
// imports schema), what its tests load through such a runner.

// CUETestInputs returns, by name, the policy roots of this package's tests
// that hold CUE files: the example policies, each differential sample as
// sample.cue, the documents generated from FuzzCUEAndGoAgree's seeds and
// corpus, and the inputs of TestCUEErrorMessages and TestLoadReportsAllErrors.
func CUETestInputs(tb testing.TB) map[string]fs.FS {
	inputs := map[string]fs.FS{"policies-example": os.DirFS("../policies-example")}
	single := func(name, file, src string) {
		inputs[name] = fstest.MapFS{file: {Data: []byte(src)}}
	}
	for _, s := range differentialSamples {
		single("differential/"+s.name, "sample.cue", s.doc)
	}
	for _, tc := range cueErrorCases {
		single("cue errors/"+tc.name, "p.cue", tc.src)
	}
	for _, tc := range loadErrorCases {
		fsys := fstest.MapFS{}
		for name, data := range tc.files {
			fsys[name] = &fstest.MapFile{Data: []byte(data)}
		}
		inputs["load errors/"+tc.name] = fsys
	}
	seeds := cueAndGoSeeds
	corpus, err := filepath.Glob("testdata/fuzz/FuzzCUEAndGoAgree/*")
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range corpus {
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		// go test fuzz v1, then one []byte("...") line.
		_, arg, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		seed, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(arg, "[]byte("), ")"))
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		seeds = append(seeds, []byte(seed))
	}
	for i, seed := range seeds {
		single("generated/"+strconv.Itoa(i), "sample.cue", generateDocument(seed))
	}
	return inputs
}

// BenchRepository writes the generated repository of a loader benchmark
// (benchRepository) and returns its root.
func BenchRepository(b *testing.B, documents int, format string) string {
	root, _ := benchRepository(b, documents, format)
	return root
}
