package schema

import (
	"path"
	"strings"
)

// The one rule of SPEC section 1 that decides which files are policy files.
// Every source and the loader use it, so that what a source hashes and
// hands over is exactly what the loader reads.

// IsPolicyFile reports whether name, a slash-separated path relative to the
// policy root, is read as policy: it ends in .cue, .json, .yaml or .yml, and
// neither it nor any directory above it is hidden or CUE's module directory.
func IsPolicyFile(name string) bool {
	switch path.Ext(name) {
	case ".cue", ".json", ".yaml", ".yml":
	default:
		return false
	}
	if strings.HasPrefix(path.Base(name), ".") {
		return false
	}
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if SkipDir(dir) {
			return false
		}
	}
	return true
}

// SkipDir reports whether the directory name, relative to the policy root,
// is skipped with everything below it: a hidden directory (.git, .github)
// or CUE's module directory. The root itself (".") is never skipped.
func SkipDir(name string) bool {
	if name == "." {
		return false
	}
	base := path.Base(name)
	return strings.HasPrefix(base, ".") || base == "cue.mod"
}
