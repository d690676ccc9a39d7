package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/charter-policy/charter/schema/policygen"
)

func TestLoadExample(t *testing.T) {
	p, err := NewLoader().Load(context.Background(), os.DirFS("../policies-example"))
	if err != nil {
		t.Fatal(err)
	}
	editor := p.Roles["Editor"]
	if editor == nil || len(editor.Permissions) != 3 || !editor.Permissions[1].Grant || editor.Permissions[0].Grant || !editor.Permissions[0].Allow {
		t.Fatalf("Editor = %+v", editor)
	}
	if editor.Pos.File != "documents.cue" || editor.Pos.Line < 1 {
		t.Errorf("Editor at %v, want documents.cue", editor.Pos)
	}
	if r := p.Records["support-d3"]; r == nil || r.Pos.File != "support/customer-support.json" || r.Pos.Line != 3 {
		t.Errorf("support-d3 = %+v, want it from support/customer-support.json:3", r)
	}
	if g := p.Groups["contractors"]; g == nil || g.Pos.File != "support/contractors.yaml" || g.Pos.Line != 3 {
		t.Errorf("contractors = %+v, want it from support/contractors.yaml:3", g)
	}
	acme := p.ResourceServers["acme-api"]
	if acme == nil || acme.Permissions["document-delete"].DecisionStrategy != StrategyConsensus {
		t.Fatalf("acme-api = %+v", acme)
	}
	if bh := acme.Policies["business-hours"]; bh.Hours == nil || bh.Hours.From != 9 || bh.Timezone != "Europe/Berlin" || len(bh.Weekdays) != 5 {
		t.Errorf("business-hours = %+v", bh)
	}
	if acme.Policies["editor-role"].Logic != LogicPositive || acme.Policies["not-contractor"].Logic != LogicNegative {
		t.Errorf("policy logic defaults wrong")
	}
	if p.Records["production-oncall"].Environment() != "production" {
		t.Errorf("environment tag lost")
	}
	st := p.Records["hospital-h1-staff"].Statements[1]
	if users, _ := st.Subjects(p.Records["hospital-h1-staff"]); len(users) != 2 || users[0] != "oscar" {
		t.Errorf("statement-level users = %v", users)
	}
	if st.Pos.File != "hospitals.cue" || st.Pos.Line == p.Records["hospital-h1-staff"].Statements[0].Pos.Line {
		t.Errorf("statement positions not distinct: %v", st.Pos)
	}
}

