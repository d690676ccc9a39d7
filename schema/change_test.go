package schema

import (
	"strings"
	"testing"
)

func TestCheckChange(t *testing.T) {
	server := func(id string, perms map[string]string) *ResourceServer {
		s := &ResourceServer{ID: id, Permissions: map[string]*Permission{}}
		for pid, typ := range perms {
			s.Permissions[pid] = &Permission{ID: pid, Type: typ, Pos: Pos{File: id + ".cue", Line: 3, Col: 2}}
		}
		return s
	}
	policy := func(servers ...*ResourceServer) *Policy {
		p := NewPolicy()
		for _, s := range servers {
			p.ResourceServers[s.ID] = s
		}
		return p
	}
	base := policy(server("a", map[string]string{"read": PermissionScope, "docs": PermissionResource}))
	tests := []struct {
		name string
		head *Policy
		want []string // substrings, one per error
	}{
		{"unchanged", base, nil},
		{"a new permission", policy(server("a", map[string]string{"read": PermissionScope, "docs": PermissionResource, "write": PermissionScope})), nil},
		{"a removed permission", policy(server("a", map[string]string{"read": PermissionScope})), nil},
		{"SPEC 3.2: no permission changed its type", policy(server("a", map[string]string{"read": PermissionResource, "docs": PermissionResource})),
			[]string{`resourceServers.a.permissions.read.type: a permission's type cannot change (it was "scope" at a.cue:3)`}},
		{"SPEC 3.2: same permission ID under a different server counts as a move", policy(server("a", map[string]string{"docs": PermissionResource}), server("b", map[string]string{"read": PermissionScope})),
			[]string{`resourceServers.b.permissions.read: permission "read" cannot move from resource server "a" (a.cue:3) to "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := CheckChange(base, tt.head)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}
