package schema

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzCUEAndGoAgree feeds the same generated policy document to CUE (as a
// .cue file, unified with #Charter) and to the Go validator (as a .json data
// file), and requires the same verdict, the same fields in error and, for a
// valid document, the same decoded entities. Documents are built from the
// fuzz bytes by walking the schema's own tables: random entities, fields of
// the right struct, of another variant and misspelled ones, values of the
// right kind (valid or not for their field) and of the wrong kind.
//
// Known, deliberate differences are not generated: a field given twice (in
// CUE two equal values unify and two different ones conflict; a data file
// must give each field once, which the Go validator reports as "field given
// twice").
//
//	go test ./schema -run '^$' -fuzz FuzzCUEAndGoAgree -fuzztime 5m
func FuzzCUEAndGoAgree(f *testing.F) {
	for _, seed := range cueAndGoSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc := generateDocument(data)
		compareCUEAndGo(t, doc)
	})
}

// cueAndGoSeeds are the seeds of FuzzCUEAndGoAgree besides its corpus in testdata.
var cueAndGoSeeds = [][]byte{
	nil,
	{0xff, 0xff, 0xff, 0xff},
	[]byte("charter policies, all of them"),
	bytes.Repeat([]byte{7, 200, 13, 99}, 64),
	bytes.Repeat([]byte{1, 2, 3, 250, 60, 41}, 100),
}

// compareCUEAndGo evaluates doc with CUE and with the Go validator and
// fails the test where the two disagree.
func compareCUEAndGo(t *testing.T, doc string) {
	t.Helper()
	viaCUE := evalInProcess(&unit{key: "dir:.", dir: ".", files: []sourceFile{{name: "sample.cue", data: []byte(doc)}}})
	viaGo := evalInProcess(&unit{key: "file:sample.json", dir: ".", files: []sourceFile{{name: "sample.json", data: []byte(doc)}}})
	cuePaths, goPaths := errorPaths(viaCUE.errs), errorPaths(viaGo.errs)
	if !slices.Equal(cuePaths, goPaths) {
		t.Fatalf("fields in error differ for\n%s\nonly CUE:\n%s\nonly Go:\n%s", doc,
			errorsNotAt(viaCUE.errs, goPaths), errorsNotAt(viaGo.errs, cuePaths))
	}
	if len(viaCUE.errs) > 0 {
		return
	}
	a, b := stripPositions(viaCUE.policy), stripPositions(viaGo.policy)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("decoded policies differ for\n%s\nCUE: %+v\nGo:  %+v", doc, a, b)
	}
}

// errorsNotAt lists the errors whose path is not among paths, each once.
func errorsNotAt(errs Errors, paths []string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, e := range errs {
		if !slices.Contains(paths, e.Path) && !seen[e.Error()] {
			seen[e.Error()] = true
			b.WriteString("  " + e.Error() + "\n")
		}
	}
	return b.String()
}

// stripPositions clears the positions of p, which differ between the two
// paths (CUE places an entity at its value, a data file at its key).
func stripPositions(p *PolicySet) *PolicySet {
	zeroPos(reflect.ValueOf(p).Elem())
	return p
}

