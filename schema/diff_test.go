package schema

import (
	"fmt"
	"maps"
	"testing"
	"time"
)

func diffFixture() *Policy {
	p := NewPolicy()
	p.Roles["Editor"] = &Role{ID: "Editor", Name: "Editor", Permissions: []RolePermission{{Action: "documents", Allow: true, Pos: Pos{File: "roles.cue", Line: 3}}}, Pos: Pos{File: "roles.cue", Line: 2}}
	p.Groups["g"] = &Group{ID: "g", Name: "G", Users: []string{"a"}, Pos: Pos{File: "groups.cue", Line: 1}}
	p.Records["r1"] = &Record{ID: "r1", Name: "R1", Users: []string{"a"}, Statements: []Statement{{Roles: []string{"Editor"}, Resources: []string{"documents"}}}, Pos: Pos{File: "records.cue", Line: 1}}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.ResourceServers["s"] = &ResourceServer{ID: "s", Name: "S", Policies: map[string]*AuthzPolicy{"p": {ID: "p", Type: PolicyTime, NotBefore: &t}}}
	p.Tests["t"] = &Test{Name: "t", User: "a", Resource: "documents", Action: "documents:read", Expect: "allow"}
	return p
}

func TestDiffPolicies(t *testing.T) {
	base := diffFixture()
	head := diffFixture()
	if d := DiffPolicies(base, head); !d.Empty() {
		t.Fatalf("equal policies: diff %+v", d)
	}

	// Moved: only positions differ.
	head.Roles["Editor"].Pos.Line = 10
	head.Roles["Editor"].Permissions[0].Pos.Line = 11
	// Changed: content differs.
	head.Records["r1"].Users = []string{"a", "b"}
	// Removed and added.
	delete(head.Groups, "g")
	head.Groups["h"] = &Group{ID: "h", Name: "H"}
	// Equal instants in other zones are no change.
	other := base.ResourceServers["s"].Policies["p"].NotBefore.In(time.FixedZone("X", 3600))
	head.ResourceServers["s"].Policies["p"].NotBefore = &other

	d := DiffPolicies(base, head)
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

func TestDiffPoliciesNil(t *testing.T) {
	p := diffFixture()
	d := DiffPolicies(nil, p)
	if len(d.Records.Added) != 1 || len(d.Roles.Added) != 1 || len(d.Tests.Added) != 1 {
		t.Fatalf("from nil: %+v", d)
	}
	d = DiffPolicies(p, nil)
	if len(d.Records.Removed) != 1 || len(d.ResourceServers.Removed) != 1 {
		t.Fatalf("to nil: %+v", d)
	}
}

func TestEqualIgnoringPosNilEmpty(t *testing.T) {
	a := &Group{ID: "g", Users: nil}
	b := &Group{ID: "g", Users: []string{}}
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
	base := NewPolicy()
	for i := range 100_000 {
		id := fmt.Sprintf("owner-d%d", i)
		base.Records[id] = &Record{ID: id, Name: id, Users: []string{"u"}, Statements: []Statement{{Roles: []string{"Editor"}, Resources: []string{"documents/" + id}}}}
	}
	head := NewPolicy()
	maps.Copy(head.Records, base.Records)
	for i := 42_000; i < 43_000; i++ {
		id := fmt.Sprintf("owner-d%d", i)
		r := *base.Records[id]
		r.Description = "edited"
		head.Records[id] = &r
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := DiffPolicies(base, head); len(d.Records.Changed) != 1000 {
			b.Fatalf("%d changed", len(d.Records.Changed))
		}
	}
}
