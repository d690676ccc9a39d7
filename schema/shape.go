package schema

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
)

// The field tables of the Go validator, derived from the compiled #Charter.
//
// charter.cue is the one source of truth: the Go validator (decode.go),
// which checks JSON and YAML data files, and the rewording of CUE's errors
// (cueeval.go) read which fields each struct allows, which are required,
// their defaults, which lists must not be empty and the choices of each
// enumeration from the shapes below, computed once from the embedded schema.
// What stays in Go is what a field means: which Go field it fills, and the
// checks behind #ID, #UserID, #Name, #Description and time.Time, which the
// differential tests hold to CUE's verdicts.

// shapeKind says what kind of value a shape describes.
type shapeKind uint8

const (
	shapeScalar shapeKind = iota // a string, bool or number
	shapeStruct                  // a closed struct with named fields
	shapeMap                     // [Key=string]: T, entities keyed by ID, or tags
	shapeList                    // [...T] or [T, ...T]
)

// shape is what #Charter says about one value. Shapes are built once and
// never modified.
type shape struct {
	kind shapeKind

	// A scalar: its CUE kind, and the choices of an enumeration
	// ("a" | "b"), in schema order; nil when any value of the kind fits.
	scalar  cue.Kind
	choices []string

	// A struct: its fields in schema order, by name, and the names of the
	// required ones (regular fields without a concrete default).
	fields   []*fieldShape
	byName   map[string]*fieldShape
	required []string
	names    string // the field names, comma-separated, for messages

	// A struct whose further fields depend on one of its fields
	// (if type == "role" {...}): the discriminating field, the full shape
	// of each choice, and anyVariant, for a missing or unknown
	// discriminator: it allows the fields of every choice (without checking
	// those of the variants) and requires those of the base.
	discriminator string
	variants      map[string]*shape
	anyVariant    *shape

	// A map or a list: the shape of its elements; a list with a required
	// first element ([T, ...T]) must not be empty.
	elem     *shape
	nonEmpty bool
}

// fieldShape is one field of a struct.
type fieldShape struct {
	name     string
	optional bool // declared with "?"
	required bool
	def      *node // the default of a scalar, as a value of a data file; nil when none
	shape    *shape
	// unchecked marks a field of another variant in the anyVariant shape:
	// allowed, but its value is not checked, because what it must be
	// depends on the type that is missing or wrong (only that is reported).
	unchecked bool
}

// field returns the named field of a struct shape, or nil.
func (s *shape) field(name string) *fieldShape { return s.byName[name] }

// variant returns the shape of a discriminated struct whose discriminator
// holds typ, or the shape allowing every variant's fields when typ is not
// one of the choices. A struct without a discriminator is its own variant.
func (s *shape) variant(typ string) *shape {
	if s.variants == nil {
		return s
	}
	if v, ok := s.variants[typ]; ok {
		return v
	}
	return s.anyVariant
}

// shapes holds the shape of #Charter and, for the Go validator, the shapes
// of each entity and of the structs inside them.
type shapes struct {
	charter        *shape
	role           *shape
	rolePermission *shape
	group          *shape
	record         *shape
	statement      *shape
	server         *shape
	resource       *shape
	policy         *shape // discriminated by type
	permission     *shape // discriminated by type
	test           *shape
}

// charterShapes returns the shapes of the embedded schema, computed on first use.
var charterShapes = sync.OnceValue(func() *shapes {
	s, err := buildShapes(schemaSource)
	if err != nil {
		panic(fmt.Sprintf("embedded schema: %v", err)) // a build defect, caught by every test
	}
	return s
})

