package abi

import (
	"encoding/binary"
	"errors"
)

// Header is one record header (and, with the same layout, one config entry).
type Header struct {
	Key   []byte
	Value []byte
}

// KVBlockSize is the encoded size of a headers/config block holding hs.
// An empty slice encodes to zero bytes (no block at all) when omitEmpty.
func KVBlockSize(hs []Header) int {
	if len(hs) == 0 {
		return 0
	}
	n := 4
	for _, h := range hs {
		n += 8 + len(h.Key) + len(h.Value)
	}
	return n
}

// PutKVBlock writes hs into dst (which must hold KVBlockSize(hs) bytes) and
// returns the number of bytes written.
func PutKVBlock(dst []byte, hs []Header) int {
	if len(hs) == 0 {
		return 0
	}
	le := binary.LittleEndian
	le.PutUint32(dst, uint32(len(hs)))
	p := 4
	for _, h := range hs {
		le.PutUint32(dst[p:], uint32(len(h.Key)))
		p += 4
		p += copy(dst[p:], h.Key)
		le.PutUint32(dst[p:], uint32(len(h.Value)))
		p += 4
		p += copy(dst[p:], h.Value)
	}
	return p
}

// AppendKVBlock appends the encoding of hs to dst.
func AppendKVBlock(dst []byte, hs []Header) []byte {
	n := KVBlockSize(hs)
	start := len(dst)
	dst = grow(dst, n)
	PutKVBlock(dst[start:], hs)
	return dst
}

// ErrMalformedKV reports a headers/config block whose lengths overrun it.
var ErrMalformedKV = errors.New("abi: malformed key/value block")

// KVIter iterates over an encoded headers/config block without allocating.
type KVIter struct {
	buf  []byte
	left uint32
	pos  int
}

// NewKVIter validates block and returns an iterator over it. An empty block
// holds no entries.
func NewKVIter(block []byte) (KVIter, error) {
	if len(block) == 0 {
		return KVIter{}, nil
	}
	if len(block) < 4 {
		return KVIter{}, ErrMalformedKV
	}
	it := KVIter{buf: block, left: binary.LittleEndian.Uint32(block), pos: 4}
	// Validate the whole block once so Next cannot fail.
	check := it
	for check.left > 0 {
		if _, _, ok := check.next(); !ok {
			return KVIter{}, ErrMalformedKV
		}
	}
	if check.pos != len(block) {
		return KVIter{}, ErrMalformedKV
	}
	return it, nil
}

// Len is the number of entries not yet returned by Next.
func (it *KVIter) Len() int { return int(it.left) }

// Next returns the next key and value (views into the block).
func (it *KVIter) Next() (key, value []byte, ok bool) {
	if it.left == 0 {
		return nil, nil, false
	}
	return it.next()
}

func (it *KVIter) next() (key, value []byte, ok bool) {
	var k, v []byte
	if k, ok = it.field(); !ok {
		return nil, nil, false
	}
	if v, ok = it.field(); !ok {
		return nil, nil, false
	}
	it.left--
	return k, v, true
}

func (it *KVIter) field() ([]byte, bool) {
	if len(it.buf)-it.pos < 4 {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(it.buf[it.pos:])
	it.pos += 4
	if uint64(n) > uint64(len(it.buf)-it.pos) {
		return nil, false
	}
	f := it.buf[it.pos : it.pos+int(n) : it.pos+int(n)]
	it.pos += int(n)
	return f, true
}

// DecodeKVBlock decodes a block into freshly allocated headers (copies).
func DecodeKVBlock(block []byte) ([]Header, error) {
	it, err := NewKVIter(block)
	if err != nil {
		return nil, err
	}
	if it.Len() == 0 {
		return nil, nil
	}
	hs := make([]Header, 0, it.Len())
	for {
		k, v, ok := it.Next()
		if !ok {
			return hs, nil
		}
		hs = append(hs, Header{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}
