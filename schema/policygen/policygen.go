// Package policygen writes realistic generated policy repositories for
// benchmarks and load tests: the shape of the engine issue (users owning
// documents, readers, administrators, groups and one resource server),
// as JSON data files or CUE files of a fixed number of records each,
// indented or minified (one line per file, as json.Marshal writes).
// Generated data is never committed; tests and the policygen command
// write it to temporary directories.
package policygen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Options say what to generate. The zero value of a field takes its default.
type Options struct {
	Documents   int    // owner records, one per document (default 100,000)
	Users       int    // distinct users (default 10,000)
	ReadsEach   int    // documents each user reads through a User record (default 10)
	Admins      int    // users holding Admin on all documents (default 100)
	Groups      int    // groups (default 20)
	GroupSize   int    // users per group (default 50)
	PerFile     int    // records per data file (default 1,000)
	Format      string // "json" (default): data files under data/; "cue": one file per directory partNNN/
	ReadersOnly bool   // no reader records: exactly Documents records (for loader benchmarks)
	Minified    bool   // each file's JSON on one line, as json.Marshal writes it (default: indented)
	Seed        uint64
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Documents, 100_000)
	def(&o.Users, 10_000)
	def(&o.ReadsEach, 10)
	def(&o.Admins, 100)
	def(&o.Groups, 20)
	def(&o.GroupSize, 50)
	def(&o.PerFile, 1000)
	if o.Format == "" {
		o.Format = "json"
	}
}

// Roles is the CUE file of roles, groups' roles and the resource server.
const Roles = `package policies

roles: {
	Admin: {name: "Admin", permissions: [{action: "*", grant: true, delegate: true}]}
	Editor: {name: "Editor", permissions: [{action: "documents:create"}, {action: "documents:read", grant: true}, {action: "documents:update"}]}
	User: {name: "User", permissions: [{action: "documents:read"}]}
}

resourceServers: acme: {
	name: "Acme API"
	scopes: ["read", "write", "delete"]
	resources: {
		api: {name: "API", type: "urn:acme:api", uris: ["acme/api"], scopes: ["read", "write", "delete"]}
		reports: {name: "Reports", type: "urn:acme:report", uris: ["acme/reports"]}
	}
	policies: {
		editors: {name: "Editors", type: "role", roles: ["Editor"]}
		admins: {name: "Admins", type: "role", roles: ["Admin"]}
		group0: {name: "Group 0", type: "group", groups: ["g0"]}
		hours: {name: "Hours", type: "time", hours: {from: 6, to: 22}}
		either: {name: "Either", type: "aggregate", policies: ["admins", "group0"], decisionStrategy: "affirmative"}
	}
	permissions: {
		read: {name: "Read", type: "scope", scopes: ["read"], policies: ["editors", "admins"], decisionStrategy: "affirmative"}
		write: {name: "Write", type: "scope", scopes: ["write"], policies: ["editors", "hours"]}
		delete: {name: "Delete", type: "scope", scopes: ["delete"], policies: ["admins", "group0", "hours"], decisionStrategy: "consensus"}
		reports: {name: "Reports", type: "resource", resources: ["reports"], policies: ["either"]}
		frozen: {name: "Frozen", type: "resource", resourceType: "urn:acme:report", policies: ["group0"], logic: "negative"}
	}
}
`

// User returns the ID of user i.
func User(i int) string { return fmt.Sprintf("user-%d", i) }

// Document returns the URI of document i.
func Document(i int) string { return fmt.Sprintf("documents/d%d", i) }

// OwnerFile returns the data file (relative to the root) that holds the owner record of document i.
func OwnerFile(o Options, i int) string {
	o.defaults()
	return unitName(o, i/o.PerFile)
}

func unitName(o Options, n int) string {
	if o.Format == "cue" {
		return fmt.Sprintf("part%03d/records.cue", n)
	}
	return fmt.Sprintf("data/records-%03d.json", n)
}