// zeroPos sets every Pos reachable from v to the zero Pos.
func zeroPos(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			zeroPos(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[Pos]() {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := range v.NumField() {
			zeroPos(v.Field(i))
		}
	case reflect.Slice:
		for i := range v.Len() {
			zeroPos(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			zeroPos(e)
			v.SetMapIndex(k, e)
		}
	}
}

// docGen draws the choices of a generated document from fuzz bytes; once
// they run out every draw is 0, which ends lists and maps.
type docGen struct {
	data []byte
}

func (g *docGen) next() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *docGen) intn(n int) int { return int(g.next()) % n }

// chance reports true pct times in 100, and true once the bytes run out
// (for pct > 0), so that a short input still yields required fields.
func (g *docGen) chance(pct int) bool { return g.intn(100) < pct }

// member is one field of a generated struct, in order.
type member struct {
	key string
	val any
}

// object is a generated struct; it renders with its fields in order.
type object []member

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSON(&b, m.key)
		b.WriteByte(':')
		writeJSON(&b, m.val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	b.Truncate(b.Len() - 1) // the encoder's newline
}

// rawNumber is a number literal written as generated.
type rawNumber string

func (n rawNumber) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// generateDocument builds a policy document from fuzz bytes. A byte order
// mark is written escaped: CUE's scanner refuses one anywhere in a file,
// even inside a string, where JSON allows it (a difference of the formats,
// not of the validators; FuzzJSONValid covers the JSON side).
func generateDocument(data []byte) string {
	g := &docGen{data: data}
	var b bytes.Buffer
	writeJSON(&b, g.structOf(charterShapes().charter))
	return strings.ReplaceAll(b.String(), "\ufeff", `\ufeff`)
}

// stringPool holds strings that exercise the checks behind the schema's
// string fields: IDs, user IDs, names, descriptions, times, URIs, actions.
var stringPool = [...]string{
	"a", "R", "Editor", "g", "bad id", "-x", "a.b:c@d-e_f", "", "ann", "bob@example.com", "a\x01b",
	strings.Repeat("é", 150), strings.Repeat("é", 151), strings.Repeat("d", 1000), strings.Repeat("d", 1001),
	strings.Repeat("u", 256), strings.Repeat("u", 257), strings.Repeat("i", 128), strings.Repeat("i", 129),
	"2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5+01:00", "2026-01-01", "tomorrow", "2026-02-30T00:00:00Z",
	"documents/d1", "documents:read", "*", "UTC", "Europe/Berlin", "mon", "allow", "role", "scope",
}

// str draws a string: from the pool, or from the pool with one character
// replaced or inserted.
func (g *docGen) str() string {
	s := stringPool[g.intn(len(stringPool))]
	if !g.chance(30) || len(g.data) == 0 {
		return s
	}
	r := []rune(s)
	i := g.intn(len(r) + 1)
	c := rune(g.next())
	switch {
	case c >= 0xf0:
		c = []rune{'é', '😀', '\u2028', '\ufeff', 'ß', '\u0085', '\u00a0', 'İ'}[(c-0xf0)&7]
	case c >= 0x80:
		c = rune('a' + c%26)
	}
	if i < len(r) && g.chance(50) {
		r[i] = c
	} else {
		r = slices.Insert(r, i, c)
	}
	return string(r)
}

// wrongKind draws a value of any kind.
func (g *docGen) wrongKind() any {
	switch g.intn(7) {
	case 0:
		return rawNumber([]string{"1", "-2", "3.5", "1e3", "0"}[g.intn(5)])
	case 1:
		return g.chance(50)
	case 2:
		return nil
	case 3:
		return g.str()
	case 4:
		return []any{}
	case 5:
		return []any{g.str()}
	default:
		return object{}
	}
}

// valueOf draws a value for shape s: mostly of the right kind, sometimes not.
func (g *docGen) valueOf(s *shape) any {
	if g.chance(8) && len(g.data) > 0 {
		return g.wrongKind()
	}
	switch s.kind {
	case shapeStruct:
		return g.structOf(s)
	case shapeMap:
		n := g.intn(3)
		var o object
		for range n {
			key := g.str()
			if slices.ContainsFunc(o, func(m member) bool { return m.key == key }) {
				continue
			}
			o = append(o, member{key, g.valueOf(s.elem)})
		}
		return o
	case shapeList:
		n := g.intn(4)
		l := make([]any, 0, n)
		for range n {
			l = append(l, g.valueOf(s.elem))
		}
		return l
	}
	switch {
	case s.choices != nil:
		if g.chance(85) {
			return s.choices[g.intn(len(s.choices))]
		}
		return []string{"bogus", strings.ToUpper(s.choices[0]), s.choices[0] + " "}[g.intn(3)]
	case s.scalar == 0:
		return nil
	}
	switch s.scalar.String() {
	case "bool":
		return g.chance(50)
	case "int":
		return rawNumber([]string{"0", "5", "23", "24", "-1", "3.5", "1e1", "7.0"}[g.intn(8)])
	}
	return g.str()
}

// structOf draws a struct of shape s: its required fields mostly, its
// optional ones sometimes, and now and then a field of another variant or
// a misspelled one.
func (g *docGen) structOf(s *shape) object {
	v := s
	var o object
	if s.variants != nil {
		choices := s.field(s.discriminator).shape.choices
		typ := choices[g.intn(len(choices))]
		if !g.chance(90) {
			typ = []string{"js", "Role", ""}[g.intn(3)]
		}
		v = s.variant(typ)
		for _, f := range v.fields {
			if f.name == s.discriminator {
				if typ != "" {
					o = append(o, member{f.name, typ})
				}
				continue
			}
			if f.required && g.chance(90) || !f.required && g.chance(40) {
				o = append(o, member{f.name, g.valueOf(f.shape)})
			}
		}
		if g.chance(10) && len(g.data) > 0 {
			other := s.anyVariant.fields[g.intn(len(s.anyVariant.fields))]
			if !slices.ContainsFunc(o, func(m member) bool { return m.key == other.name }) {
				o = append(o, member{other.name, g.valueOf(other.shape)})
			}
		}
	} else {
		for _, f := range v.fields {
			if f.required && g.chance(90) || !f.required && g.chance(40) {
				o = append(o, member{f.name, g.valueOf(f.shape)})
			}
		}
	}
	if g.chance(6) && len(g.data) > 0 && len(v.fields) > 0 {
		name := misspell(v.fields[g.intn(len(v.fields))].name, g.intn(4))
		if v.field(name) == nil && (s.anyVariant == nil || s.anyVariant.field(name) == nil) {
			o = slices.Insert(o, g.intn(len(o)+1), member{name, g.wrongKind()})
		}
	}
	return o
}

// misspell returns name misspelled in one of four ways.
func misspell(name string, how int) string {
	switch how {
	case 0:
		return name[:len(name)-1]
	case 1:
		return name + "s"
	case 2:
		return strings.ToUpper(name[:1]) + name[1:]
	}
	return "x" + name
}

// TestGeneratedDocuments: the generator yields valid documents as well as
// invalid ones, and both evaluators agree on a few fixed inputs.
func TestGeneratedDocuments(t *testing.T) {
	valid := 0
	for i := range 40 {
		data := bytes.Repeat([]byte{byte(i * 37), byte(i * 11), 3, byte(255 - i)}, 20+i)
		doc := generateDocument(data)
		compareCUEAndGo(t, doc)
		r := evalInProcess(&unit{key: "file:g.json", dir: ".", files: []sourceFile{{name: "g.json", data: []byte(doc)}}})
		if len(r.errs) == 0 {
			valid++
		}
	}
	if valid == 0 {
		t.Errorf("no generated document was valid")
	}
}
