package engine

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// The enumeration indexes (the statements by resource pattern and by role)
// are sorted sets of small entries kept in a memdb table as chunks: each row
// holds a sorted run of up to chunkMax consecutive entries and is keyed by
// the sort key of its last entry. A row per entry would cost a radix leaf,
// a node and their two channels each, about 400 bytes (measured on 110,000
// pattern rows): more than the 15% of the snapshot an index may cost. A
// chunk pays that once for up to chunkMax entries of 16 bytes.
//
// The first entry at or after a key is in the first row whose key is at or
// after it: one LowerBound, then a binary search in the row. A change
// rewrites only the rows holding the entries it removes or adds.

// Bounds of a chunk's size. A new index is cut into full chunks; a chunk
// that outgrows chunkMax is split into pieces of about 3/4 of it, and one
// left with fewer than chunkMax/4 entries is merged with the next.
const defaultChunkMax = 64

// indexEntry is an entry of a chunked index: a small value that points into
// the policy and derives its sort key from it.
type indexEntry[E any] interface {
	// appendKey appends the entry's sort key; keys are unique in an index.
	appendKey(dst []byte) []byte
	// compare orders entries as their keys, without building them.
	compare(E) int
	// lead returns the key's first component, the pattern or the role,
	// and leadEnd the byte that ends it in the key (the same for every
	// entry of a type). A key is the lead, its end, the record ID and more.
	lead() string
	leadEnd() byte
	// recordID is the record the entry belongs to: a change drops and
	// rewrites the entries of whole records.
	recordID() string
}

// chunkRow is a row of a chunked index table.
type chunkRow[E indexEntry[E]] struct {
	key     []byte // the key of the last entry
	entries []E    // sorted by key, at least one
}

func chunkTableSchema[E indexEntry[E]](name string) *memdb.TableSchema {
	return idTable(name, keyIndexer[*chunkRow[E]](func(r *chunkRow[E]) []byte { return r.key }))
}

// chunkIter walks a chunked index in key order from a position.
type chunkIter[E indexEntry[E]] struct {
	it  memdb.ResultIterator
	row *chunkRow[E]
	i   int
}

// seekChunks returns an iterator at the first entry whose key is at or
// after key.
func seekChunks[E indexEntry[E]](txn *memdb.Txn, table string, key []byte, scratch *[]byte) chunkIter[E] {
	it, err := txn.LowerBound(table, indexID, key)
	if err != nil {
		// The table and index are static: a programming error.
		panic(fmt.Sprintf("engine: seek %s: %v", table, err))
	}
	c := chunkIter[E]{it: it}
	if raw := it.Next(); raw != nil {
		c.row = raw.(*chunkRow[E])
		c.i, _ = slices.BinarySearchFunc(c.row.entries, key, func(e E, k []byte) int {
			*scratch = e.appendKey((*scratch)[:0])
			return bytes.Compare(*scratch, k)
		})
	}
	return c
}

// next returns the entry at the iterator and moves past it; ok is false at the end.
func (c *chunkIter[E]) next() (e E, ok bool) {
	for c.row != nil && c.i == len(c.row.entries) {
		c.row, c.i = nil, 0
		if raw := c.it.Next(); raw != nil {
			c.row = raw.(*chunkRow[E])
		}
	}
	if c.row == nil {
		return e, false
	}
	c.i++
	return c.row.entries[c.i-1], true
}

// chunkPlan computes the rows a change writes to one chunked index.
type chunkPlan[E indexEntry[E]] struct {
	table string
	max   int
	// dropped names the records whose entries are removed; old holds those
	// entries (to find their rows) and add the entries of their new sides
	// and of added records.
	dropped map[string]bool
	old     []E
	add     []E
}

// sortEntries sorts entries by key and drops duplicates, in place. Many
// entries (a new snapshot's) are sorted with their leads beside them, so
// that most comparisons read no further than the lead's bytes.
func sortEntries[E indexEntry[E]](es []E) []E {
	if len(es) < 1024 {
		slices.SortFunc(es, E.compare)
		return slices.CompactFunc(es, func(a, b E) bool { return a.compare(b) == 0 })
	}
	// Each entry's lead and record ID are held beside it, so that most
	// comparisons read no pointer (roles have few leads: their ties are
	// the rule); leads compare as their keys do followed by their end.
	type led struct {
		lead, record string
		e            E
	}
	ls := make([]led, len(es))
	for i, e := range es {
		ls[i] = led{e.lead(), e.recordID(), e}
	}
	end := es[0].leadEnd()
	compare := func(a, b led) int {
		if c := compareLeads(a.lead, b.lead, end); c != 0 {
			return c
		}
		if c := strings.Compare(a.record, b.record); c != 0 {
			return c
		}
		return a.e.compare(b.e)
	}
	slices.SortFunc(ls, compare)
	ls = slices.CompactFunc(ls, func(a, b led) bool { return compare(a, b) == 0 })
	for i, l := range ls {
		es[i] = l.e
	}
	return es[:len(ls)]
}

