package embedded_test

import (
	"context"
	"errors"
	"io/fs"
	"regexp"
	"testing"
	"testing/fstest"

	policiesexample "github.com/charter-policy/charter/policies-example"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/embedded"
	"github.com/charter-policy/charter/reconciler/source/sourcetest"
)

func TestConformance(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T, files map[string]string) sourcetest.Fixture {
			fsys := fstest.MapFS{}
			for name, data := range files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			return sourcetest.Fixture{Source: embedded.New(fsys, "embedded:test")}
		},
		IDPattern: regexp.MustCompile(`^sha256:[0-9a-f]{16}$`),
	})
}

func TestExamplePolicies(t *testing.T) {
	rev, files, err := embedded.New(policiesexample.FS(), "embedded:policies-example").Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := files.Open("documents.cue"); err != nil {
		t.Errorf("the example's documents.cue is missing: %v", err)
	}
	if rev.Signature.Status != source.SignatureNone || rev.Author != (source.Person{}) {
		t.Errorf("revision outside git = %+v", rev)
	}
}

func TestNotRegularFile(t *testing.T) {
	fsys := fstest.MapFS{"link.cue": &fstest.MapFile{Mode: fs.ModeSymlink | 0o777}}
	_, _, err := embedded.New(fsys, "embedded:test").Fetch(context.Background())
	var ce *source.ContentError
	if !errors.As(err, &ce) || ce.Path != "link.cue" {
		t.Errorf("Fetch of a symbolic link = %v, want a ContentError naming link.cue", err)
	}
}
