package eventtime

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Snapshot encodings: a one-byte format tag (distinct per type, so bytes of
// one kind are never restored into another), then big-endian fields. Maps are
// written in sorted order so equal states encode to equal bytes.
const (
	tagWatermarks   byte = 'W'
	tagLate         byte = 'L'
	tagLateCounters byte = 'C'
	tagLateRecord   byte = 'R'
	snapshotV1      byte = 1
)

// ErrCorruptSnapshot is returned by UnmarshalBinary for bytes that were not
// written by the matching MarshalBinary.
var ErrCorruptSnapshot = errors.New("eventtime: corrupt snapshot")

func appendHeader(b []byte, tag byte) []byte { return append(b, tag, snapshotV1) }

func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func appendI64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func appendBytes(b, v []byte) []byte { return append(appendU32(b, uint32(len(v))), v...) }

// reader decodes a snapshot; the first error sticks and later reads return
// zero values, so callers check err once at the end.
type reader struct {
	b   []byte
	err error
}

func newReader(b []byte, tag byte, what string) *reader {
	r := &reader{b: b}
	if len(b) < 2 || b[0] != tag {
		r.fail("not a %s snapshot", what)
	} else if b[1] != snapshotV1 {
		r.fail("%s snapshot version %d, this build reads version %d", what, b[1], snapshotV1)
	} else {
		r.b = b[2:]
	}
	return r
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
	}
	r.b = nil
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) i64() int64 {
	if v := r.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (r *reader) bytes() []byte {
	n := r.u32()
	return r.take(int(n))
}

// count reads an element count and checks the remaining bytes can hold that
// many elements of at least minSize bytes, so a corrupt count cannot make
// the caller allocate gigabytes.
func (r *reader) count(minSize int) int {
	n := int(r.u32())
	if r.err == nil && n > len(r.b)/minSize {
		r.fail("count %d exceeds the remaining %d bytes", n, len(r.b))
		return 0
	}
	return n
}

// done reports the sticky error, or an error if bytes are left over.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
