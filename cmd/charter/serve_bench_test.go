package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	policiesexample "github.com/charter-policy/charter/policies-example"
	"github.com/charter-policy/charter/schema/policygen"
)

// BenchmarkEditToServed measures, on a real charter serve, the time from
// saving one file to the new revision showing in /v1/status, the 200 ms
// debounce included. Targets (issue 4): median under 400 ms for
// policies-example; under 600 ms for the 100,000-record policy when one data
// file of 1,000 records changes. Run with -benchtime 20x -count 5.
func BenchmarkEditToServed(b *testing.B) {
	b.Run("policies-example", func(b *testing.B) {
		dir := b.TempDir()
		if err := os.CopyFS(dir, policiesexample.FS()); err != nil {
			b.Fatal(err)
		}
		file := filepath.Join(dir, "documents.cue")
		orig, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		benchEdits(b, dir, func(n int) error {
			edited := strings.Replace(string(orig), `name: "Auditor"`, fmt.Sprintf(`name: "Auditor %d"`, n), 1)
			return os.WriteFile(file, []byte(edited), 0o644)
		})
	})
	b.Run("100k-records", func(b *testing.B) {
		dir := b.TempDir()
		o := policygen.Options{}
		if testing.Short() {
			o.Documents, o.Users = 10_000, 1000
		}
		if _, err := policygen.Write(dir, o); err != nil {
			b.Fatal(err)
		}
		benchEdits(b, dir, func(n int) error {
			return policygen.RewriteOwnerFile(dir, o, 42_042%max(o.Documents, 10_000), fmt.Sprint("edit ", n))
		})
	})
}

// benchEdits serves dir and times edit → new revision in /v1/status per iteration.
func benchEdits(b *testing.B, dir string, edit func(n int) error) {
	s := launchServer(b, serveConfig{source: dir, logLevel: "warn"})
	awaitFirstSnapshot(b, s)
	for n := 0; b.Loop(); n++ {
		before := s.status(b).Revision
		start := time.Now()
		if err := edit(n); err != nil {
			b.Fatal(err)
		}
		for s.status(b).Revision == before {
			if time.Since(start) > 30*time.Second {
				b.Fatalf("edit %d not served within 30s:\n%s", n, s.logs.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms-last-edit")
	}
}
