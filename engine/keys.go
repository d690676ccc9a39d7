package engine

import (
	"encoding/binary"
	"unsafe"
)

// ident appends the identity of a subject's grants on a URI: kind, subject, NUL, URI.
func ident(dst []byte, kind byte, subject, uri string) []byte {
	dst = append(dst, kind)
	dst = append(dst, subject...)
	dst = append(dst, 0)
	return append(dst, uri...)
}

// identIs reports whether id is the identity of (kind, subject, uri).
func identIs(id []byte, kind byte, subject, uri string) bool {
	return len(id) == len(subject)+len(uri)+2 && id[0] == kind && string(id[1:1+len(subject)]) == subject &&
		id[1+len(subject)] == 0 && string(id[2+len(subject):]) == uri
}

// subjectIdentIs reports whether id, a wildcard row's identity, is (kind, subject).
func subjectIdentIs(id []byte, kind byte, subject string) bool {
	return len(id) == 1+len(subject) && id[0] == kind && string(id[1:]) == subject
}

// identURI returns the URI of id when id is an identity of (kind, subject,
// some URI). The string aliases id, which is never written once its row is
// built, so that scanning rows allocates nothing.
func identURI(id []byte, kind byte, subject string) (string, bool) {
	n := 2 + len(subject)
	if len(id) <= n || id[0] != kind || id[n-1] != 0 || string(id[1:n-1]) != subject {
		return "", false
	}
	return unsafe.String(&id[n], len(id)-n), true
}

// keyBuf is a reusable lookup key. A pointer to it passes through memdb's
// variadic arguments without allocating.
type keyBuf struct {
	b   []byte
	arr [96]byte
}

// newKeyBuf returns a key buffer for keys of up to n bytes, in one allocation when they are short.
func newKeyBuf(n int) *keyBuf {
	kb := &keyBuf{}
	if n <= len(kb.arr) {
		kb.b = kb.arr[:0]
	} else {
		kb.b = make([]byte, 0, n)
	}
	return kb
}

// Key layout of the grant tables: 8 bytes of FNV-1a hash of the subject
// (kind byte and ID), then 4 bytes of FNV-1a hash per URI segment. The keys
// are short and of fixed width per segment, so the keys of a URI's
// ancestors are exactly the prefixes of its key that end on a segment, and
// a longest-prefix lookup finds the nearest ancestor holding a grant.
const (
	subjectKeyLen = 8
	segmentKeyLen = 4
)

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

// subjectKey appends the key of a subject.
func subjectKey(dst []byte, kind byte, subject string) []byte {
	h := uint64(fnvOffset64)
	h ^= uint64(kind)
	h *= fnvPrime64
	for i := 0; i < len(subject); i++ {
		h ^= uint64(subject[i])
		h *= fnvPrime64
	}
	return binary.BigEndian.AppendUint64(dst, h)
}

// grantKey appends the key of a subject's grants on a normalized URI.
func grantKey(dst []byte, kind byte, subject, uri string) []byte {
	dst = subjectKey(dst, kind, subject)
	h := uint32(fnvOffset32)
	for i := 0; i < len(uri); i++ {
		if uri[i] == '/' {
			dst = binary.BigEndian.AppendUint32(dst, h)
			h = fnvOffset32
			continue
		}
		h ^= uint32(uri[i])
		h *= fnvPrime32
	}
	return binary.BigEndian.AppendUint32(dst, h)
}

// keySegments returns the number of URI segments a grant key encodes.
func keySegments(key []byte) int { return (len(key) - subjectKeyLen) / segmentKeyLen }

// uriPrefix returns the first n segments of a normalized URI.
func uriPrefix(uri string, n int) string {
	for i := 0; i < len(uri); i++ {
		if uri[i] == '/' {
			n--
			if n == 0 {
				return uri[:i]
			}
		}
	}
	return uri
}

// serverURIKey appends the key of a server URI row: the pattern and "/", so
// that a longest-prefix lookup of "uri/" finds only whole-segment ancestors.
func serverURIKey(dst []byte, pattern string) []byte {
	dst = append(dst, pattern...)
	return append(dst, '/')
}
