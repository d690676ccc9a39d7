package source

import (
	"io/fs"
	"syscall"
)

// stampOf returns the stamp of the file resolved, whose information is
// info; false when info does not hold what a stamp needs.
func stampOf(resolved string, info fs.FileInfo) (stamp, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return stamp{}, false
	}
	return stamp{
		resolved: resolved,
		size:     st.Size,
		mtime:    st.Mtim.Nano(),
		ctime:    st.Ctim.Nano(),
		dev:      uint64(st.Dev), // not a uint64 on every platform
		ino:      uint64(st.Ino),
	}, true
}
