package schema

import _ "embed"

//go:embed charter.cue
var schemaSource string

// SchemaFile is the name under which the embedded schema appears in CUE positions.
const SchemaFile = "<charter-schema>/charter.cue"

// CUE returns the embedded CUE schema, whose #Charter definition every policy directory is unified with.
func CUE() string { return schemaSource }
