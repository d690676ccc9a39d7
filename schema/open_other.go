//go:build !unix

package schema

// openNonblock is not needed where opening a file never waits.
const openNonblock = 0
