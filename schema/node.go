package schema

import "github.com/charter-policy/charter/schema/quote"

// kind is the type of a node of a decoded data tree.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

func (k kind) String() string {
	return [...]string{"null", "bool", "number", "string", "struct", "list"}[k]
}

// node is one value of a policy file with its position, as read from JSON,
// YAML or an evaluated CUE instance. The Go validator in decode.go reads
// every input through it, so all three formats obey the same rules.
type node struct {
	kind   kind
	str    string // string value, or a number's literal text
	b      bool
	fields []field
	items  []*node
	pos    Pos
}

// field is one member of an object node; pos is the position of its label.
type field struct {
	key string
	pos Pos
	val *node
}

// typeOf describes a value of the wrong type by its type, for "must be a
// list, got a string": the value itself is never shown (SPEC section 1).
func (n *node) typeOf() string { return describeKind(n.kind.String()) }

// token renders a scalar of the right type whose value is wrong (an
// unknown choice, a malformed ID or time) for an error message, cut to
// quote.MaxRunes characters; other values are described by their type.
func (n *node) token() string {
	switch n.kind {
	case kindString:
		return quote.String(n.str)
	case kindNumber:
		return quote.Cut(n.str)
	}
	return n.typeOf()
}

// describeKind says what a value of a kind is, by the kind's name in the
// Go decoder (kind.String) or in CUE (cue.Kind.String).
func describeKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "float", "number":
		return "a number"
	case "bool":
		return "a boolean"
	case "null":
		return "null"
	case "list":
		return "a list"
	case "struct":
		return "a struct"
	}
	return "a value of kind " + quote.Cut(k)
}
