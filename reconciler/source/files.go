package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"testing/fstest"

	"github.com/charter-policy/charter/schema"
)

// Default limits on what a source reads.
const (
	DefaultFileBytes  = schema.MaxFileBytes // one policy file, as the loader allows
	DefaultTotalBytes = 1 << 30             // all policy files of a revision
)

// Limits bound what a source reads; a zero field takes its default.
type Limits struct {
	File  int64 // the size of one file
	Total int64 // the size of all files together
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.File <= 0 {
		l.File = DefaultFileBytes
	}
	if l.Total <= 0 {
		l.Total = DefaultTotalBytes
	}
	return l
}

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
}

// NewFiles returns an empty collection bounded by lim.
func NewFiles(lim Limits) *Files {
	return &Files{lim: lim.WithDefaults(), m: fstest.MapFS{}}
}

// checkSize returns a *ContentError when a file of size bytes at name
// would exceed a limit.
func (f *Files) checkSize(name string, size int64) error {
	if size > f.lim.File {
		return &ContentError{Path: name, Err: fmt.Errorf("%d bytes exceed the limit of %d per file", size, f.lim.File)}
	}
	if f.total+size > f.lim.Total {
		return &ContentError{Path: name, Err: fmt.Errorf("policy files exceed %d bytes together", f.lim.Total)}
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

// Digest returns the digest of the files collected.
func (f *Files) Digest() Digest {
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
	files := NewFiles(lim)
	err := schema.WalkPolicyFiles(ctx, fsys, func(name string) error {
		// The rule first (a link out of the root is never looked at
		// further), then the limits, the total's included, before reading.
		data, err := schema.ReadPolicyFileChecked(fsys, name, files.lim.File, func(info fs.FileInfo) error {
			return files.checkSize(name, info.Size())
		})
		if err == nil {
			return files.Add(name, data)
		}
		var refused *schema.Error
		switch {
		case errors.As(err, &refused):
			return &ContentError{Path: name, Err: errors.New(refused.Message)}
		case errors.Is(err, fs.ErrNotExist):
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}
