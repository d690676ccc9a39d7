package change

import (
	"strings"
	"testing"

	"github.com/charter-policy/charter/schema"
)

func TestCheck(t *testing.T) {
	server := func(id string, perms map[string]string) *schema.ResourceServer {
		s := &schema.ResourceServer{ID: id, Permissions: map[string]*schema.Permission{}}
		for pid, typ := range perms {
			s.Permissions[pid] = &schema.Permission{ID: pid, Type: typ, Pos: schema.Pos{File: id + ".cue", Line: 3, Col: 2}}
		}
		return s
	}
	policy := func(servers ...*schema.ResourceServer) *schema.PolicySet {
		p := schema.NewPolicySet()
		for _, s := range servers {
			p.ResourceServers[s.ID] = s
		}
		return p
	}
	base := policy(server("a", map[string]string{"read": schema.PermissionScope, "docs": schema.PermissionResource}))
	tests := []struct {
		name string
		head *schema.PolicySet
		want []string // substrings, one per error
	}{
		{"unchanged", base, nil},
		{"a new permission", policy(server("a", map[string]string{"read": schema.PermissionScope, "docs": schema.PermissionResource, "write": schema.PermissionScope})), nil},
		{"a removed permission", policy(server("a", map[string]string{"read": schema.PermissionScope})), nil},
		{"SPEC 3.2: no permission changed its type", policy(server("a", map[string]string{"read": schema.PermissionResource, "docs": schema.PermissionResource})),
			[]string{`resourceServers.a.permissions.read.type: a permission's type cannot change (it was "scope" at a.cue:3)`}},
		{"SPEC 3.2: same permission ID under a different server counts as a move", policy(server("a", map[string]string{"docs": schema.PermissionResource}), server("b", map[string]string{"read": schema.PermissionScope})),
			[]string{`resourceServers.b.permissions.read: permission "read" cannot move from resource server "a" (a.cue:3) to "b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := Check(base, tt.head)
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
