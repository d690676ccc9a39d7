package engine

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/go-memdb"

	"github.com/charter-policy/charter/schema"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// TestDBSchema builds the real schema, which must be valid and open a
// database, and compares its description with testdata/schema.golden, so
// that a change to a table or an index shows up in review.
func TestDBSchema(t *testing.T) {
	s := dbSchema()
	if err := s.Validate(); err != nil {
		t.Fatalf("schema is invalid: %v", err)
	}
	if _, err := memdb.NewMemDB(s); err != nil {
		t.Fatalf("NewMemDB: %v", err)
	}
	got := describeSchema(s)
	golden := filepath.Join("testdata", "schema.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("schema changed; run go test ./engine -run TestDBSchema -update and review the diff\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func describeSchema(s *memdb.DBSchema) string {
	var b strings.Builder
	tables := make([]string, 0, len(s.Tables))
	for name := range s.Tables {
		tables = append(tables, name)
	}
	sort.Strings(tables)
	for _, name := range tables {
		ts := s.Tables[name]
		fmt.Fprintf(&b, "table %s\n", name)
		indexes := make([]string, 0, len(ts.Indexes))
		for n := range ts.Indexes {
			indexes = append(indexes, n)
		}
		sort.Strings(indexes)
		for _, n := range indexes {
			is := ts.Indexes[n]
			_, prefix := is.Indexer.(memdb.PrefixIndexer)
			fmt.Fprintf(&b, "  index %s unique=%t allowMissing=%t prefix=%t indexer=%s\n",
				n, is.Unique, is.AllowMissing, prefix, reflect.TypeOf(is.Indexer))
		}
	}
	return b.String()
}

// TestIndexKeys pins the bytes each table's index builds for a row.
func TestIndexKeys(t *testing.T) {
	rec := &schema.Record{ID: "r", Statements: []schema.Statement{{Roles: []string{"User"}}}}
	tests := []struct {
		table string
		row   any
		want  string // hex
	}{
		{tableGrants, newGrantRow(string(grantKey(nil, kindUser, "alice", "documents/d1")), "", []grant{{rec: rec}}),
			fnv64("ualice") + fnv32("documents") + fnv32("d1")},
		{tableWildcardGrants, &wildcardRow{key: subjectKey(nil, kindGroup, "admins")}, fnv64("gadmins")},
		{tableMembers, &memberRow{user: "alice"}, hex.EncodeToString([]byte("alice"))},
		{tableGroups, &groupRow{group: &schema.Group{ID: "admins"}}, hex.EncodeToString([]byte("admins"))},
		{tableRoles, &roleRow{role: &schema.Role{ID: "Editor"}}, hex.EncodeToString([]byte("Editor"))},
		{tableServers, &serverRow{server: &schema.ResourceServer{ID: "acme"}}, hex.EncodeToString([]byte("acme"))},
		{tableServerURIs, &serverURIRow{pattern: "acme/invoices"}, hex.EncodeToString([]byte("acme/invoices/"))},
	}
	s := dbSchema()
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			idx := s.Tables[tt.table].Indexes[indexID].Indexer.(memdb.SingleIndexer)
			ok, key, err := idx.FromObject(tt.row)
			if err != nil || !ok {
				t.Fatalf("FromObject: %v, %v", ok, err)
			}
			if got := hex.EncodeToString(key); got != tt.want {
				t.Errorf("key %s, want %s", got, tt.want)
			}
			// The same key comes back from FromArgs, as a keyBuf, bytes or string.
			for _, arg := range []any{&keyBuf{b: key}, key, string(key)} {
				k, err := idx.(memdb.Indexer).FromArgs(arg)
				if err != nil || !bytes.Equal(k, key) {
					t.Errorf("FromArgs(%T) = %x, %v", arg, k, err)
				}
			}
			if _, _, err := idx.FromObject(42); err == nil {
				t.Error("FromObject accepted a row of the wrong type")
			}
		})
	}
}

// fnv64 and fnv32 are the reference FNV-1a hashes, in hex.
func fnv64(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

func fnv32(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// TestGrantKeyAncestors: the key of an ancestor is a prefix of the key of
// its descendants, ending on a segment; a sibling's is not.
func TestGrantKeyAncestors(t *testing.T) {
	k := func(uri string) []byte { return grantKey(nil, kindUser, "alice", uri) }
	deep := k("documents/d1/comments/2")
	for _, anc := range []string{"documents", "documents/d1", "documents/d1/comments", "documents/d1/comments/2"} {
		if !bytes.HasPrefix(deep, k(anc)) {
			t.Errorf("key of %s is not a prefix of its descendant's", anc)
		}
		if n := keySegments(k(anc)); uriPrefix("documents/d1/comments/2", n) != anc {
			t.Errorf("keySegments/uriPrefix of %s: %d segments -> %q", anc, n, uriPrefix("documents/d1/comments/2", n))
		}
	}
	for _, other := range []string{"documentsx", "documents/d10", "documents/d"} {
		if bytes.HasPrefix(deep, k(other)) {
			t.Errorf("key of %s is a prefix of documents/d1/comments/2's", other)
		}
	}
	if bytes.HasPrefix(deep, grantKey(nil, kindGroup, "alice", "documents")) {
		t.Error("a group's key is a prefix of a user's")
	}
}

// TestHashCollisions forges the rows a hash collision would make: grants of
// one subject stored under another's key must never be read as the other's,
// and a chained row must still be found.
func TestHashCollisions(t *testing.T) {
	p := std().rec("r", "alice", stmt("Editor", "documents")).p
	s, err := Build(p, "one")
	if err != nil {
		t.Fatal(err)
	}
	rec := p.Records["r"]
	g := []grant{{rec: rec, roles: rec.Statements[0].Roles}}
	aliceKey := string(grantKey(nil, kindUser, "alice", "documents"))
	carolKey := string(grantKey(nil, kindUser, "carol", "documents"))
	// alice's row now chains bob's grants first; carol's key holds dave's.
	bob := newGrantRow(aliceKey, string(ident(nil, kindUser, "bob", "documents")), g)
	bob.next = newGrantRow(aliceKey, string(ident(nil, kindUser, "alice", "documents")), g)
	dave := newGrantRow(carolKey, string(ident(nil, kindUser, "dave", "documents")), g)
	db := s.db.Snapshot()
	txn := db.Txn(true)
	for _, r := range []*grantRow{bob, dave} {
		if err := txn.Insert(tableGrants, r); err != nil {
			t.Fatal(err)
		}
	}
	txn.Commit()
	forged := &Snapshot{revision: "forged", db: db, counts: s.counts}
	forged.derive(nil)

	for user, want := range map[string]bool{"alice": true, "bob": false, "carol": false, "dave": false} {
		d, err := forged.Check(ask(user, "documents/d1", "documents:read"))
		if err != nil || d.Allowed != want {
			t.Errorf("%s: allowed %t, %v; want %t", user, d.Allowed, err, want)
		}
		l, err := forged.Resources(ResourceQuery{User: user, Action: "documents:read", Collection: "documents", Time: mustTime("2026-01-01T00:00:00Z")})
		if err != nil || (len(l.Resources) == 1) != want {
			t.Errorf("%s: resources %v, %v", user, l.Resources, err)
		}
	}
}