// Write generates a repository into dir and returns the number of records.
func Write(dir string, o Options) (int, error) {
	o.defaults()
	rng := rand.New(rand.NewPCG(o.Seed, 7))
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}
	if err := write("roles.cue", []byte(Roles)); err != nil {
		return 0, err
	}
	groups := map[string]any{}
	for g := range o.Groups {
		users := make([]string, o.GroupSize)
		for k := range users {
			users[k] = User(rng.IntN(o.Users))
		}
		groups[fmt.Sprintf("g%d", g)] = map[string]any{"name": fmt.Sprintf("Group %d", g), "users": users}
	}
	admins := make([]string, o.Admins)
	for k := range admins {
		admins[k] = User(rng.IntN(o.Users))
	}
	extra := map[string]any{
		"admins": record("Document administrators", admins, nil, "Admin", "documents"),
		"acme-staff": map[string]any{
			"name": "Acme staff", "users": []string{User(0), User(1), User(2)},
			"statements": []any{map[string]any{"roles": []string{"Editor"}, "resources": []string{"acme"}}},
		},
	}
	for g := range o.Groups {
		extra[fmt.Sprintf("group-g%d", g)] = record(fmt.Sprintf("Group %d readers", g), nil, []string{fmt.Sprintf("g%d", g)}, "User", fmt.Sprintf("documents/shared-%d", g))
	}
	if !o.ReadersOnly {
		for u := range o.Users {
			docs := make([]string, o.ReadsEach)
			for k := range docs {
				docs[k] = Document(rng.IntN(o.Documents))
			}
			extra[fmt.Sprintf("reader-%d", u)] = map[string]any{
				"name": fmt.Sprintf("Reader %d", u), "users": []string{User(u)},
				"statements": []any{map[string]any{"roles": []string{"User"}, "resources": docs}},
			}
		}
	}
	if err := writeUnit(write, o, "data/extra", extra); err != nil {
		return 0, err
	}
	total := len(extra)
	for f := 0; f*o.PerFile < o.Documents; f++ {
		recs := map[string]any{}
		for i := f * o.PerFile; i < min((f+1)*o.PerFile, o.Documents); i++ {
			recs[fmt.Sprintf("owner-d%d", i)] = OwnerRecord(i, o.Users, "")
		}
		total += len(recs)
		if err := writeUnitFile(write, o, unitName(o, f), map[string]any{"records": recs}); err != nil {
			return 0, err
		}
	}
	data, err := json.Marshal(map[string]any{"groups": groups})
	if err != nil {
		return 0, err
	}
	return total, write("data/groups.json", data)
}

// OwnerRecord returns the owner record of document i; a non-empty note is
// added to its description (to change a file without changing decisions).
func OwnerRecord(i, users int, note string) map[string]any {
	r := record(fmt.Sprintf("Owner of d%d", i), []string{User(i * 7919 % users)}, nil, "Editor", Document(i))
	if note != "" {
		r["description"] = note
	}
	if i%7 == 0 {
		r["tags"] = map[string]string{"environment": "production"}
	}
	return r
}

// RewriteOwnerFile rewrites the data file holding document i's owner record
// with note in every record's description: a change of 1,000 records that
// keeps every decision.
func RewriteOwnerFile(dir string, o Options, i int, note string) error {
	o.defaults()
	f := i / o.PerFile
	recs := map[string]any{}
	for k := f * o.PerFile; k < min((f+1)*o.PerFile, o.Documents); k++ {
		recs[fmt.Sprintf("owner-d%d", k)] = OwnerRecord(k, o.Users, note)
	}
	return writeUnitFile(func(name string, data []byte) error {
		return os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), data, 0o644)
	}, o, unitName(o, f), map[string]any{"records": recs})
}

func record(name string, users, groups []string, role, resource string) map[string]any {
	r := map[string]any{"name": name, "statements": []any{map[string]any{"roles": []string{role}, "resources": []string{resource}}}}
	if users != nil {
		r["users"] = users
	}
	if groups != nil {
		r["groups"] = groups
	}
	return r
}

func writeUnit(write func(string, []byte) error, o Options, base string, records map[string]any) error {
	name := base + ".json"
	if o.Format == "cue" {
		name = base + "/records.cue"
	}
	return writeUnitFile(write, o, name, map[string]any{"records": records})
}

func writeUnitFile(write func(string, []byte) error, o Options, name string, doc map[string]any) error {
	var data []byte
	var err error
	if o.Minified {
		data, err = json.Marshal(doc)
	} else {
		data, err = json.MarshalIndent(doc, "", "  ")
	}
	if err != nil {
		return err
	}
	if o.Format == "cue" {
		data = append([]byte("package policies\n\n"), data...)
	}
	return write(name, data)
}
