package schema

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genRoles is the role file of every generated repository.
const genRoles = `package policies

roles: {
	Admin: {name: "Admin", permissions: [{action: "*", grant: true, delegate: true}]}
	Editor: {name: "Editor", permissions: [{action: "documents:create"}, {action: "documents:read", grant: true}, {action: "documents:update"}]}
	User: {name: "User", permissions: [{action: "documents:read"}]}
}
groups: {
	readers: {name: "Readers", users: ["user-1", "user-2"]}
}
`

// genRecord returns the JSON of record i: an owner record of one document,
// with a second statement for a reader group on every tenth.
func genRecord(i int) map[string]any {
	stmts := []any{map[string]any{"roles": []string{"Editor"}, "resources": []string{fmt.Sprintf("documents/d%d", i)}}}
	if i%10 == 0 {
		stmts = append(stmts, map[string]any{"roles": []string{"User"}, "resources": []string{fmt.Sprintf("documents/d%d/comments", i)}, "groups": []string{"readers"}})
	}
	rec := map[string]any{
		"name":       fmt.Sprintf("Owner of document d%d", i),
		"users":      []string{fmt.Sprintf("user-%d", i%10_000)},
		"statements": stmts,
	}
	if i%7 == 0 {
		rec["tags"] = map[string]string{"environment": "production"}
	}
	return rec
}

// writeGenerated writes a policy repository of records records, perFile to a
// file, as CUE (one file per directory) or JSON data files, and returns its root.
func writeGenerated(tb testing.TB, records, perFile int, format string) string {
	tb.Helper()
	root := tb.TempDir()
	write := func(name string, data []byte) {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	write("roles.cue", []byte(genRoles))
	for f := 0; f*perFile < records; f++ {
		recs := map[string]any{}
		for i := f * perFile; i < min((f+1)*perFile, records); i++ {
			recs[fmt.Sprintf("doc-%d", i)] = genRecord(i)
		}
		data, err := json.MarshalIndent(map[string]any{"records": recs}, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		if format == "cue" {
			write(fmt.Sprintf("part%03d/records.cue", f), append([]byte("package policies\n\n"), data...))
		} else {
			write(fmt.Sprintf("data/records-%03d.json", f), data)
		}
	}
	return root
}

// rewriteRecordName changes the name of one record in a generated JSON file.
func rewriteRecordName(tb testing.TB, file string, n int) {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, `"name": "Owner of document d`)
	if i < 0 {
		tb.Fatalf("no record name in %s", file)
	}
	j := i + strings.Index(s[i:], "\",") + 1
	s = s[:i] + fmt.Sprintf(`"name": "Renamed %d"`, n) + s[j:]
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		tb.Fatal(err)
	}
}
