package change

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/policygen"
)

func diffFixture() *schema.PolicySet {
	p := schema.NewPolicySet()
	p.Roles["Editor"] = &schema.Role{ID: "Editor", Name: "Editor", Permissions: []schema.RolePermission{{Action: "documents", Allow: true, Pos: schema.Pos{File: "roles.cue", Line: 3}}}, Pos: schema.Pos{File: "roles.cue", Line: 2}}
	p.Groups["g"] = &schema.Group{ID: "g", Name: "G", Users: []string{"a"}, Pos: schema.Pos{File: "groups.cue", Line: 1}}
	p.Records["r1"] = &schema.Record{ID: "r1", Name: "R1", Users: []string{"a"}, Statements: []schema.Statement{{Roles: []string{"Editor"}, Resources: []string{"documents"}}}, Pos: schema.Pos{File: "records.cue", Line: 1}}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.ResourceServers["s"] = &schema.ResourceServer{ID: "s", Name: "S", Policies: map[string]*schema.AuthzPolicy{"p": {ID: "p", Type: schema.PolicyTime, NotBefore: &t}}}
	p.Tests["t"] = &schema.Test{Name: "t", User: "a", Resource: "documents", Action: "documents:read", Expect: "allow"}
	return p
}

func TestBetween(t *testing.T) {
	base := diffFixture()
	head := diffFixture()
	if d := Between(base, head); !d.Empty() {
		t.Fatalf("equal policies: diff %+v", d)
	}

	// Moved: only positions differ.
	head.Roles["Editor"].Pos.Line = 10
	head.Roles["Editor"].Permissions[0].Pos.Line = 11
	// Changed: content differs.
	head.Records["r1"].Users = []string{"a", "b"}
	// Removed and added.
	delete(head.Groups, "g")
	head.Groups["h"] = &schema.Group{ID: "h", Name: "H"}
	// Equal instants in other zones are no change.
	other := base.ResourceServers["s"].Policies["p"].NotBefore.In(time.FixedZone("X", 3600))
	head.ResourceServers["s"].Policies["p"].NotBefore = &other

	d := Between(base, head)
	if len(d.Roles.Moved) != 1 || len(d.Roles.Changed) != 0 {
		t.Errorf("roles: %+v, want one moved", d.Roles)
	}
	if len(d.Records.Changed) != 1 || d.Records.Changed[0].New.ID != "r1" {
		t.Errorf("records: %+v, want r1 changed", d.Records)
	}
	if len(d.Groups.Removed) != 1 || d.Groups.Removed[0].ID != "g" || len(d.Groups.Added) != 1 || d.Groups.Added[0].ID != "h" {
		t.Errorf("groups: %+v, want g removed and h added", d.Groups)
	}
	if len(d.ResourceServers.Changed) != 0 {
		t.Errorf("servers: %+v, want no change", d.ResourceServers)
	}
	if !d.Tests.Empty() {
		t.Errorf("tests: %+v, want none", d.Tests)
	}
	if d.Empty() {
		t.Error("Empty() = true for a non-empty diff")
	}
}

func TestBetweenNil(t *testing.T) {
	p := diffFixture()
	d := Between(nil, p)
	if len(d.Records.Added) != 1 || len(d.Roles.Added) != 1 || len(d.Tests.Added) != 1 {
		t.Fatalf("from nil: %+v", d)
	}
	d = Between(p, nil)
	if len(d.Records.Removed) != 1 || len(d.ResourceServers.Removed) != 1 {
		t.Fatalf("to nil: %+v", d)
	}
}

func TestEqualIgnoringPosNilEmpty(t *testing.T) {
	a := &schema.Group{ID: "g", Users: nil}
	b := &schema.Group{ID: "g", Users: []string{}}
	if !EqualIgnoringPos(a, b) {
		t.Error("nil and empty slices differ")
	}
	b.Tags = map[string]string{"k": "v"}
	if EqualIgnoringPos(a, b) {
		t.Error("tags ignored")
	}
}

// BenchmarkDiffOneFileChanged: the diff of a reload of a 100,000-record
// policy in which one file of 1,000 records changed (unchanged entities are
// shared pointers, as the loader makes them).
func BenchmarkDiffOneFileChanged(b *testing.B) {
	base := schema.NewPolicySet()
	for i := range 100_000 {
		id := fmt.Sprintf("owner-d%d", i)
		base.Records[id] = &schema.Record{ID: id, Name: id, Users: []string{"u"}, Statements: []schema.Statement{{Roles: []string{"Editor"}, Resources: []string{"documents/" + id}}}}
	}
	head := schema.NewPolicySet()
	maps.Copy(head.Records, base.Records)
	for i := 42_000; i < 43_000; i++ {
		id := fmt.Sprintf("owner-d%d", i)
		r := *base.Records[id]
		r.Description = "edited"
		head.Records[id] = &r
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := Between(base, head); len(d.Records.Changed) != 1000 {
			b.Fatalf("%d changed", len(d.Records.Changed))
		}
	}
}

// TestFromLoadEqualsBetween: the diff the loader derives from the units that
// changed equals Between over every entity.
func TestFromLoadEqualsBetween(t *testing.T) {
	root := t.TempDir()
	o := policygen.Options{Documents: 3000, Users: 100, ReadersOnly: true, PerFile: 100} // 31 units: a patch pays
	if _, err := policygen.Write(root, o); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := schema.NewLoader()
	first, err := l.LoadResult(ctx, os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	base := first.Set
	if err := policygen.RewriteOwnerFile(root, o, 1500, "edited"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data/new.json"), []byte(`{"records": {"n1": {"name": "N", "users": ["u"], "statements": [{"roles": ["User"], "resources": ["x"]}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "data/records-002.json")); err != nil {
		t.Fatal(err)
	}
	loaded, err := l.LoadResult(ctx, os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.PatchedFrom != base {
		t.Fatal("the second load was not patched from the first")
	}
	diff := FromLoad(base, loaded)
	full := Between(base, loaded.Set)
	if !reflect.DeepEqual(diff, full) {
		t.Fatalf("derived diff: %d added, %d removed, %d changed; full diff: %d, %d, %d",
			len(diff.Records.Added), len(diff.Records.Removed), len(diff.Records.Changed),
			len(full.Records.Added), len(full.Records.Removed), len(full.Records.Changed))
	}
	if len(diff.Records.Changed) != 100 || len(diff.Records.Added) != 1 || len(diff.Records.Removed) != 100 {
		t.Errorf("diff: %d changed, %d added, %d removed", len(diff.Records.Changed), len(diff.Records.Added), len(diff.Records.Removed))
	}
	// Against any other base the loader falls back to the full diff.
	fresh, err := schema.NewLoader().LoadResult(ctx, os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	if other := FromLoad(base, fresh); !reflect.DeepEqual(other, full) {
		t.Fatal("fallback diff differs")
	}
}
