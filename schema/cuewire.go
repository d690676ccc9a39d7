package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The wire format between the Loader and a CUERunner: a request holds the
// files of one CUE unit, a response what evaluating them yielded (a
// cueResult). Both sides are the same binary, but the decoder treats its
// input as hostile all the same: every count and length is checked against
// the bytes that remain before anything is allocated, trees are at most
// maxDepth levels deep, and trailing bytes are an error.
//
//	request  = "chq" version dir:string count:uvarint { name:string data:string }
//	response = "chr" version count:uvarint { name:string }        the file table
//	           count:uvarint { pos path:string message:string }   the errors
//	           (0 | 1 roles:strings groups:strings)               declared
//	           (0 | 1 node)                                       the tree
//	string   = length:uvarint bytes
//	strings  = count:uvarint { string }
//	pos      = file:uvarint (0: none, i: the table's i-th name) line:uvarint col:uvarint
//	node     = kind:byte pos ( null | bool:byte | number:string | string:string
//	           | object: count:uvarint { key:string pos node } | list: count:uvarint { node } )
//
// Integers are unsigned varints (encoding/binary); file names appear once,
// in the table, and positions refer to them by index.

// wireVersion is the version of the wire format; a decoder accepts only its own.
const wireVersion = 1

var (
	requestMagic  = []byte("chq")
	responseMagic = []byte("chr")
)

// Minimum encoded sizes, which bound every count by the bytes that remain.
const (
	minPosBytes   = 3                   // three one-byte varints
	minNodeBytes  = 1 + minPosBytes     // kind and position of a null
	minFieldBytes = 1 + minPosBytes     // an empty key and a position, before the value
	minErrorBytes = minPosBytes + 1 + 1 // a position, an empty path and message
	maxWireInt    = math.MaxInt32       // the largest line, column or index accepted
)

// encodeCUERequest encodes the files of the CUE unit in dir.
func encodeCUERequest(dir string, files []sourceFile) []byte {
	size := len(requestMagic) + 1 + binary.MaxVarintLen64 + len(dir) + binary.MaxVarintLen64
	for _, f := range files {
		size += 2*binary.MaxVarintLen64 + len(f.name) + len(f.data)
	}
	b := make([]byte, 0, size)
	b = append(b, requestMagic...)
	b = append(b, wireVersion)
	b = appendString(b, dir)
	b = binary.AppendUvarint(b, uint64(len(files)))
	for _, f := range files {
		b = appendString(b, f.name)
		b = appendString(b, string(f.data)) // one copy; a unit's files are read once per change
	}
	return b
}

// decodeCUERequest decodes a request. The files' data alias data.
func decodeCUERequest(data []byte) (dir string, files []sourceFile, err error) {
	d := &wireDecoder{b: data}
	d.header(requestMagic)
	dir = d.string()
	n := d.count(2) // a name and data of one byte each at least
	files = make([]sourceFile, 0, preallocated(n))
	for range n {
		name := d.string()
		files = append(files, sourceFile{name: name, data: d.bytes()})
	}
	if err := d.finish(); err != nil {
		return "", nil, fmt.Errorf("CUE request: %w", err)
	}
	if len(files) == 0 {
		return "", nil, errors.New("CUE request: no files")
	}
	return dir, files, nil
}

// encodeCUEResponse encodes what evaluating a unit yielded.
func encodeCUEResponse(r cueResult) []byte {
	e := &wireEncoder{index: map[string]uint64{}}
	body := e.result(r)
	b := make([]byte, 0, len(responseMagic)+1+len(e.table)*16+len(body))
	b = append(b, responseMagic...)
	b = append(b, wireVersion)
	b = binary.AppendUvarint(b, uint64(len(e.table)))
	for _, name := range e.table {
		b = appendString(b, name)
	}
	return append(b, body...)
}

// decodeCUEResponse decodes a response.
func decodeCUEResponse(data []byte) (cueResult, error) {
	d := &wireDecoder{b: data}
	d.header(responseMagic)
	n := d.count(1)
	d.table = make([]string, 0, preallocated(n))
	for range n {
		d.table = append(d.table, d.string())
	}
	var r cueResult
	n = d.count(minErrorBytes)
	for range n {
		e := &Error{Pos: d.pos()}
		e.Path = d.string()
		e.Message = d.string()
		r.errs = append(r.errs, e)
	}
	if d.flag() {
		r.declared = &references{roles: d.strings(), groups: d.strings()}
	}
	if d.flag() {
		r.tree = d.node(0)
	}
	if err := d.finish(); err != nil {
		return cueResult{}, fmt.Errorf("CUE response: %w", err)
	}
	return r, nil
}

// wireEncoder builds a response body and the table of the file names its positions name.
type wireEncoder struct {
	b     []byte
	table []string
	index map[string]uint64 // a name's index in table, plus one
}

func (e *wireEncoder) result(r cueResult) []byte {
	e.b = binary.AppendUvarint(e.b, uint64(len(r.errs)))
	for _, err := range r.errs {
		e.pos(err.Pos)
		e.b = appendString(e.b, err.Path)
		e.b = appendString(e.b, err.Message)
	}
	if r.declared == nil {
		e.b = append(e.b, 0)
	} else {
		e.b = append(e.b, 1)
		e.strings(r.declared.roles)
		e.strings(r.declared.groups)
	}
	if r.tree == nil {
		e.b = append(e.b, 0)
	} else {
		e.b = append(e.b, 1)
		e.node(r.tree)
	}
	return e.b
}

