package schema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/charter-policy/charter/schema/quote"
)

// The rules of SPEC section 1 that decide which files are policy files and
// how they are read. Every source and the loader should use them, so that
// what a source hashes and hands over is exactly what the loader reads.

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

// WalkPolicyFiles calls fn with the name of every policy file of fsys
// (IsPolicyFile), in lexical order, without descending into the
// directories SkipDir names. An entry below the root that vanishes while
// the tree is walked is skipped, as removed. The walk stops when ctx is
// done, and at the first error of the walk or of fn, which it returns as
// is. The loader and every source walk a policy root with it.
func WalkPolicyFiles(ctx context.Context, fsys fs.FS, fn func(name string) error) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && name != "." {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if SkipDir(name) {
				return fs.SkipDir
			}
			return nil
		}
		if !IsPolicyFile(name) {
			return nil
		}
		return fn(name)
	})
}

// MaxFileBytes bounds one policy file by default: a larger file is an
// error, never read.
const MaxFileBytes = 64 << 20

// MaxTotalBytes bounds all the policy files of a root together by default.
const MaxTotalBytes = 1 << 30

// SizeLimits bound what is read of one policy root, checked against each
// file's size before it is read; a zero field takes its default
// (MaxFileBytes, MaxTotalBytes). The loader and every source use them, so
// that charter validate and the sidecar refuse the same files with the
// same message.
type SizeLimits struct {
	File  int64 // the size of one file
	Total int64 // the size of all files together
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l SizeLimits) WithDefaults() SizeLimits {
	if l.File <= 0 {
		l.File = MaxFileBytes
	}
	if l.Total <= 0 {
		l.Total = MaxTotalBytes
	}
	return l
}

// Check returns an *Error naming the policy file name, of size bytes, when
// reading it would exceed l (its defaults applied) after total bytes of
// the root's other files were read.
func (l SizeLimits) Check(name string, size, total int64) error {
	l = l.WithDefaults()
	if size > l.File {
		return refusal(name, "file is %d bytes, more than the %d a policy file may hold", size, l.File)
	}
	if total+size > l.Total {
		return refusal(name, "policy files exceed %d bytes together", l.Total)
	}
	return nil
}

// maxLinkHops bounds the symbolic links followed to resolve one name.
const maxLinkHops = 40

// ReadPolicyFile reads the policy file name (relative to the policy root
// fsys) under the rules of SPEC section 1: only a regular file is read, or
// a symbolic link that leads, through every link on the way and never
// above the root, to a regular file inside the policy root, but not inside
// .git (git's own files, where a CI checkout keeps its credentials; other
// hidden directories may be reached through a link, as a Kubernetes
// ConfigMap volume's "..data" is); a file larger than MaxFileBytes is
// refused before it is read. Links are resolved as the system resolves them, one component at a
// time, so that "link/.." is the parent of the link's target; a link with
// an absolute target is refused, even one that names a place inside the
// root, because the content of a revision must not depend on where it is
// checked out. A file that breaks a rule, and a link to nothing, is an
// *Error naming it (a problem of the policy, not of I/O). Symbolic links
// are seen only when fsys implements fs.ReadLinkFS, as os.DirFS does;
// other file systems are read as they present themselves.
func ReadPolicyFile(fsys fs.FS, name string) ([]byte, error) {
	return ReadPolicyFileAtMost(fsys, name, MaxFileBytes)
}

// ReadPolicyFileAtMost is ReadPolicyFile with a bound of its own, for a
// source that reads under a smaller limit than the loader's.
func ReadPolicyFileAtMost(fsys fs.FS, name string, maxBytes int64) ([]byte, error) {
	data, _, _, err := ReadPolicyFileStat(fsys, name, maxBytes)
	return data, err
}

