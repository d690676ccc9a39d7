package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-memdb"

	"github.com/charter-policy/charter/schema"
)

// chunkTestEntry is an entry of a chunked index under test: a key and the
// record it belongs to.
type chunkTestEntry struct {
	key, rec string
}

func (e chunkTestEntry) appendKey(dst []byte) []byte  { return append(dst, e.key...) }
func (e chunkTestEntry) recordID() string             { return e.rec }
func (e chunkTestEntry) compare(o chunkTestEntry) int { return strings.Compare(e.key, o.key) }
func (e chunkTestEntry) lead() string                 { return e.key }
func (chunkTestEntry) leadEnd() byte                  { return 0 }

// TestChunkPlan applies random changes to a chunked index (records of
// random keys dropped, changed and added) and checks after each one that
// the rows hold exactly the model's entries, in order, with the size
// bounds of chunks.go, and that seeking any key finds the first entry at
// or after it.
func TestChunkPlan(t *testing.T) {
	const table = "chunks"
	for _, max := range []int{1, 2, 4, 8, 16} {
		for seed := range uint64(8) {
			r := rand.New(rand.NewPCG(seed, uint64(max)))
			db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: map[string]*memdb.TableSchema{table: chunkTableSchema[chunkTestEntry](table)}})
			if err != nil {
				t.Fatal(err)
			}
			model := map[string][]chunkTestEntry{} // record -> entries
			newRecord := func(id string) []chunkTestEntry {
				var es []chunkTestEntry
				for range r.IntN(6) {
					es = append(es, chunkTestEntry{key: fmt.Sprintf("k%03d/%s", r.IntN(300), id), rec: id})
				}
				return es
			}
			for round := range 40 {
				p := &chunkPlan[chunkTestEntry]{table: table, max: max, dropped: map[string]bool{}}
				for _, id := range sortedKeys(model) {
					es := model[id]
					if r.IntN(3) == 0 {
						p.dropped[id] = true
						p.old = append(p.old, es...)
						delete(model, id)
						if r.IntN(2) == 0 {
							model[id] = newRecord(id)
							p.add = append(p.add, model[id]...)
						}
					}
				}
				for i := range r.IntN(round%5*8 + 1) {
					id := fmt.Sprintf("r%d-%d", round, i)
					model[id] = newRecord(id)
					p.add = append(p.add, model[id]...)
				}
				read := db.Txn(false)
				var w writer
				p.plan(read, round == 0, &w)
				txn := db.Txn(true)
				if err := w.write(txn); err != nil {
					t.Fatalf("max %d seed %d round %d: %v", max, seed, round, err)
				}
				txn.Commit()

				var want []string
				for _, es := range model {
					for _, e := range es {
						want = append(want, e.key)
					}
				}
				slices.Sort(want)
				want = slices.Compact(want)
				s := &Snapshot{db: db, txn: db.Txn(false)}
				var got []string
				for _, e := range chunkEntries[chunkTestEntry](t, s, table, max) {
					got = append(got, e.key)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("max %d seed %d round %d:\n got %q\nwant %q", max, seed, round, got, want)
				}
				for _, k := range []string{"", "k000", "k150/", "k299/z", "l", fmt.Sprintf("k%03d", r.IntN(300))} {
					var scratch []byte
					it := seekChunks[chunkTestEntry](s.txn, table, []byte(k), &scratch)
					i, _ := slices.BinarySearch(want, k)
					for _, w := range want[i:] {
						e, ok := it.next()
						if !ok || e.key != w {
							t.Fatalf("max %d seed %d round %d: seek %q: got %q, %t; want %q", max, seed, round, k, e.key, ok, w)
						}
					}
					if e, ok := it.next(); ok {
						t.Fatalf("max %d seed %d round %d: seek %q: %q after the last", max, seed, round, k, e.key)
					}
				}
			}
		}
	}
}

// TestEntryCompare: the order compare gives entries is the byte order of
// their keys, on patterns and IDs whose characters sort around "/" and NUL.
func TestEntryCompare(t *testing.T) {
	patterns := []string{"a", "a/b", "a-b", "a.b", "a/b/c", "ab", "a0", "*", "*/b", "a/*", "a/-", "A", "/a/b/"}
	ids := []string{"r", "r1", "r-1", "r.1", "R", "r10"}
	stmts := []int32{0, 1, 255, 256, 1 << 20}
	var pats []patternRef
	var roles []roleRef
	for _, id := range ids {
		rec := &schema.Record{ID: id}
		for _, n := range stmts {
			rec.Statements = append(rec.Statements, make([]schema.Statement, int(n)+1-len(rec.Statements))...)
			rec.Statements[n] = schema.Statement{Resources: patterns, Roles: patterns}
			for j := range patterns {
				pats = append(pats, patternRef{rec: rec, stmt: n, res: int32(j)})
				roles = append(roles, roleRef{rec: rec, stmt: n, role: int32(j)})
			}
		}
	}
	checkCompare(t, pats)
	checkCompare(t, roles)
	checkSort(t, pats)
	checkSort(t, roles)
}

// checkSort sorts the entries, three times over and shuffled, so that the
// sort of many entries by their leads runs, and compares the result with
// the keys sorted.
func checkSort[E indexEntry[E]](t *testing.T, es []E) {
	t.Helper()
	many := slices.Concat(es, es, es)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(many), func(i, j int) { many[i], many[j] = many[j], many[i] })
	if len(many) < 1024 {
		t.Fatalf("only %d entries: the sort by leads would not run", len(many))
	}
	var got, want []string
	for _, e := range sortEntries(many) {
		got = append(got, string(e.appendKey(nil)))
	}
	for _, e := range es {
		want = append(want, string(e.appendKey(nil)))
	}
	slices.Sort(want)
	if want = slices.Compact(want); !slices.Equal(got, want) {
		t.Errorf("sorted:\n got %q\nwant %q", got, want)
	}
}

func checkCompare[E indexEntry[E]](t *testing.T, es []E) {
	t.Helper()
	sign := func(n int) int { return min(max(n, -1), 1) }
	for _, a := range es {
		ka := a.appendKey(nil)
		for _, b := range es {
			if got, want := sign(a.compare(b)), bytes.Compare(ka, b.appendKey(nil)); got != want {
				t.Fatalf("compare(%q, %q) = %d, keys compare %d", ka, b.appendKey(nil), got, want)
			}
		}
	}
}
