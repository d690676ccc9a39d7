package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/charter-policy/charter/schema/quote"
)

// sourceFile is one file of a policy directory, named relative to the policy root.
type sourceFile struct {
	name string
	data []byte
}

// cueResult is what evaluating one directory's CUE files yields, wherever
// that ran (in this process or in a child, see CUERunner): the tree of the
// evaluated instance, to be decoded, or the errors that kept it from being
// made. With errors, declared lists the roles and groups the instance
// declares, or is nil when the files did not build into an instance.
type cueResult struct {
	tree     *node
	errs     Errors
	declared *references
}

// evalCUE evaluates the CUE files of one directory as one instance unified
// with the schema and converts it to a node tree: the expensive part of
// loading a CUE unit, which a CUERunner may run in another process.
// Each call uses a fresh cue.Context, because a context only grows.
func evalCUE(dir string, files []sourceFile) cueResult {
	var errs Errors
	syntax := make([]*ast.File, 0, len(files))
	for _, f := range files {
		af, err := parser.ParseFile(f.name, f.data)
		if err != nil {
			errs = append(errs, fromCUEErrors(cue.Value{}, err)...)
			continue
		}
		syntax = append(syntax, af)
	}
	if len(errs) > 0 {
		return cueResult{errs: errs}
	}
	if errs := checkPackages(syntax); len(errs) > 0 {
		return cueResult{errs: errs}
	}

	ctx := cuecontext.New()
	schemaFile, err := parser.ParseFile(SchemaFile, schemaSource)
	if err != nil {
		panic(fmt.Sprintf("embedded schema does not parse: %v", err)) // a build defect, caught by tests
	}
	def := ctx.BuildFile(schemaFile).LookupPath(cue.MakePath(cue.Def("Charter")))
	if def.Err() != nil {
		panic(fmt.Sprintf("embedded schema does not build: %v", def.Err()))
	}

	inst := build.NewContext().NewInstance(dir, nil)
	for _, af := range syntax {
		if err := inst.AddSyntax(af); err != nil {
			return cueResult{errs: evalFailed(fromCUEErrors(cue.Value{}, err), files, err)}
		}
	}
	raw := ctx.BuildInstance(inst)
	if err := raw.Err(); err != nil {
		return cueResult{errs: evalFailed(fromCUEErrors(raw, err), files, err)}
	}
	unified := def.Unify(raw)
	if err := unified.Validate(cue.Concrete(true)); err != nil {
		errs := fromCUEErrors(raw, validateAll(unified, err)...)
		errs = slices.DeleteFunc(errs, func(e *Error) bool { return inUnknownVariant(e.labels, raw) })
		return cueResult{errs: evalFailed(belowNotAllowed(append(errs, notAllowed(raw, errs)...)), files, err), declared: declaredInCUE(raw)}
	}
	tree, deep := cueNode(raw, unified, nil, Pos{File: files[0].name, Line: 1, Col: 1})
	if deep != nil {
		return cueResult{errs: Errors{deep}, declared: declaredInCUE(raw)}
	}
	return cueResult{tree: tree}
}

// declaredInCUE lists the roles and groups an instance declares.
func declaredInCUE(raw cue.Value) *references {
	d := &references{}
	for _, kind := range []string{"roles", "groups"} {
		it, err := raw.LookupPath(cue.MakePath(cue.Str(kind))).Fields(cue.Optional(true))
		if err != nil {
			continue
		}
		for it.Next() {
			if kind == "roles" {
				d.roles = append(d.roles, it.Selector().Unquoted())
			} else {
				d.groups = append(d.groups, it.Selector().Unquoted())
			}
		}
	}
	return d
}

// maxErrorDescent bounds how many values validateAll re-validates.
const maxErrorDescent = 100_000

// validateAll collects every error of v. CUE stops reporting missing fields
// of a value once the value holds a harder error elsewhere, so each failing
// struct or list is validated again field by field.
func validateAll(v cue.Value, err error) []error {
	all := []error{err}
	budget := maxErrorDescent
	var descend func(v cue.Value)
	descend = func(v cue.Value) {
		var children []cue.Value
		if it, ierr := v.Fields(cue.Optional(false)); ierr == nil {
			for it.Next() {
				children = append(children, it.Value())
			}
		} else if it, ierr := v.List(); ierr == nil {
			for it.Next() {
				children = append(children, it.Value())
			}
		}
		for _, c := range children {
			if budget--; budget < 0 {
				return
			}
			if cerr := c.Validate(cue.Concrete(true)); cerr != nil {
				all = append(all, cerr)
				descend(c)
			}
		}
	}
	descend(v)
	return all
}

