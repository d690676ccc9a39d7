package change

import (
	"reflect"
	"slices"
	"time"

	"github.com/charter-policy/charter/schema"
)

// Pair is an entity present in both revisions of a diff.
type Pair[T any] struct {
	Old T
	New T
}

// EntityDiff lists how the entities of one kind changed between two
// revisions, each list sorted by entity ID (test name for tests).
type EntityDiff[T any] struct {
	// Added holds entities only in the head revision.
	Added []T
	// Removed holds entities only in the base revision.
	Removed []T
	// Changed holds entities whose content differs.
	Changed []Pair[T]
	// Moved holds entities whose content is equal but whose source
	// positions differ (a file was renamed or lines were inserted above).
	// They change no decision, only the positions shown in traces.
	Moved []Pair[T]
}

// Empty reports whether nothing of this kind was added, removed, changed or moved.
func (d *EntityDiff[T]) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0 && len(d.Moved) == 0
}

// Diff is the structural difference between two policies, per entity kind.
type Diff struct {
	Roles           EntityDiff[*schema.Role]
	Groups          EntityDiff[*schema.Group]
	Records         EntityDiff[*schema.Record]
	ResourceServers EntityDiff[*schema.ResourceServer]
	Tests           EntityDiff[*schema.Test]
}

// Empty reports whether the two policies hold the same entities with the same content and positions.
func (d *Diff) Empty() bool {
	return d.Roles.Empty() && d.Groups.Empty() && d.Records.Empty() &&
		d.ResourceServers.Empty() && d.Tests.Empty()
}

// Between returns the entities added, removed, changed and moved from
// base to head. A nil policy set counts as empty. Entities are compared by
// content, ignoring every Pos; two pointers to the same entity are equal
// without being inspected, so a loader that shares unchanged entities
// between revisions makes the diff cheap.
func Between(base, head *schema.PolicySet) *Diff {
	if base == nil {
		base = schema.NewPolicySet()
	}
	if head == nil {
		head = schema.NewPolicySet()
	}
	return &Diff{
		Roles:           diffMaps(base.Roles, head.Roles),
		Groups:          diffMaps(base.Groups, head.Groups),
		Records:         diffMaps(base.Records, head.Records),
		ResourceServers: diffMaps(base.ResourceServers, head.ResourceServers),
		Tests:           diffMaps(base.Tests, head.Tests),
	}
}

// FromLoad returns the diff from base to what a load produced. When the
// loader patched the new set from base, only the entities of the units that
// changed are compared; otherwise every entity is (Between).
func FromLoad(base *schema.PolicySet, loaded *schema.Loaded) *Diff {
	if base == nil || loaded.PatchedFrom != base {
		return Between(base, loaded.Set)
	}
	return only(base, loaded.Set, &loaded.Touched)
}

// only returns the difference from base to head over the given entity IDs,
// when every other entity is shared between the two sets.
func only(base, head *schema.PolicySet, ids *schema.EntityIDs) *Diff {
	return &Diff{
		Roles:           diffIDs(base.Roles, head.Roles, ids.Roles),
		Groups:          diffIDs(base.Groups, head.Groups, ids.Groups),
		Records:         diffIDs(base.Records, head.Records, ids.Records),
		ResourceServers: diffIDs(base.ResourceServers, head.ResourceServers, ids.ResourceServers),
		Tests:           diffIDs(base.Tests, head.Tests, ids.Tests),
	}
}

// idLists are the IDs of a diff, by what happened to them.
type idLists struct {
	removed, changed, moved, added []string
}

func classify[T comparable](l *idLists, id string, old T, inBase bool, cur T, inHead bool) {
	switch {
	case !inHead && inBase:
		l.removed = append(l.removed, id)
	case !inBase && inHead:
		l.added = append(l.added, id)
	case !inBase || old == cur:
	case !EqualIgnoringPos(old, cur):
		l.changed = append(l.changed, id)
	case !reflect.DeepEqual(old, cur):
		l.moved = append(l.moved, id)
	}
}

func diffMaps[T comparable](base, head map[string]T) EntityDiff[T] {
	// Walk the maps unsorted and sort only the IDs that differ.
	var l idLists
	for id, old := range base {
		cur, ok := head[id]
		classify(&l, id, old, true, cur, ok)
	}
	for id := range head {
		if _, ok := base[id]; !ok {
			l.added = append(l.added, id)
		}
	}
	return buildDiff(&l, base, head)
}

func diffIDs[T comparable](base, head map[string]T, ids []string) EntityDiff[T] {
	var l idLists
	for _, id := range ids {
		old, inBase := base[id]
		cur, inHead := head[id]
		classify(&l, id, old, inBase, cur, inHead)
	}
	return buildDiff(&l, base, head)
}

func buildDiff[T comparable](l *idLists, base, head map[string]T) EntityDiff[T] {
	var d EntityDiff[T]
	for _, ids := range [][]string{l.removed, l.changed, l.moved, l.added} {
		slices.Sort(ids)
	}
	for _, id := range l.removed {
		d.Removed = append(d.Removed, base[id])
	}
	for _, id := range l.changed {
		d.Changed = append(d.Changed, Pair[T]{Old: base[id], New: head[id]})
	}
	for _, id := range l.moved {
		d.Moved = append(d.Moved, Pair[T]{Old: base[id], New: head[id]})
	}
	for _, id := range l.added {
		d.Added = append(d.Added, head[id])
	}
	return d
}

var (
	posType  = reflect.TypeFor[schema.Pos]()
	timeType = reflect.TypeFor[time.Time]()
)

// EqualIgnoringPos reports whether a and b hold the same content, ignoring
// every Pos field at any depth. A nil slice or map equals an empty one, and
// times are equal when they denote the same instant.
func EqualIgnoringPos(a, b any) bool {
	return equalValue(reflect.ValueOf(a), reflect.ValueOf(b))
}

func equalValue(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Type() {
	case posType:
		return true
	case timeType:
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Kind() == reflect.Pointer && a.Pointer() == b.Pointer() {
			return true
		}
		return equalValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !equalValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		iter := a.MapRange()
		for iter.Next() {
			bv := b.MapIndex(iter.Key())
			if !bv.IsValid() || !equalValue(iter.Value(), bv) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}