// buildShapes compiles a schema source and derives the shapes of its #Charter.
func buildShapes(src string) (*shapes, error) {
	f, err := parser.ParseFile(SchemaFile, src)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	def := cuecontext.New().BuildFile(f).LookupPath(cue.MakePath(cue.Def("Charter")))
	if err := def.Err(); err != nil {
		return nil, fmt.Errorf("build #Charter: %w", err)
	}
	b := &shapeBuilder{}
	s := &shapes{charter: b.shapeOf(def, 0)}
	if b.err != nil {
		return nil, b.err
	}
	at := func(path ...string) *shape {
		sh, err := s.charter.at(path...)
		if err != nil && b.err == nil {
			b.err = fmt.Errorf("#Charter.%s: %w", strings.Join(path, "."), err)
		}
		return sh
	}
	s.role = at("roles", "*")
	s.rolePermission = at("roles", "*", "permissions", "#")
	s.group = at("groups", "*")
	s.record = at("records", "*")
	s.statement = at("records", "*", "statements", "#")
	s.server = at("resourceServers", "*")
	s.resource = at("resourceServers", "*", "resources", "*")
	s.policy = at("resourceServers", "*", "policies", "*")
	s.permission = at("resourceServers", "*", "permissions", "*")
	s.test = at("tests", "*")
	if b.err != nil {
		return nil, b.err
	}
	return s, nil
}

// at walks a shape along a path of field names; "*" is the element of a
// map, "#" the element of a list.
func (s *shape) at(path ...string) (*shape, error) {
	for _, label := range path {
		var next *shape
		switch {
		case s.kind == shapeMap && label == "*", s.kind == shapeList && label == "#":
			next = s.elem
		case s.kind == shapeStruct:
			if f := s.field(label); f != nil {
				next = f.shape
			}
		}
		if next == nil {
			return nil, fmt.Errorf("no %q here", label)
		}
		s = next
	}
	return s, nil
}

// shapeBuilder derives shapes from CUE values, keeping the first error.
type shapeBuilder struct {
	err error
}

// maxShapeDepth bounds the walk of the schema, which has no recursion.
const maxShapeDepth = 16

func (b *shapeBuilder) fail(v cue.Value, format string, args ...any) *shape {
	if b.err == nil {
		b.err = fmt.Errorf("%s: %s", v.Path(), fmt.Sprintf(format, args...))
	}
	return &shape{kind: shapeScalar}
}

// shapeOf derives the shape of v.
func (b *shapeBuilder) shapeOf(v cue.Value, depth int) *shape {
	if depth > maxShapeDepth {
		return b.fail(v, "nested deeper than %d levels", maxShapeDepth)
	}
	fields, err := v.Fields(cue.Optional(true))
	if err == nil {
		var s *shape
		for fields.Next() {
			if s == nil {
				s = &shape{kind: shapeStruct, byName: map[string]*fieldShape{}}
			}
			f := fields.Value()
			fs := &fieldShape{name: fields.Selector().Unquoted(), optional: fields.IsOptional(), shape: b.shapeOf(f, depth+1)}
			d, hasDefault := f.Default()
			if fs.shape.kind == shapeScalar && hasDefault && d.IsConcrete() {
				fs.def = defaultNode(d)
			}
			fs.required = !fs.optional && d.Validate(cue.Concrete(true)) != nil
			s.addField(fs)
		}
		if s != nil {
			b.discriminate(s, v, depth)
			return s
		}
		if elem := v.LookupPath(cue.MakePath(cue.AnyString)); elem.Exists() {
			return &shape{kind: shapeMap, elem: b.shapeOf(elem, depth+1)}
		}
	}
	if v.IncompleteKind() == cue.ListKind {
		elem := v.LookupPath(cue.MakePath(cue.AnyIndex))
		if !elem.Exists() {
			return b.fail(v, "a list without an element type")
		}
		return &shape{kind: shapeList, elem: b.shapeOf(elem, depth+1), nonEmpty: v.LookupPath(cue.MakePath(cue.Index(0))).Exists()}
	}
	k := v.IncompleteKind()
	switch {
	case k == cue.StringKind, k == cue.BoolKind, k&cue.NumberKind != 0 && k&^cue.NumberKind == 0:
	default:
		return b.fail(v, "unexpected kind %v", k)
	}
	return &shape{kind: shapeScalar, scalar: k, choices: enumChoices(v)}
}

func (s *shape) addField(fs *fieldShape) {
	s.fields = append(s.fields, fs)
	s.byName[fs.name] = fs
	if fs.required {
		s.required = append(s.required, fs.name)
	}
	if s.names != "" {
		s.names += ", "
	}
	s.names += fs.name
}