// notAllowed reports the fields of the user's instance raw that the schema
// does not allow, except where errs already has an error. CUE reports a
// field not allowed in a closed struct only while no other field of that
// struct holds an error (cue v0.17.1); this walk, over the schema's shapes,
// finds the rest, so that every error is reported at once, as the Go
// validator reports them for data files.
func notAllowed(raw cue.Value, errs Errors) Errors {
	reported := make(map[string]bool, len(errs))
	for _, e := range errs {
		reported[e.Path] = true
	}
	var out Errors
	budget := maxErrorDescent
	var walk func(v cue.Value, s *shape, labels []string)
	walk = func(v cue.Value, s *shape, labels []string) {
		if budget--; budget < 0 {
			return
		}
		switch s.kind {
		case shapeStruct, shapeMap:
			it, err := v.Fields()
			if err != nil {
				return
			}
			if s.kind == shapeStruct {
				s = structAt(s, labels, raw)
			}
			for it.Next() {
				child := append(labels[:len(labels):len(labels)], it.Selector().String())
				next := s.elem
				if s.kind == shapeStruct {
					f := s.field(it.Selector().Unquoted())
					if f == nil {
						if p := cuePath(child); !reported[p] {
							out = append(out, &Error{Pos: userPos(nil, child, raw), Path: p,
								Message: fmt.Sprintf("field not allowed (allowed: %s)", s.names)})
						}
						continue
					}
					if f.unchecked {
						continue // a field of another variant: see inUnknownVariant
					}
					next = f.shape
				}
				walk(it.Value(), next, child)
			}
		case shapeList:
			it, err := v.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				walk(it.Value(), s.elem, append(labels[:len(labels):len(labels)], strconv.Itoa(i)))
			}
		}
	}
	walk(raw, charterShapes().charter, nil)
	return out
}

// belowNotAllowed drops the errors about values inside a field that is not
// allowed: the field's own error says all there is to say (the Go validator
// does not look inside such a field either).
func belowNotAllowed(errs Errors) Errors {
	var prefixes []string
	for _, e := range errs {
		if strings.HasPrefix(e.Message, "field not allowed") {
			prefixes = append(prefixes, e.Path+".")
		}
	}
	if prefixes == nil {
		return errs
	}
	return slices.DeleteFunc(errs, func(e *Error) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(e.Path, p) })
	})
}

// checkPackages requires the files of a directory to share one package clause or to have none.
func checkPackages(files []*ast.File) Errors {
	var first *ast.File
	for _, f := range files {
		if first == nil {
			first = f
			continue
		}
		if f.PackageName() != first.PackageName() {
			pos := Pos{File: f.Filename, Line: 1, Col: 1}
			if pkg := f.Preamble(); len(pkg) > 0 {
				pos = fromToken(pkg[0].Pos())
			}
			return Errors{{Pos: pos, Message: fmt.Sprintf("package %s differs from package %s of %s: the CUE files of one directory share one package clause (or have none)",
				quote.String(f.PackageName()), quote.String(first.PackageName()), first.Filename)}}
		}
	}
	return nil
}

