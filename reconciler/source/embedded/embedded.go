// Package embedded is a policy source over a fixed fs.FS, such as the
// example policies built into the charter binary. Its content never
// changes, so it has no watcher and no history: its revision is
// "sha256:<16 hex>" of the content, and fetching again is no work.
package embedded

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/charter-policy/charter/reconciler/source"
)

// Source serves the policy files of a fixed fs.FS.
type Source struct {
	fsys fs.FS
	name string
	lim  source.Limits
}

var _ source.Source = (*Source)(nil)

// New returns a source serving the policy files of fsys, described as name
// (for example "embedded:policies-example"). fsys must not change.
func New(fsys fs.FS, name string) *Source {
	return &Source{fsys: fsys, name: name}
}

// String returns the name given to New.
func (s *Source) String() string { return s.name }

// Fetch returns the policy files and their content digest.
func (s *Source) Fetch(ctx context.Context) (source.Revision, fs.FS, error) {
	files, err := source.ReadFS(ctx, s.fsys, s.lim)
	if err != nil {
		return source.Revision{}, nil, fmt.Errorf("read %s: %w", s.name, err)
	}
	d := files.Digest()
	return source.Revision{ID: d.ID(), Key: d.String(), Signature: source.Signature{Status: source.SignatureNone}}, files.FS(), nil
}