// ReadPolicyFileStat is ReadPolicyFileAtMost that also returns the name it
// read (name itself unless a symbolic link was followed) and the
// information of the file as it was opened, before it was read: what a
// source compares on its next scan to tell that the file has not changed
// (the inode is that of the content read, whatever was renamed meanwhile).
func ReadPolicyFileStat(fsys fs.FS, name string, maxBytes int64) ([]byte, string, fs.FileInfo, error) {
	resolved, info, err := StatPolicyFile(fsys, name)
	if err != nil {
		return nil, "", nil, err
	}
	if err := (SizeLimits{File: maxBytes, Total: math.MaxInt64}).Check(name, info.Size(), 0); err != nil {
		return nil, "", nil, err
	}
	return readChecked(fsys, name, resolved, info, maxBytes)
}

// OpenFileFS is a file system that opens a file with the flags of
// os.OpenFile, as os.Root does: ReadPolicyFile opens through it without
// blocking (O_NONBLOCK), so that a named pipe swapped in for a checked
// regular file is refused rather than waited on. RootFS makes one of an
// os.Root; the loader and the sources read the disk through one.
type OpenFileFS interface {
	fs.FS
	OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error)
}

// RootFS returns the file system of root, as root.FS() (whose ReadLink,
// Lstat, Stat, ReadDir and ReadFile it keeps), that is also an OpenFileFS.
func RootFS(root *os.Root) OpenFileFS {
	return rootFS{root.FS().(rootFSMethods), root}
}

// rootFSMethods are the methods of root.FS() that rootFS keeps.
type rootFSMethods interface {
	fs.ReadLinkFS
	fs.StatFS
	fs.ReadDirFS
	fs.ReadFileFS
}

type rootFS struct {
	rootFSMethods
	root *os.Root
}

func (r rootFS) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return r.root.OpenFile(name, flag, perm)
}

// openChecked opens resolved, the name that name leads to, without
// blocking when fsys is an OpenFileFS.
func openChecked(fsys fs.FS, resolved string) (fs.File, error) {
	if ofs, ok := fsys.(OpenFileFS); ok {
		return ofs.OpenFile(resolved, os.O_RDONLY|openNonblock, 0)
	}
	return fsys.Open(resolved)
}

