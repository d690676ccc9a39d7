package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing/fstest"
	"time"

	"github.com/charter-policy/charter/schema"
)

// Default limits on what a source reads, the loader's.
const (
	DefaultFileBytes  = schema.MaxFileBytes  // one policy file
	DefaultTotalBytes = schema.MaxTotalBytes // all policy files of a revision
)

// Limits bound what a source reads, as they bound the loader; a zero field
// takes its default.
type Limits = schema.SizeLimits

// ContentError reports content that no revision may hold: a file over the
// size limit, a symbolic link out of the policy root, a FIFO, device or
// socket in a policy file's place. It is not transient: fetching again
// returns it again until the content changes.
type ContentError struct {
	Path string // relative to the policy root, slash-separated
	Err  error
}

func (e *ContentError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ContentError) Unwrap() error { return e.Err }

// Digest is the SHA-256 of a policy root's files: for each file in name
// order, its name, its length and its content.
type Digest [sha256.Size]byte

// String returns the digest as a Revision.Key, "sha256:<64 hex>".
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// ID returns the digest as a Revision.ID outside git, "sha256:<16 hex>".
func (d Digest) ID() string { return "sha256:" + hex.EncodeToString(d[:8]) }

// Short returns the 12 hex digits of a "+dirty." revision suffix.
func (d Digest) Short() string { return hex.EncodeToString(d[:6]) }

// Files collects the policy files of one fetch in memory.
type Files struct {
	lim   Limits
	total int64
	m     fstest.MapFS

	digestOnce sync.Once
	digest     Digest
}

// NewFiles returns an empty collection bounded by lim.
func NewFiles(lim Limits) *Files {
	return &Files{lim: lim.WithDefaults(), m: fstest.MapFS{}}
}

// checkSize returns a *ContentError when a file of size bytes at name
// would exceed a limit.
func (f *Files) checkSize(name string, size int64) error {
	// As the loader checks it, so that charter validate and the sidecar's
	// status say the same.
	var refused *schema.Error
	if err := f.lim.Check(name, size, f.total); errors.As(err, &refused) {
		return &ContentError{Path: name, Err: errors.New(refused.Message)}
	}
	return nil
}

// Add adds the file name (slash-separated, relative to the policy root)
// with its content.
func (f *Files) Add(name string, data []byte) error {
	if err := f.checkSize(name, int64(len(data))); err != nil {
		return err
	}
	f.total += int64(len(data))
	f.m[name] = &fstest.MapFile{Data: data, Mode: 0o444}
	return nil
}

// FS returns the files collected. They must not be added to afterwards.
func (f *Files) FS() fs.FS { return f.m }

// Digest returns the digest of the files collected. It is computed once:
// the files must not be added to afterwards.
func (f *Files) Digest() Digest {
	f.digestOnce.Do(func() { f.digest = f.computeDigest() })
	return f.digest
}

func (f *Files) computeDigest() Digest {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(f.m)) {
		data := f.m[name].Data
		io.WriteString(h, name)
		h.Write([]byte{0})
		io.WriteString(h, strconv.Itoa(len(data)))
		h.Write([]byte{0})
		h.Write(data)
	}
	var d Digest
	h.Sum(d[:0])
	return d
}

// ReadFS collects the policy files of fsys (schema.WalkPolicyFiles) into
// memory, each read through schema's one rule of what may be read (a regular
// file, or a symbolic link to one inside the root, its size checked against
// lim before it is read). A file that breaks the rule, a symbolic link to
// nothing among them, is a *ContentError naming it; a file removed while
// the tree is walked is skipped, as removed. It honours ctx.
func ReadFS(ctx context.Context, fsys fs.FS, lim Limits) (*Files, error) {
	var r Rescan
	return r.ReadFS(ctx, fsys, lim)
}

// RacyWindow is how long after a file's last modification or change its
// stat is not trusted by a Rescan: a write within the same tick of the file
// system's clock (coarse on many, 1 s or 2 s on some) may leave size and
// times as they were, as git's "racily clean" index entries (see
// Documentation/technical/racy-git.adoc in git).
const RacyWindow = 2 * time.Second