// cueNode converts the user's evaluated instance into a node tree, after
// unification with the schema has validated it. It walks raw rather than the
// unified value: raw's positions point into the user's files, and its fields
// are cheaper to list. The schema adds only defaults, which the Go decoder
// applies the same way; a value the user left open (say "allow: bool")
// takes its concrete value from the unified instance. A value nested deeper
// than maxDepth levels (as in a data file) is an error at its position.
func cueNode(raw, unified cue.Value, sels []cue.Selector, at Pos) (*node, *Error) {
	if p := fromToken(raw.Pos()); p.File != "" && p.File != SchemaFile {
		at = p
	}
	if len(sels) > maxDepth {
		return nil, &Error{Pos: at, Path: cue.MakePath(sels...).String(), Message: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
	}
	v := raw
	if d, ok := raw.Default(); ok {
		v = d
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		n := &node{kind: kindObject, pos: at}
		it, _ := v.Fields()
		for it.Next() {
			sel := it.Selector()
			child, err := cueNode(it.Value(), unified, append(sels[:len(sels):len(sels)], sel), at)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, field{key: sel.Unquoted(), pos: child.pos, val: child})
		}
		return n, nil
	case cue.ListKind:
		n := &node{kind: kindArray, pos: at}
		it, _ := v.List()
		for i := 0; it.Next(); i++ {
			child, err := cueNode(it.Value(), unified, append(sels[:len(sels):len(sels)], cue.Index(i)), at)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, child)
		}
		return n, nil
	}
	if !v.IsConcrete() {
		v = unified.LookupPath(cue.MakePath(sels...))
		if d, ok := v.Default(); ok {
			v = d
		}
	}
	switch v.Kind() {
	case cue.StringKind:
		s, _ := v.String()
		return &node{kind: kindString, str: s, pos: at}, nil
	case cue.BoolKind:
		b, _ := v.Bool()
		return &node{kind: kindBool, b: b, pos: at}, nil
	case cue.IntKind, cue.FloatKind, cue.NumberKind:
		return &node{kind: kindNumber, str: fmt.Sprint(v), pos: at}, nil
	}
	return &node{kind: kindNull, pos: at}, nil
}

func fromToken(p token.Pos) Pos {
	if !p.IsValid() || p.Filename() == "" {
		return Pos{}
	}
	return Pos{File: p.Filename(), Line: p.Line(), Col: p.Column()}
}

// fromCUEErrors turns CUE's errors into Errors that point into the user's
// files. raw, when it exists, is the user's instance, used to find a
// position for errors that CUE only places in the schema (a missing field).
func fromCUEErrors(raw cue.Value, errs ...error) Errors {
	var list []cueerrors.Error
	for _, err := range errs {
		list = append(list, cueerrors.Errors(err)...)
	}
	var out Errors
	disjunctions := map[string][]string{} // the labels of each path with a failed disjunction
	for _, e := range list {
		labels := e.Path()
		if len(labels) > 0 && labels[0] == "#Charter" {
			labels = labels[1:]
		}
		if len(labels) > 0 && strings.HasPrefix(labels[0], "#") && !inUserFile(e) {
			continue // a schema definition on its own, reached while descending: its use is reported too
		}
		p := cuePath(labels)
		msg := cueMessage(e.Msg())
		if strings.Contains(msg, "errors in empty disjunction") {
			disjunctions[p] = labels
			continue
		}
		if incompleteValue.MatchString(msg) {
			if missing := missingField(labels, raw); missing != nil {
				labels, p, msg = missing, cuePath(missing), "field is required"
			}
		}
		if strings.HasPrefix(msg, "unresolved disjunction ") && lacksDiscriminator(labels, raw) {
			continue // the comprehensions of a struct without its type: "type: field is required" says it
		}
		out = append(out, &Error{Pos: userPos(e, labels, raw), Path: p, Message: friendlier(msg, labels, raw), labels: labels})
	}
	return mergeDisjunctions(out, disjunctions, raw)
}

// inUserFile reports whether e has a position in a user's file.
func inUserFile(e cueerrors.Error) bool {
	for _, tp := range append([]token.Pos{e.Position()}, e.InputPositions()...) {
		if p := fromToken(tp); p.File != "" && p.File != SchemaFile {
			return true
		}
	}
	return false
}

// evalFailed returns errs, the errors of a unit that did not evaluate, or,
// when every error CUE reported was dropped as one that another error
// says, the first of them as CUE has it: a unit that failed never passes
// as one without errors (and without a policy).
func evalFailed(errs Errors, files []sourceFile, err error) Errors {
	if len(errs) > 0 {
		return errs
	}
	pos, path, msg := Pos{File: files[0].name, Line: 1}, "", "the CUE files did not evaluate"
	if list := cueerrors.Errors(err); len(list) > 0 {
		if p := userPos(list[0], nil, cue.Value{}); p.File != "" && p.File != SchemaFile {
			pos = p
		}
		path, msg = cuePath(list[0].Path()), cueMessage(list[0].Msg())
	}
	return Errors{{Pos: pos, Path: path, Message: msg}}
}

