package change

import (
	"fmt"
	"maps"
	"slices"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/quote"
)

// Check applies the rules of SPEC section 3.2 that hold for every
// change from base to head, whoever makes it: a permission keeps its type,
// and a permission ID stays in its resource server (create a new permission
// instead). Errors point at the permission in head.
func Check(base, head *schema.PolicySet) schema.Errors {
	if base == nil || head == nil {
		return nil
	}
	// Where each permission ID lives in base: server ID → permission.
	inBase := map[string]map[string]*schema.Permission{}
	for sid, s := range base.ResourceServers {
		for pid, p := range s.Permissions {
			if inBase[pid] == nil {
				inBase[pid] = map[string]*schema.Permission{}
			}
			inBase[pid][sid] = p
		}
	}
	var errs schema.Errors
	for _, sid := range slices.Sorted(maps.Keys(head.ResourceServers)) {
		s := head.ResourceServers[sid]
		for _, pid := range slices.Sorted(maps.Keys(s.Permissions)) {
			p := s.Permissions[pid]
			servers := inBase[pid]
			path := schema.JoinPath("resourceServers", sid, "permissions", pid)
			if old, ok := servers[sid]; ok {
				if old.Type != p.Type {
					errs = append(errs, &schema.Error{Pos: p.Pos, Path: path + ".type",
						Message: fmt.Sprintf("a permission's type cannot change (it was %s at %s): create a new permission instead", quote.String(old.Type), old.Pos.Short())})
				}
				continue
			}
			for _, other := range slices.Sorted(maps.Keys(servers)) {
				errs = append(errs, &schema.Error{Pos: p.Pos, Path: path,
					Message: fmt.Sprintf("permission %s cannot move from resource server %s (%s) to %s: create a new permission with another ID instead",
						quote.String(pid), quote.String(other), servers[other].Pos.Short(), quote.String(sid))})
				break
			}
		}
	}
	return errs
}
