package schema

import (
	"fmt"
	"maps"
	"slices"
)

// CheckChange applies the rules of SPEC section 3.2 that hold for every
// change from base to head, whoever makes it: a permission keeps its type,
// and a permission ID stays in its resource server (create a new permission
// instead). Errors point at the permission in head.
func CheckChange(base, head *Policy) Errors {
	if base == nil || head == nil {
		return nil
	}
	// Where each permission ID lives in base: server ID → permission.
	inBase := map[string]map[string]*Permission{}
	for sid, s := range base.ResourceServers {
		for pid, p := range s.Permissions {
			if inBase[pid] == nil {
				inBase[pid] = map[string]*Permission{}
			}
			inBase[pid][sid] = p
		}
	}
	var errs Errors
	for _, sid := range slices.Sorted(maps.Keys(head.ResourceServers)) {
		s := head.ResourceServers[sid]
		for _, pid := range slices.Sorted(maps.Keys(s.Permissions)) {
			p := s.Permissions[pid]
			servers := inBase[pid]
			path := (*fieldPath)(nil).field("resourceServers").field(sid).field("permissions").field(pid)
			if old, ok := servers[sid]; ok {
				if old.Type != p.Type {
					errs = append(errs, &Error{Pos: p.Pos, Path: path.field("type").String(),
						Message: fmt.Sprintf("a permission's type cannot change (it was %q at %s): create a new permission instead", old.Type, old.Pos.Short())})
				}
				continue
			}
			for _, other := range slices.Sorted(maps.Keys(servers)) {
				errs = append(errs, &Error{Pos: p.Pos, Path: path.String(),
					Message: fmt.Sprintf("permission %q cannot move from resource server %q (%s) to %q: create a new permission with another ID instead", pid, other, servers[other].Pos.Short(), sid)})
				break
			}
		}
	}
	return errs
}