func TestLoadSkipsHiddenAndCueMod(t *testing.T) {
	fsys := fstest.MapFS{
		"roles.cue":               {Data: []byte(`roles: U: {name: "U", permissions: [{action: "a"}]}`)},
		".github/workflow.yaml":   {Data: []byte(`on: push`)},
		".hidden.json":            {Data: []byte(`{"bogus": 1}`)},
		"cue.mod/module.cue":      {Data: []byte(`module: "example.com/x"`)},
		"notes/README.md":         {Data: []byte(`# not policy`)},
		"nested/deeper/more.yaml": {Data: []byte("groups:\n  g: {name: G, users: [a]}\n")},
	}
	p, stats, err := loadStats(NewLoader(), context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Units != 2 || len(p.Roles) != 1 || len(p.Groups) != 1 {
		t.Errorf("units %d, roles %d, groups %d; want 2, 1, 1", stats.Units, len(p.Roles), len(p.Groups))
	}
}

func TestLoadNoPolicy(t *testing.T) {
	_, err := NewLoader().Load(context.Background(), fstest.MapFS{"README.md": {Data: []byte("x")}})
	if !errors.Is(err, ErrNoPolicy) {
		t.Fatalf("err = %v, want ErrNoPolicy", err)
	}
}

func TestLoaderCacheEvaluatesOnlyWhatChanged(t *testing.T) {
	root := t.TempDir()
	o := policygen.Options{Documents: 3000, Users: 100, ReadersOnly: true}
	total, err := policygen.Write(root, o)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLoader()
	ctx := context.Background()
	p1, s1, err := loadStats(l, ctx, os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	// roles.cue, data/extra.json, data/groups.json and three record files.
	if s1.Units != 6 || s1.Evaluated != 6 || len(p1.Records) != total {
		t.Fatalf("first load: %+v, %d records", s1, len(p1.Records))
	}
	_, s2, err := loadStats(l, ctx, os.DirFS(root))
	if err != nil || s2.Evaluated != 0 {
		t.Fatalf("unchanged reload evaluated %d units (err %v), want 0", s2.Evaluated, err)
	}
	if err := policygen.RewriteOwnerFile(root, o, 1000, "one"); err != nil {
		t.Fatal(err)
	}
	p3, s3, err := loadStats(l, ctx, os.DirFS(root))
	if err != nil || s3.Evaluated != 1 {
		t.Fatalf("reload after one change evaluated %d units (err %v), want 1", s3.Evaluated, err)
	}
	if p3.Records["owner-d1000"].Description != "one" || p1.Records["owner-d1000"].Description == "one" {
		t.Errorf("the change was not picked up, or it altered the earlier policy")
	}
	if p3.Records["owner-d0"] != p1.Records["owner-d0"] {
		t.Errorf("an unchanged unit was decoded again")
	}
	// A unit that turns invalid fails the load; fixing it loads again.
	file := filepath.Join(root, filepath.FromSlash(policygen.OwnerFile(o, 1000)))
	if err := os.WriteFile(file, []byte(`{"records": {"x": {"name": 1}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = l.Load(ctx, os.DirFS(root))
	var errs Errors
	if !errors.As(err, &errs) || !strings.Contains(errs.Error(), "data/records-001.json:1:") {
		t.Fatalf("err = %v, want an Errors naming the file", err)
	}
	if err := policygen.RewriteOwnerFile(root, o, 2000, "two"); err != nil { // unrelated edit
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	p4, s4, err := loadStats(l, ctx, os.DirFS(root))
	if err != nil || len(p4.Records) != total-1000 || s4.Evaluated != 1 {
		t.Fatalf("after removing the bad file: %d records, %+v, err %v", len(p4.Records), s4, err)
	}
}

func TestLoadDuplicateAcrossUnits(t *testing.T) {
	fsys := fstest.MapFS{
		"a/x.cue":  {Data: []byte("roles: U: {name: \"U\", permissions: [{action: \"a\"}]}\n")},
		"b/y.json": {Data: []byte(`{"roles": {"U": {"name": "U", "permissions": [{"action": "a"}]}}}`)},
	}
	_, err := NewLoader().Load(context.Background(), fsys)
	if err == nil || !strings.Contains(err.Error(), "b/y.json:1:12: roles.U: declared again: it is already declared at a/x.cue:1:8") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewLoader().Load(ctx, os.DirFS("../policies-example")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCUEDirectoryWithCrossFileReferences(t *testing.T) {
	fsys := fstest.MapFS{
		"a.cue": {Data: []byte("package p\n\n_reader: {action: \"documents:read\"}\nroles: U: {name: \"U\", permissions: [_reader]}\n")},
		"b.cue": {Data: []byte("package p\n\nimport \"strings\"\n\nroles: V: {name: strings.ToUpper(\"v\"), permissions: roles.U.permissions}\n")},
	}
	p, err := NewLoader().Load(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if p.Roles["V"].Name != "V" || p.Roles["V"].Permissions[0].Action != "documents:read" || !p.Roles["V"].Permissions[0].Allow {
		t.Errorf("V = %+v", p.Roles["V"])
	}
}

// benchRepository writes the generated repository of a loader benchmark:
// documents owner records (a tenth of them with -short), one per document,
// in files of 1,000 records.
func benchRepository(b *testing.B, documents int, format string) (string, policygen.Options) {
	return benchRepositoryWith(b, policygen.Options{Documents: documents, Format: format})
}

// benchRepositoryWith writes a generated repository of owner records only,
// for 10,000 users, as o says otherwise (a tenth of o.Documents with -short).
func benchRepositoryWith(b *testing.B, o policygen.Options) (string, policygen.Options) {
	if testing.Short() {
		o.Documents /= 10
		if o.PerFile > o.Documents {
			o.PerFile = o.Documents
		}
	}
	o.Users, o.ReadersOnly = 10_000, true
	root := b.TempDir()
	if _, err := policygen.Write(root, o); err != nil {
		b.Fatal(err)
	}
	return root, o
}

// BenchmarkLoadJSON: a cold load of 100,000 records in JSON files of 1,000
// records. Targets: under 2 s and under 500 MB peak heap (peak-heap-MB).
func BenchmarkLoadJSON(b *testing.B) {
	root, _ := benchRepository(b, 100_000, "json")
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		runtime.GC()
		stop := samplePeakHeap(&peak)
		if _, err := NewLoader().Load(context.Background(), os.DirFS(root)); err != nil {
			b.Fatal(err)
		}
		stop()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// BenchmarkLoadJSONMinified: a cold load of 10,000 records in one JSON file
// of one line (about 1.6 MB), as json.Marshal writes it. Positions are
// columns on that line, so a parser that finds a column by counting from the
// line's start is quadratic here.
func BenchmarkLoadJSONMinified(b *testing.B) {
	root, _ := benchRepositoryWith(b, policygen.Options{Documents: 10_000, PerFile: 10_000, Minified: true})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewLoader().Load(context.Background(), os.DirFS(root)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReloadOneFile: the 100,000-record repository with one data file
// of 1,000 records changed, to a fully validated new PolicySet. Target: under 300 ms.
func BenchmarkReloadOneFile(b *testing.B) {
	root, o := benchRepository(b, 100_000, "json")
	l := NewLoader()
	if _, err := l.Load(context.Background(), os.DirFS(root)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		if err := policygen.RewriteOwnerFile(root, o, o.Documents/2, fmt.Sprint("edit ", n)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		_, stats, err := loadStats(l, context.Background(), os.DirFS(root))
		if err != nil {
			b.Fatal(err)
		}
		if stats.Evaluated != 1 {
			b.Fatalf("evaluated %d units, want 1", stats.Evaluated)
		}
	}
}

// samplePeakHeap records the largest live heap seen until stop is called.
func samplePeakHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	finished := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		for !done.Load() {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > *peak {
				*peak = v
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); <-finished }
}

// TestPatchedMergeEqualsFullMerge changes a repository in the ways a commit
// can (a record moves between files, a file disappears, a file appears with
// a duplicate) and requires the reusing Loader to agree with a fresh one.
func TestPatchedMergeEqualsFullMerge(t *testing.T) {
	root := t.TempDir()
	if _, err := policygen.Write(root, policygen.Options{Documents: 5000, Users: 100, ReadersOnly: true}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := NewLoader()
	if _, err := l.Load(ctx, os.DirFS(root)); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		change  func()
		wantErr string
	}{
		{"a record moves to a new file", func() {
			write("data/moved.json", `{"records": {"owner-d0": {"name": "Moved", "users": ["u"], "statements": [{"roles": ["User"], "resources": ["documents/d0"]}]}}}`)
			data, _ := os.ReadFile(filepath.Join(root, "data/records-000.json"))
			write("data/records-000.json", strings.Replace(string(data), `"owner-d0": {`, `"owner-d0-old": {`, 1))
		}, ""},
		{"a file disappears", func() {
			if err := os.Remove(filepath.Join(root, "data/records-003.json")); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"a new file duplicates a record", func() {
			write("data/dup.json", `{"records": {"owner-d1001": {"name": "Dup", "users": ["u"], "statements": [{"roles": ["User"], "resources": ["x"]}]}}}`)
		}, `records."owner-d1001": declared again: it is already declared at data/dup.json:1:14`},
		{"the duplicate goes away", func() {
			if err := os.Remove(filepath.Join(root, "data/dup.json")); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"a role disappears that records use", func() {
			write("roles.cue", strings.Replace(policygen.Roles, "\tEditor:", "\tEditr:", 1))
		}, `role "Editor" does not exist (did you mean "Editr"?)`},
	}
	for _, step := range steps {
		step.change()
		got, gotErr := l.Load(ctx, os.DirFS(root))
		want, wantErr := NewLoader().Load(ctx, os.DirFS(root))
		if step.wantErr != "" {
			if gotErr == nil || !strings.Contains(gotErr.Error(), step.wantErr) {
				t.Fatalf("%s: err = %v, want %q", step.name, gotErr, step.wantErr)
			}
			if gotErr.Error() != wantErr.Error() {
				t.Fatalf("%s: reused loader says\n%v\nfresh loader says\n%v", step.name, gotErr, wantErr)
			}
			continue
		}
		if gotErr != nil || wantErr != nil {
			t.Fatalf("%s: errors %v / %v", step.name, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: patched merge differs from a full merge (%d vs %d records)", step.name, len(got.Records), len(want.Records))
		}
	}
}

// TestCUEOpenValuesTakeSchemaDefaults: a value the user leaves open, or a
// disjunction with a default, decodes to what unification with the schema
// makes of it.
func TestCUEOpenValuesTakeSchemaDefaults(t *testing.T) {
	fsys := fstest.MapFS{"r.cue": {Data: []byte(`roles: U: {
	name: *"Reader" | string
	permissions: [{action: "a", allow: bool, grant: true | false}]
}
`)}}
	p, err := NewLoader().Load(context.Background(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	u := p.Roles["U"]
	if u.Name != "Reader" || !u.Permissions[0].Allow || u.Permissions[0].Grant || u.Permissions[0].Delegate {
		t.Errorf("U = %+v", u)
	}
}

// loadStats loads fsys with l and reports what was evaluated.
func loadStats(l *Loader, ctx context.Context, fsys fs.FS) (*PolicySet, Stats, error) {
	res, err := l.LoadResult(ctx, fsys)
	if err != nil {
		return nil, Stats{}, err
	}
	return res.Set, res.Stats, nil
}
