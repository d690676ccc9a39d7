package engine

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/match"
)

func compileRole(r *schema.Role) (*roleRow, error) {
	row := &roleRow{role: r, entries: make([]roleEntry, len(r.Permissions))}
	for i, p := range r.Permissions {
		pat, err := match.ParseActionPattern(p.Action)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", r.ID, err)
		}
		row.entries[i] = roleEntry{pattern: pat, action: p.Action, allow: p.Allow, grant: p.Grant, delegate: p.Delegate, pos: p.Pos}
	}
	return row, nil
}

func compileServer(srv *schema.ResourceServer) (*serverRow, error) {
	row := &serverRow{server: srv, policies: map[string]*compiledPolicy{}}
	for _, id := range sortedKeys(srv.Resources) {
		res := srv.Resources[id]
		cr := &compiledResource{res: res, scopes: lowerAll(res.Scopes)}
		for _, u := range res.URIs {
			p, err := match.ParseURIPattern(u)
			if err != nil {
				return nil, fmt.Errorf("resource server %s: resource %s: %w", srv.ID, id, err)
			}
			cr.patterns = append(cr.patterns, p)
		}
		row.resources = append(row.resources, cr)
	}
	for _, id := range sortedKeys(srv.Permissions) {
		p := srv.Permissions[id]
		row.permissions = append(row.permissions, &compiledPermission{perm: p, scopes: lowerAll(p.Scopes)})
	}
	for id, p := range srv.Policies {
		cp := &compiledPolicy{pol: p}
		if p.Type == schema.PolicyTime {
			tz := cmp.Or(p.Timezone, "UTC")
			cp.loc, cp.locErr = time.LoadLocation(tz)
			for _, d := range p.Weekdays {
				if wd, ok := weekdayOf(d); ok {
					cp.weekdays[wd] = true
				}
			}
		}
		row.policies[id] = cp
	}
	return row, nil
}

// weekdayOf returns the weekday of a time policy's "mon" … "sun".
func weekdayOf(name string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(name, weekdayName(d)) {
			return d, true
		}
	}
	return 0, false
}

// weekdayName returns "sun" … "sat".
func weekdayName(d time.Weekday) string {
	return strings.ToLower(d.String()[:3])
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
