// Package policiesexample embeds the example policy repository, which
// charter serve answers from when it is given no --source.
package policiesexample

import (
	"embed"
	"io/fs"
)

//go:embed *.cue support
var files embed.FS

// FS returns the example policy root.
func FS() fs.FS { return files }