// lacksDiscriminator reports whether labels name a discriminated struct
// (a policy, a permission) whose discriminator the user did not write.
func lacksDiscriminator(labels []string, raw cue.Value) bool {
	s := shapeAt(labels, raw)
	return s != nil && s.discriminator != "" && raw.Exists() &&
		!lookup(raw, append(labels[:len(labels):len(labels)], s.discriminator)).Exists()
}

// userPos picks the first position of e (if any) in a user's file, else the
// position of the nearest enclosing field that the user wrote.
func userPos(e cueerrors.Error, labels []string, raw cue.Value) Pos {
	if e != nil {
		for _, tp := range append([]token.Pos{e.Position()}, e.InputPositions()...) {
			if p := fromToken(tp); p.File != "" && p.File != SchemaFile {
				return p
			}
		}
	}
	if raw.Exists() {
		for n := len(labels); n >= 0; n-- {
			v := lookup(raw, labels[:n])
			if v.Exists() {
				if p := fromToken(v.Pos()); p.File != "" && p.File != SchemaFile {
					return p
				}
			}
		}
	}
	return Pos{File: SchemaFile}
}

var (
	incompleteValue = regexp.MustCompile(`^incomplete value `)
	runeBound       = regexp.MustCompile(`^invalid value .* \(does not satisfy strings\.M(ax|in)Runes\(\d+\)\)$`)
	mismatchedTypes = regexp.MustCompile(`^conflicting values .* \(mismatched types (\w+) and (\w+)\)$`)
	emptyList       = regexp.MustCompile(`^incompatible list lengths \(0 and \d+\)$`)
)

// wantKind says what a value of a CUE kind looks like, as the Go validator says it.
var wantKind = map[string]string{
	"string": "a string", "bool": "true or false", "int": "a whole number", "number": "a number",
	"float": "a number", "list": "a list", "struct": "a struct", "null": "null",
}

// friendlier rewrites CUE messages whose wording points at the schema
// rather than at what the user should write.
func friendlier(msg string, labels []string, raw cue.Value) string {
	switch {
	case incompleteValue.MatchString(msg):
		return "must be a concrete value, not " + strings.TrimPrefix(msg, "incomplete value ")
	case emptyList.MatchString(msg):
		return "must not be empty"
	case runeBound.MatchString(msg):
		if s, err := lookup(raw, labels).String(); err == nil {
			if labels[len(labels)-1] == "name" {
				return nameLength(s)
			}
			return descriptionLength(s)
		}
	case mismatchedTypes.MatchString(msg):
		m := mismatchedTypes.FindStringSubmatch(msg)
		v := lookup(raw, labels)
		got, want := m[1], m[2]
		if k := v.IncompleteKind().String(); k == want || k == "int" && want == "number" {
			got, want = want, got
		}
		if w, ok := wantKind[want]; ok && v.Exists() && v.Err() == nil {
			return fmt.Sprintf("must be %s, got %s", w, describeCUE(v, got, want))
		}
	case msg == "field not allowed":
		if allowed := allowedAt(labels, raw); allowed != "" {
			return fmt.Sprintf("field not allowed (allowed: %s)", allowed)
		}
	}
	return msg
}

// describeCUE describes a user's value of kind got where the schema wants
// kind want, as node.typeOf does: by its type, except for a number where a
// number of another kind is wanted (1.5 for an hour), which is shown, cut.
func describeCUE(v cue.Value, got, want string) string {
	numeric := func(k string) bool { return k == "int" || k == "float" || k == "number" }
	if numeric(got) && numeric(want) && v.IsConcrete() {
		return quote.Cut(fmt.Sprint(v))
	}
	return describeKind(got)
}

// cueMessage formats the message of a CUE error, each argument cut
// (cueArg): CUE passes the values it reports, the user's among them, as
// arguments of the message. The message is then cut token by token, for a
// value that a message carries in its format.
func cueMessage(format string, args []any) string {
	cut := make([]any, len(args))
	for i, a := range args {
		cut[i] = cueArg(a)
	}
	return quote.Tokens(fmt.Sprintf(format, cut...)) // and in case a value is in the format after all
}

