// Package change compares two policy sets: the structural diff, entity by
// entity, that the engine applies to a snapshot, and the change rules of
// SPEC section 3.2 that every change must keep, whoever makes it.
package change