// readChecked reads resolved, which StatPolicyFile found for name with the
// information info, refusing what was opened unless it is that regular file.
func readChecked(fsys fs.FS, name, resolved string, info fs.FileInfo, maxBytes int64) ([]byte, string, fs.FileInfo, error) {
	f, err := openChecked(fsys, resolved)
	if err != nil {
		return nil, "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	opened, err := f.Stat()
	if err != nil {
		return nil, "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	// What was opened must be what was checked: a file swapped for a named
	// pipe, a device, a link or another file in between is refused (a
	// regular file reads the same with O_NONBLOCK). os.SameFile tells only
	// for the information of package os (it is false for any other, even
	// for the same value), so other file systems are not asked.
	if !opened.Mode().IsRegular() {
		return nil, "", nil, refusal(name, "changed to %s while it was read: a policy file is a regular file, or a symbolic link to one inside the policy root", fileKind(opened.Mode()))
	}
	if os.SameFile(info, info) && !os.SameFile(info, opened) {
		return nil, "", nil, refusal(name, "file changed while it was read: read it again")
	}
	// As os.ReadFile: one buffer of the size Stat gave, grown only if the
	// file grows, and never past the bound.
	data := make([]byte, 0, min(opened.Size(), maxBytes)+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if int64(len(data)) > maxBytes {
			return nil, "", nil, refusal(name, "file grew past the %d bytes a policy file may hold while it was read", maxBytes)
		}
		if err == io.EOF {
			return data, resolved, opened, nil
		}
		if err != nil {
			return nil, "", nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// StatPolicyFile applies the rules of ReadPolicyFile to the policy file
// name without reading it: it returns the name inside the root that name
// leads to (name itself unless a symbolic link is followed) and that file's
// information, as fs.Lstat gives it (fs.Stat on a file system without
// symbolic links). A symbolic link that is not followed,
// or a file that is not regular, is an *Error naming name; the size is not
// checked.
func StatPolicyFile(fsys fs.FS, name string) (string, fs.FileInfo, error) {
	resolved, info, err := resolveInRoot(fsys, name)
	if err != nil {
		var bad *badLinkError
		if errors.As(err, &bad) {
			return "", nil, refusal(name, "%s", bad.msg)
		}
		return "", nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return "", nil, refusal(name, "not a regular file (%s): a policy file is a regular file, or a symbolic link to one inside the policy root", fileKind(info.Mode()))
	}
	return resolved, info, nil
}

// refusal is the error of a policy file that is not read: a problem of the
// policy, placed at the file's first line.
func refusal(name, format string, args ...any) error {
	return &Error{Pos: Pos{File: name, Line: 1}, Message: fmt.Sprintf(format, args...)}
}

// badLinkError is a symbolic link that is not followed: it leads outside
// the policy root, to nothing, into .git, or through too many links.
type badLinkError struct {
	msg string
}

func (e *badLinkError) Error() string { return e.msg }

// resolveInRoot follows the symbolic links of name as the system does, one
// component at a time: a link's target takes the link's place, and ".."
// leaves the directory resolved so far, which is free of links. It returns
// the name of what name leads to, inside the root, with its Lstat
// information; a link that is not followed is a *badLinkError.
func resolveInRoot(fsys fs.FS, name string) (string, fs.FileInfo, error) {
	if _, ok := fsys.(fs.ReadLinkFS); !ok {
		info, err := fs.Stat(fsys, name)
		return name, info, err
	}
	hops := 0
	target := ""                     // the target of the last link followed
	done := ""                       // the components resolved, free of links
	var ends []int                   // where each component of done starts, for ".."
	var last fs.FileInfo             // done's information, when it was looked up last
	rest := strings.Split(name, "/") // the components still to walk
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(ends) == 0 && hops == 0 {
				return "", nil, &badLinkError{fmt.Sprintf("%s leads outside the policy root", quote.String(name))}
			}
			if len(ends) == 0 {
				return "", nil, outsideRoot(target)
			}
			done, ends, last = done[:max(ends[len(ends)-1]-1, 0)], ends[:len(ends)-1], nil
			continue
		}
		next := c
		if done != "" {
			next = done + "/" + c
		}
		info, err := fs.Lstat(fsys, next)
		if err != nil {
			if hops > 0 && errors.Is(err, fs.ErrNotExist) {
				return "", nil, toNothing(target)
			}
			return "", nil, err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			if len(rest) > 0 && !info.IsDir() {
				if hops > 0 {
					return "", nil, toNothing(target) // a file in the middle of a path
				}
				return "", nil, &fs.PathError{Op: "lstat", Path: next + "/" + path.Join(rest...), Err: fs.ErrNotExist}
			}
			ends = append(ends, len(next)-len(c))
			done, last = next, info
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", nil, &badLinkError{fmt.Sprintf("more than %d symbolic links to follow (a loop?)", maxLinkHops)}
		}
		if target, err = fs.ReadLink(fsys, next); err != nil {
			return "", nil, err
		}
		if path.IsAbs(target) || strings.HasPrefix(target, `\`) || len(target) > 1 && target[1] == ':' {
			return "", nil, outsideRoot(target)
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	if hops > 0 && slices.Contains(strings.Split(done, "/"), ".git") {
		return "", nil, &badLinkError{fmt.Sprintf("symbolic link to %s leads into .git, whose files are never policy (and may hold credentials)", quote.String(target))}
	}
	if done == "" {
		done = "."
	}
	if last == nil {
		var err error
		if last, err = fs.Lstat(fsys, done); err != nil {
			return "", nil, err
		}
	}
	return done, last, nil
}

func outsideRoot(target string) error {
	return &badLinkError{fmt.Sprintf("symbolic link to %s leads outside the policy root: only links to files inside it are followed", quote.String(target))}
}

func toNothing(target string) error {
	return &badLinkError{fmt.Sprintf("symbolic link to nothing: %s names no file inside the policy root", quote.String(target))}
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeIrregular != 0:
		return "an irregular entry, such as a git submodule"
	}
	return "mode " + m.String()
}