// compareLeads orders a+end and b+end, without building them.
func compareLeads(a, b string, end byte) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 || len(a) == len(b) {
		return c
	}
	if len(a) < len(b) {
		if b[n] >= end {
			return -1
		}
		return 1
	}
	if a[n] >= end {
		return 1
	}
	return -1
}

// plan adds the writes to w. fresh says the table is empty.
func (p *chunkPlan[E]) plan(txn *memdb.Txn, fresh bool, w *writer) {
	p.add = sortEntries(p.add)
	if fresh {
		p.emit(p.add, false, w)
		return
	}
	rows := p.touched(txn)
	if len(rows) == 0 {
		p.emit(p.add, false, w) // the table is empty
		return
	}
	// Rebuild the rows in key order. A remainder smaller than a quarter
	// chunk is carried into the row that follows it in the table, which is
	// read and rewritten when the change did not touch it.
	add := p.add
	var pending []E
	for i := 0; i < len(rows); i++ {
		row := rows[i]
		w.delete(p.table, row)
		var mine []E
		mine, add = p.addsOf(row, add, i == len(rows)-1)
		pending = p.merge(pending, row.entries, mine)
		if len(pending) == 0 {
			continue
		}
		if len(pending) >= p.max/4 {
			p.emit(pending, true, w)
			pending = nil
			continue
		}
		next := p.rowAtOrAfter(txn, append(bytes.Clone(row.key), 0))
		if next != nil && (i+1 == len(rows) || rows[i+1] != next) {
			rows = slices.Insert(rows, i+1, next)
		}
	}
	p.emit(pending, true, w)
}

// touched returns the rows that hold an old entry or the place of a new
// one, in key order. The entries are sorted, so a row is looked up only for
// an entry after the row found last; entries after every row go to the
// last row.
func (p *chunkPlan[E]) touched(txn *memdb.Txn) []*chunkRow[E] {
	touch := sortEntries(append(slices.Clone(p.old), p.add...))
	var rows []*chunkRow[E]
	var kb []byte
	for _, e := range touch {
		kb = e.appendKey(kb[:0])
		if n := len(rows); n > 0 && bytes.Compare(kb, rows[n-1].key) <= 0 {
			continue
		}
		if row := p.rowAtOrAfter(txn, kb); row != nil {
			rows = append(rows, row)
			continue
		}
		raw, err := txn.Last(p.table, indexID)
		if err != nil {
			panic(fmt.Sprintf("engine: last of %s: %v", p.table, err))
		}
		if last, ok := raw.(*chunkRow[E]); ok && (len(rows) == 0 || rows[len(rows)-1] != last) {
			rows = append(rows, last)
		}
		break
	}
	return rows
}

// addsOf splits off the new entries that belong to row: those up to its
// key, or all that remain for the last row.
func (p *chunkPlan[E]) addsOf(row *chunkRow[E], add []E, last bool) (mine, rest []E) {
	if last {
		return add, nil
	}
	var kb []byte
	n := 0
	for n < len(add) {
		kb = add[n].appendKey(kb[:0])
		if bytes.Compare(kb, row.key) > 0 {
			break
		}
		n++
	}
	return add[:n], add[n:]
}

// merge returns pending followed by the entries of a row that survive the
// change merged with the row's new entries (both sorted), in a new array
// when pending is nil.
func (p *chunkPlan[E]) merge(pending, entries, add []E) []E {
	if pending == nil {
		pending = make([]E, 0, len(entries)+len(add))
	}
	i := 0
	for _, e := range entries {
		if p.dropped[e.recordID()] {
			continue
		}
		for ; i < len(add) && add[i].compare(e) < 0; i++ {
			pending = append(pending, add[i])
		}
		pending = append(pending, e)
	}
	return append(pending, add[i:]...)
}

// rowAtOrAfter returns the first row whose key is at or after key, or nil.
func (p *chunkPlan[E]) rowAtOrAfter(txn *memdb.Txn, key []byte) *chunkRow[E] {
	it, err := txn.LowerBound(p.table, indexID, key)
	if err != nil {
		panic(fmt.Sprintf("engine: seek %s: %v", p.table, err))
	}
	row, _ := it.Next().(*chunkRow[E])
	return row
}

// emit inserts sorted entries as rows: full chunks for up to max entries
// each, or, for a run that outgrew one chunk, even pieces of about 3/4 max.
// The rows share es when own says the array is the plan's own, exactly
// sized; else each row gets a copy of its piece.
func (p *chunkPlan[E]) emit(es []E, own bool, w *writer) {
	if len(es) == 0 {
		return
	}
	size := p.max
	if len(es) > p.max && len(es) < 4*p.max {
		size = max(1, p.max*3/4)
	}
	pieces := (len(es) + size - 1) / size
	for i := range pieces {
		lo, hi := i*len(es)/pieces, (i+1)*len(es)/pieces
		part := es[lo:hi:hi]
		if !own {
			part = slices.Clone(part)
		}
		w.insert(p.table, &chunkRow[E]{key: part[len(part)-1].appendKey(nil), entries: part})
	}
}
