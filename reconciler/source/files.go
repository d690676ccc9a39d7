package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// CheckSize returns a *ContentError when a file of size bytes at name
// would exceed a limit; call it before reading the file.
func (f *Files) CheckSize(name string, size int64) error {
	if size > f.lim.File {
		return &ContentError{Path: name, Err: fmt.Errorf("%d bytes exceed the limit of %d per file", size, f.lim.File)}
	}
	if f.total+size > f.lim.Total {
		return &ContentError{Path: name, Err: fmt.Errorf("policy files exceed %d bytes together", f.lim.Total)}
	}
	return nil
}

// Read reads the file at name from r, at most the per-file limit, and adds
// it. size is what the file's metadata says, checked before reading.
func (f *Files) Read(name string, size int64, r io.Reader) error {
	if err := f.CheckSize(name, size); err != nil {
		return err
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead)) // one allocation when size is right
	if _, err := buf.ReadFrom(io.LimitReader(r, f.lim.File+1)); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return f.Add(name, buf.Bytes())
}

// Add adds the file name (slash-separated, relative to the policy root)
// with its content.
func (f *Files) Add(name string, data []byte) error {
	if err := f.CheckSize(name, int64(len(data))); err != nil {
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

// ReadFS collects the policy files of fsys (schema.IsPolicyFile) into
// memory. Only regular files are read; anything else in a policy file's
// place is a *ContentError. It honours ctx.
func ReadFS(ctx context.Context, fsys fs.FS, lim Limits) (*Files, error) {
	files := NewFiles(lim)
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if schema.SkipDir(name) {
				return fs.SkipDir
			}
			return nil
		}
		if !schema.IsPolicyFile(name) {
			return nil
		}
		if !d.Type().IsRegular() {
			return &ContentError{Path: name, Err: fmt.Errorf("not a regular file (%s)", d.Type())}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := fsys.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		return files.Read(name, info.Size(), f)
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}