func (e *wireEncoder) strings(ss []string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(ss)))
	for _, s := range ss {
		e.b = appendString(e.b, s)
	}
}

func (e *wireEncoder) pos(p Pos) {
	var file uint64
	if p.File != "" {
		file = e.index[p.File]
		if file == 0 {
			e.table = append(e.table, p.File)
			file = uint64(len(e.table))
			e.index[p.File] = file
		}
	}
	e.b = binary.AppendUvarint(e.b, file)
	e.b = binary.AppendUvarint(e.b, uint64(max(p.Line, 0)))
	e.b = binary.AppendUvarint(e.b, uint64(max(p.Col, 0)))
}

func (e *wireEncoder) node(n *node) {
	e.b = append(e.b, byte(n.kind))
	e.pos(n.pos)
	switch n.kind {
	case kindBool:
		if n.b {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
	case kindNumber, kindString:
		e.b = appendString(e.b, n.str)
	case kindObject:
		e.b = binary.AppendUvarint(e.b, uint64(len(n.fields)))
		for _, f := range n.fields {
			e.b = appendString(e.b, f.key)
			e.pos(f.pos)
			e.node(f.val)
		}
	case kindArray:
		e.b = binary.AppendUvarint(e.b, uint64(len(n.items)))
		for _, item := range n.items {
			e.node(item)
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// wireDecoder reads the wire format from b. Its first error sticks: every
// later read returns a zero value, and finish reports the error.
type wireDecoder struct {
	b     []byte
	off   int
	table []string
	err   error
}

func (d *wireDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %s", d.off, fmt.Sprintf(format, args...))
	}
}

func (d *wireDecoder) remaining() int { return len(d.b) - d.off }

func (d *wireDecoder) header(magic []byte) {
	if d.remaining() < len(magic)+1 || string(d.b[:len(magic)]) != string(magic) {
		d.fail("not a %q message", magic)
		return
	}
	d.off = len(magic)
	if v := d.b[d.off]; v != wireVersion {
		d.fail("wire format version %d, want %d", v, wireVersion)
		return
	}
	d.off++
}

func (d *wireDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// smallInt reads a varint that must fit maxWireInt.
func (d *wireDecoder) smallInt() int {
	v := d.uvarint()
	if v > maxWireInt {
		d.fail("%d is out of range", v)
		return 0
	}
	return int(v)
}

// count reads the number of elements that follow, each at least minSize
// bytes long, so that no count exceeds what the input can hold.
func (d *wireDecoder) count(minSize int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(d.remaining()/minSize) {
		d.fail("%d elements cannot fit in %d bytes", v, d.remaining())
		return 0
	}
	return int(v)
}

func (d *wireDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(d.remaining()) {
		d.fail("a string of %d bytes, with %d left", n, d.remaining())
	}
	if d.err != nil {
		return nil
	}
	s := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *wireDecoder) string() string { return string(d.bytes()) }

func (d *wireDecoder) strings() []string {
	n := d.count(1)
	var ss []string
	for range n {
		ss = append(ss, d.string())
	}
	return ss
}

func (d *wireDecoder) next() byte {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 1 {
		d.fail("unexpected end")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *wireDecoder) flag() bool {
	switch c := d.next(); c {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("flag %d, want 0 or 1", c)
		return false
	}
}

func (d *wireDecoder) pos() Pos {
	var p Pos
	if file := d.smallInt(); file > 0 {
		if file > len(d.table) {
			d.fail("file %d of a table of %d", file, len(d.table))
			return Pos{}
		}
		p.File = d.table[file-1]
	}
	p.Line = d.smallInt()
	p.Col = d.smallInt()
	return p
}

func (d *wireDecoder) node(depth int) *node {
	if depth > maxDepth {
		d.fail("a tree nested deeper than %d levels", maxDepth)
		return nil
	}
	k := kind(d.next())
	if k > kindArray {
		d.fail("node kind %d", k)
		return nil
	}
	n := &node{kind: k, pos: d.pos()}
	switch k {
	case kindBool:
		n.b = d.flag()
	case kindNumber, kindString:
		n.str = d.string()
	case kindObject:
		c := d.count(minFieldBytes + minNodeBytes)
		if c > 0 {
			n.fields = make([]field, 0, preallocated(c))
		}
		for range c {
			f := field{key: d.string(), pos: d.pos(), val: d.node(depth + 1)}
			if d.err != nil {
				return nil
			}
			n.fields = append(n.fields, f)
		}
	case kindArray:
		c := d.count(minNodeBytes)
		if c > 0 {
			n.items = make([]*node, 0, preallocated(c))
		}
		for range c {
			item := d.node(depth + 1)
			if d.err != nil {
				return nil
			}
			n.items = append(n.items, item)
		}
	}
	if d.err != nil {
		return nil
	}
	return n
}

// preallocated bounds the capacity allocated for a count read from the
// input: a count is bounded by the bytes that remain, but each nested value
// could claim them all again, so slices beyond this grow as they are filled.
func preallocated(n int) int { return min(n, 1024) }

func (d *wireDecoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", d.remaining())
	}
	return d.err
}