// discriminate finds the field of s whose value decides further fields
// (if type == "role" {...}): an enumeration without a default such that v,
// with the field set to one of its choices, has fields that s lacks. Each
// variant lists the fields of s first, in schema order (the discriminator
// keeps its choices and stays required), then those its choice adds.
func (b *shapeBuilder) discriminate(s *shape, v cue.Value, depth int) {
	for _, f := range s.fields {
		if f.shape.kind != shapeScalar || f.shape.choices == nil || f.def != nil {
			continue
		}
		variants := map[string]*shape{}
		grows := false
		for _, c := range f.shape.choices {
			filled := b.shapeOf(v.FillPath(cue.MakePath(cue.Str(f.name)), c), depth)
			if filled.kind != shapeStruct {
				return
			}
			vs := &shape{kind: shapeStruct, byName: map[string]*fieldShape{}}
			for _, base := range s.fields {
				if vf := filled.field(base.name); vf != nil && base != f {
					vs.addField(vf)
				} else {
					vs.addField(base)
				}
			}
			for _, vf := range filled.fields {
				if vs.field(vf.name) == nil {
					vs.addField(vf)
					grows = true
				}
			}
			variants[c] = vs
		}
		if !grows {
			continue
		}
		s.discriminator, s.variants = f.name, variants
		s.anyVariant = &shape{kind: shapeStruct, byName: map[string]*fieldShape{}}
		for _, base := range s.fields {
			s.anyVariant.addField(base)
		}
		for _, c := range f.shape.choices {
			for _, vf := range variants[c].fields {
				if s.anyVariant.field(vf.name) == nil {
					s.anyVariant.addField(&fieldShape{name: vf.name, optional: true, shape: vf.shape, unchecked: true})
				}
			}
		}
		return
	}
}

// enumChoices returns the strings of a disjunction of string literals, or nil.
func enumChoices(v cue.Value) []string {
	op, args := v.Expr()
	if op != cue.OrOp {
		return nil
	}
	choices := make([]string, 0, len(args))
	for _, a := range args {
		s, err := a.String()
		if err != nil || !a.IsConcrete() {
			return nil
		}
		choices = append(choices, s)
	}
	return choices
}

// defaultNode returns a scalar default as the value a data file would hold.
func defaultNode(d cue.Value) *node {
	switch d.Kind() {
	case cue.StringKind:
		s, _ := d.String()
		return &node{kind: kindString, str: s}
	case cue.BoolKind:
		v, _ := d.Bool()
		return &node{kind: kindBool, b: v}
	case cue.IntKind, cue.FloatKind, cue.NumberKind:
		return &node{kind: kindNumber, str: fmt.Sprint(d)}
	}
	return nil
}

// shapeAt returns the shape of the value at labels (CUE error labels:
// quoted field names, list indexes) below #Charter, or nil. A discriminated
// struct takes the variant that the user's value raw holds, if known.
func shapeAt(labels []string, raw cue.Value) *shape {
	s := charterShapes().charter
	for i, l := range labels {
		switch s.kind {
		case shapeMap, shapeList:
			s = s.elem
		case shapeStruct:
			s = structAt(s, labels[:i], raw)
			if u, err := strconv.Unquote(l); err == nil {
				l = u
			}
			f := s.field(l)
			if f == nil {
				return nil
			}
			s = f.shape
		default:
			return nil
		}
	}
	return s
}

// inUnknownVariant reports whether labels lead into a field that only some
// variants of a discriminated struct have, in a struct whose discriminator
// the user left out or set to no known choice. Neither validator checks
// such fields: what they must hold depends on the type, whose error is
// reported instead.
func inUnknownVariant(labels []string, raw cue.Value) bool {
	s := charterShapes().charter
	for i, l := range labels {
		switch s.kind {
		case shapeMap, shapeList:
			s = s.elem
			continue
		case shapeStruct:
		default:
			return false
		}
		s = structAt(s, labels[:i], raw)
		if u, err := strconv.Unquote(l); err == nil {
			l = u
		}
		f := s.field(l)
		if f == nil {
			return false
		}
		if f.unchecked {
			return true
		}
		s = f.shape
	}
	return false
}

// structAt returns the variant of the struct shape s at labels that raw holds.
func structAt(s *shape, labels []string, raw cue.Value) *shape {
	if s.variants == nil {
		return s
	}
	typ := ""
	if raw.Exists() {
		typ, _ = lookup(raw, append(labels[:len(labels):len(labels)], s.discriminator)).String()
	}
	return s.variant(typ)
}
