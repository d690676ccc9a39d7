package schema

import (
	"fmt"
	"strconv"
)

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

// describe renders a scalar for an error message.
func (n *node) describe() string {
	switch n.kind {
	case kindString:
		s := n.str
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		return strconv.Quote(s)
	case kindNumber:
		return n.str
	case kindBool:
		return strconv.FormatBool(n.b)
	case kindNull:
		return "null"
	}
	return fmt.Sprintf("a %s", n.kind)
}
