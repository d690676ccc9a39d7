package schema

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"

	"github.com/charter-policy/charter/schema/quote"
)

// ErrNoPolicy is returned by Load when the policy root holds no policy file.
var ErrNoPolicy = errors.New("no policy files (*.cue, *.json, *.yaml, *.yml) found")

// Error is one problem with a policy, at a position in a user's file.
type Error struct {
	Pos     Pos
	Path    string // the field, in CUE syntax: roles.Admin.permissions.0.action
	Message string

	labels []string // Path's labels, for an error that CUE reported
}

// Error renders the error as "file:line:col: path: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is a list of problems found in a policy. The Loader returns every
// problem it found, sorted by file, line and column.
type Errors []*Error

// Error renders one error per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// files returns the files the errors are placed in, in order of appearance.
func (es Errors) files() []string {
	var files []string
	for _, e := range es {
		if e.Pos.File != "" && !slices.Contains(files, e.Pos.File) {
			files = append(files, e.Pos.File)
		}
	}
	return files
}

// sortErrors orders errors by position, then path and message, and drops exact duplicates.
func sortErrors(es Errors) Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.CompactFunc(es, func(a, b *Error) bool {
		return a.Pos == b.Pos && a.Path == b.Path && a.Message == b.Message
	})
}

// fieldPath is a field path built while decoding; it is rendered only when an error needs it.
type fieldPath struct {
	parent *fieldPath
	label  string
	index  int // list index, or -1 for a field (whose label may be "")
}

func (p *fieldPath) field(label string) *fieldPath {
	return &fieldPath{parent: p, label: label, index: -1}
}
func (p *fieldPath) elem(i int) *fieldPath { return &fieldPath{parent: p, index: i} }

// String renders the path the way CUE does: identifiers bare, other labels
// quoted, list indexes as numbers.
func (p *fieldPath) String() string {
	var parts []string
	for q := p; q != nil; q = q.parent {
		parts = append(parts, q.selector())
	}
	slices.Reverse(parts)
	return strings.Join(parts, ".")
}

func (p *fieldPath) selector() string {
	if p.index >= 0 {
		return strconv.Itoa(p.index)
	}
	return quoteLabel(p.label)
}

// quoteLabel renders a field label as CUE prints it in a path, so that a
// field of a data file and the same field of a CUE file have one path. A
// label is a user's identifier: it is cut to quote.MaxRunes characters.
func quoteLabel(label string) string {
	label = quote.Cut(label)
	if ast.StringLabelNeedsQuoting(label) {
		return literal.Label.Quote(label)
	}
	return label
}

// cuePath renders the labels of a CUE error's path as fieldPath renders
// the same path: CUE's labels come quoted where needed, and a label longer
// than quote.MaxRunes is cut like any other.
func cuePath(labels []string) string {
	parts := make([]string, len(labels))
	for i, l := range labels {
		if utf8.RuneCountInString(l) <= quote.MaxRunes {
			parts[i] = l
			continue
		}
		if u, err := literal.Unquote(l); err == nil {
			l = u
		}
		parts[i] = quoteLabel(l)
	}
	return strings.Join(parts, ".")
}

// JoinPath renders labels as a CUE path: identifiers bare, other labels quoted.
func JoinPath(labels ...string) string {
	var p *fieldPath
	for _, l := range labels {
		p = p.field(l)
	}
	return p.String()
}
