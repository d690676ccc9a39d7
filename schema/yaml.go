package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/charter-policy/charter/schema/quote"
)

// yamlNodeBudget bounds the nodes a YAML file may expand to through
// aliases: without aliases a file has at most about one node per byte.
func yamlNodeBudget(src []byte) int { return 2*len(src) + 10_000 }

// parseYAML parses a YAML data file into a node tree. A data file holds one
// document: a second one (after a "---" that follows content, even an empty
// one) is an error at the line of its "---", because reading only the first
// would silently drop the rest. A lone "---" before the first document is fine.
func parseYAML(file string, src []byte) (*node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, yamlError(file, err)
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case err == nil:
		return nil, &Error{Pos: Pos{File: file, Line: second.Line, Col: max(second.Column, 1)},
			Message: "invalid YAML: a second document starts here: a data file holds one document (split the file, one document per file)"}
	case err != io.EOF:
		return nil, yamlError(file, err)
	}
	if doc.Kind == 0 {
		return &node{kind: kindObject, pos: Pos{File: file, Line: 1, Col: 1}}, nil
	}
	budget := yamlNodeBudget(src)
	return fromYAML(file, &doc, 0, &budget)
}

// yamlError places a YAML syntax or type error at the line it names.
func yamlError(file string, err error) *Error {
	line := 1
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		fmt.Sscanf(err.Error(), "yaml: line %d:", &line)
	}
	return &Error{Pos: Pos{File: file, Line: line, Col: 1}, Message: "invalid YAML: " + quote.Tokens(err.Error())}
}

func fromYAML(file string, y *yaml.Node, depth int, budget *int) (*node, *Error) {
	pos := Pos{File: file, Line: y.Line, Col: y.Column}
	*budget--
	if depth > maxDepth || *budget < 0 {
		return nil, &Error{Pos: pos, Message: "invalid YAML: nested too deeply or expands to too many values"}
	}
	switch y.Kind {
	case yaml.DocumentNode:
		return fromYAML(file, y.Content[0], depth, budget)
	case yaml.AliasNode:
		return fromYAML(file, y.Alias, depth+1, budget)
	case yaml.MappingNode:
		n := &node{kind: kindObject, pos: pos}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, &Error{Pos: Pos{File: file, Line: k.Line, Col: k.Column}, Message: "invalid YAML: a field name must be a scalar"}
			}
			val, err := fromYAML(file, v, depth+1, budget)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, field{key: k.Value, pos: Pos{File: file, Line: k.Line, Col: k.Column}, val: val})
		}
		return n, nil
	case yaml.SequenceNode:
		n := &node{kind: kindArray, pos: pos}
		for _, c := range y.Content {
			val, err := fromYAML(file, c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, val)
		}
		return n, nil
	}
	switch y.ShortTag() {
	case "!!null":
		return &node{kind: kindNull, pos: pos}, nil
	case "!!bool":
		var b bool
		if err := y.Decode(&b); err != nil {
			return nil, &Error{Pos: pos, Message: "invalid YAML: a value tagged !!bool must be true or false, got " + quote.String(y.Value)}
		}
		return &node{kind: kindBool, b: b, pos: pos}, nil
	case "!!int", "!!float":
		return &node{kind: kindNumber, str: y.Value, pos: pos}, nil
	default:
		return &node{kind: kindString, str: y.Value, pos: pos}, nil
	}
}
