package reconciler

import (
	"context"
	"fmt"
	"io/fs"
)

// FSSource is a fixed set of policy files, such as the example policies
// embedded in the binary. Its revision is a hash of their content.
type FSSource struct {
	fsys fs.FS
	name string
}

// NewFSSource returns a source serving fsys, described as name.
func NewFSSource(fsys fs.FS, name string) *FSSource { return &FSSource{fsys: fsys, name: name} }

func (s *FSSource) String() string { return s.name }

// Fetch returns the files and their content hash.
func (s *FSSource) Fetch(ctx context.Context) (Revision, fs.FS, error) {
	files, hash, err := readPolicyFiles(ctx, s.fsys)
	if err != nil {
		return Revision{}, nil, fmt.Errorf("read %s: %w", s.name, err)
	}
	id := "sha256:" + hash[:16]
	return Revision{ID: id, Key: id}, files, nil
}