// Rescan reads one policy root again and again (ReadFS), and reads again
// only the files that may have changed since the last successful scan. A
// file keeps the content read then when the name it resolves to and its stat
// (size, modification and change times, inode and device) are the same,
// and when, at that scan, it had not been modified or changed within
// RacyWindow of the scan's start: a file changed later than that may change
// again without its stat showing it, and is read every time. The change
// time is set by the kernel on every write, rename or chmod and cannot be
// set back, so an edit made with its modification time restored is seen
// too. A scan of an unchanged tree costs the stats of its files and returns
// the Files of the previous scan, digest included; the price is that a
// Rescan keeps that scan's content. Only Linux gives the stat a Rescan
// needs; elsewhere every scan reads every file, except on a file system
// that names content by hash (ContentID).
//
// The zero Rescan is ready; it is for one goroutine at a time.
type Rescan struct {
	prev   *Files
	stamps map[string]stamp // of prev's files whose content may be kept
	// tick, when positive, truncates the times of every stamp to a
	// multiple of it, as a file system whose clock ticks that seldom gives
	// them (tests: Linux's multigrain timestamps give ext4 and tmpfs
	// distinct change times for every observed write).
	tick time.Duration
}

// ContentID is what the FileInfo.Sys of a file returns when its file
// system names content by hash, as a git tree names blobs: two files with
// the same ContentID hold the same bytes. A Rescan trusts it without a racy
// window, so reading a commit's tree again reads only the blobs that
// changed.
type ContentID string

// stamp is what a Rescan compares to tell that a file is unchanged.
type stamp struct {
	resolved     string    // the name read, symbolic links resolved
	content      ContentID // the file system's name of the content, if it has one
	size         int64
	mtime, ctime int64 // nanoseconds since the Unix epoch
	dev, ino     uint64
}

// ReadFS is the package's ReadFS, keeping the content of the files that
// have not changed since r's last successful scan (see Rescan).
func (r *Rescan) ReadFS(ctx context.Context, fsys fs.FS, lim Limits) (*Files, error) {
	// Taken before any stat: a change during the scan is at or after it.
	trustBefore := time.Now().Add(-RacyWindow)
	files := NewFiles(lim)
	stamps := map[string]stamp{}
	kept := 0
	err := schema.WalkPolicyFiles(ctx, fsys, func(name string) error {
		resolved, info, err := schema.StatPolicyFile(fsys, name)
		if err != nil {
			return readError(fsys, name, err)
		}
		// The limits, the total's included, are checked before reading.
		if err := files.checkSize(name, info.Size()); err != nil {
			return err
		}
		st, trusted := r.stamp(resolved, info, trustBefore)
		if old, ok := r.stamps[name]; ok && trusted && old == st {
			stamps[name] = st
			kept++
			return files.Add(name, r.prev.m[name].Data)
		}
		data, resolved, info, err := schema.ReadPolicyFileStat(fsys, name, files.lim.File)
		if err != nil {
			return readError(fsys, name, err)
		}
		// The stamp of the file as opened, taken before it was read: a write
		// since then changed its change time, and the next scan reads the
		// file again.
		if st, trusted := r.stamp(resolved, info, trustBefore); trusted {
			stamps[name] = st
		}
		return files.Add(name, data)
	})
	if err != nil {
		return nil, err // the next scan compares with the last successful one
	}
	if r.prev != nil && kept == len(files.m) && kept == len(r.prev.m) {
		files = r.prev // the same names with the same content: the same Files
	}
	r.prev, r.stamps = files, stamps
	return files, nil
}

// stamp returns the stamp of the file resolved, whose information is info,
// and whether it can be trusted on a later scan: not when the file was
// modified or changed at or after trustBefore, nor when the platform gives
// no stamp.
func (r *Rescan) stamp(resolved string, info fs.FileInfo, trustBefore time.Time) (stamp, bool) {
	if id, ok := info.Sys().(ContentID); ok && id != "" {
		return stamp{resolved: resolved, size: info.Size(), content: id}, true
	}
	st, ok := stampOf(resolved, info)
	if !ok {
		return stamp{}, false
	}
	if r.tick > 0 {
		st.mtime -= st.mtime % int64(r.tick)
		st.ctime -= st.ctime % int64(r.tick)
	}
	cutoff := trustBefore.UnixNano()
	return st, st.mtime < cutoff && st.ctime < cutoff
}

// readError maps an error of schema's rule for name to what ReadFS returns:
// a *ContentError for a file that breaks the rule or a symbolic link to
// nothing, nil for a file removed while the tree is walked.
func readError(fsys fs.FS, name string, err error) error {
	var refused *schema.Error
	switch {
	case errors.As(err, &refused):
		return &ContentError{Path: name, Err: errors.New(refused.Message)}
	case errors.Is(err, fs.ErrNotExist):
		if _, lerr := fs.Lstat(fsys, name); lerr == nil {
			return &ContentError{Path: name, Err: errors.New("symbolic link to nothing")}
		}
		return nil
	}
	return err
}