// cueArg returns an argument of a CUE message that renders in at most
// quote.MaxRunes characters as it is, a longer string cut (for the
// message's verb to quote or not), and any other long value rendered and
// cut: a CUE string literal to its first characters, quoted again.
func cueArg(a any) any {
	switch a := a.(type) {
	case string:
		if utf8.RuneCountInString(a) > quote.MaxRunes {
			return cueText(a)
		}
		return a
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return a
	}
	if s := fmt.Sprint(a); utf8.RuneCountInString(s) > quote.MaxRunes {
		return cueText(s)
	}
	return a
}

// cueText cuts a value rendered in CUE syntax: a string literal to a
// quoted string of its first characters; a constraint such as =~"^a" token
// by token (quote.Tokens); a struct or list, which shows many values, as a
// whole.
func cueText(s string) string {
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `'`) || strings.HasPrefix(s, `#`) {
		if u, err := literal.Unquote(s); err == nil {
			return quote.String(u)
		}
	}
	if strings.ContainsAny(s, "{[\n") {
		return quote.Cut(s)
	}
	return quote.Tokens(s)
}

// missingField returns the path of the first field along labels that the
// user's instance lacks, when the incomplete value lies at or below a field
// the user did not write (a required list yields an error at its element 0).
func missingField(labels []string, raw cue.Value) []string {
	if !raw.Exists() {
		return nil
	}
	for n := 1; n <= len(labels); n++ {
		if !lookup(raw, labels[:n]).Exists() {
			return labels[:n]
		}
	}
	return nil
}

// lookup finds the value at a path given as CUE error labels (quoted labels, list indexes).
func lookup(v cue.Value, labels []string) cue.Value {
	sels := make([]cue.Selector, 0, len(labels))
	for _, l := range labels {
		if i, err := strconv.Atoi(l); err == nil {
			sels = append(sels, cue.Index(i))
			continue
		}
		if u, err := strconv.Unquote(l); err == nil {
			l = u
		}
		sels = append(sels, cue.Str(l))
	}
	return v.LookupPath(cue.MakePath(sels...))
}

// mergeDisjunctions replaces CUE's one-error-per-alternative report of a
// value outside an enumeration with a single error naming the choices.
func mergeDisjunctions(errs Errors, paths map[string][]string, raw cue.Value) Errors {
	if len(paths) == 0 {
		return errs
	}
	out := errs[:0]
	done := map[string]bool{}
	for _, e := range errs {
		labels, ok := paths[e.Path]
		if !ok || !strings.HasPrefix(e.Message, "conflicting values ") {
			out = append(out, e)
			continue
		}
		if done[e.Path] {
			continue
		}
		done[e.Path] = true
		if choices := choicesAt(labels, raw); choices != nil {
			e.Message = choiceMessage(raw, labels, choices)
		}
		out = append(out, e)
	}
	return out
}

// choiceMessage says what is wrong with the user's value at labels, which
// must be one of choices: an unknown string is shown, cut; a value of
// another type is described by its type, as the Go decoder says it.
func choiceMessage(raw cue.Value, labels []string, choices []string) string {
	v := lookup(raw, labels)
	if !raw.Exists() || !v.IsConcrete() {
		return "must be one of " + quoteAll(choices)
	}
	if s, err := v.String(); err == nil {
		return fmt.Sprintf("invalid value %s (want one of %s)", quote.String(s), quoteAll(choices))
	}
	return "must be a string, got " + describeKind(v.Kind().String())
}

// allowedAt returns the fields allowed in the struct that holds the field
// at labels, as the schema lists them.
func allowedAt(labels []string, raw cue.Value) string {
	if len(labels) == 0 {
		return ""
	}
	parent := labels[:len(labels)-1]
	s := shapeAt(parent, raw)
	if s == nil || s.kind != shapeStruct {
		return ""
	}
	return structAt(s, parent, raw).names
}

// choicesAt returns the values allowed for an enumerated field.
func choicesAt(labels []string, raw cue.Value) []string {
	if s := shapeAt(labels, raw); s != nil {
		return s.choices
	}
	return nil
}
