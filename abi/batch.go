package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Record is one input record as the host hands it to a guest.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   []Header
	Partition uint32
	Offset    int64    // source position
	Timestamp int64    // event time, Unix milliseconds
	ID        [16]byte // message id (UUID)
}

// EncodedSize is the number of bytes r occupies in a batch.
func (r *Record) EncodedSize() int {
	return RecordHeaderSize + len(r.Key) + len(r.Value) + KVBlockSize(r.Headers)
}

// BatchSize is the number of bytes EncodeBatch needs for recs.
func BatchSize(recs []Record) int {
	n := BatchHeaderSize
	for i := range recs {
		n += recs[i].EncodedSize()
	}
	return n
}

// EncodeBatch writes recs into dst, which must be at least BatchSize(recs)
// bytes (for instance a view of guest memory), and returns the bytes written.
func EncodeBatch(dst []byte, recs []Record) int {
	le := binary.LittleEndian
	le.PutUint32(dst[OffBatchMagic:], BatchMagic)
	le.PutUint32(dst[OffBatchCount:], uint32(len(recs)))
	le.PutUint32(dst[OffBatchFlags:], 0)
	le.PutUint32(dst[12:], 0)
	p := BatchHeaderSize
	for i := range recs {
		r := &recs[i]
		h := dst[p : p+RecordHeaderSize]
		hb := KVBlockSize(r.Headers)
		le.PutUint32(h[OffRecKeyLen:], uint32(len(r.Key)))
		le.PutUint32(h[OffRecValueLen:], uint32(len(r.Value)))
		le.PutUint32(h[OffRecHeadersLen:], uint32(hb))
		le.PutUint32(h[OffRecPartition:], r.Partition)
		le.PutUint64(h[OffRecOffset:], uint64(r.Offset))
		le.PutUint64(h[OffRecTimestamp:], uint64(r.Timestamp))
		*(*[RecIDLen]byte)(h[OffRecID:]) = r.ID // a move, not a call to memmove
		p += RecordHeaderSize
		p += copy(dst[p:], r.Key)
		p += copy(dst[p:], r.Value)
		p += PutKVBlock(dst[p:], r.Headers)
	}
	return p
}

// AppendBatch appends the encoding of recs to dst.
func AppendBatch(dst []byte, recs []Record) []byte {
	start := len(dst)
	dst = grow(dst, BatchSize(recs))
	EncodeBatch(dst[start:], recs)
	return dst
}

// ErrMalformedBatch reports an input batch that does not follow the layout.
var ErrMalformedBatch = errors.New("abi: malformed batch")

// RecordView is a decoded record whose byte slices point into the batch buffer.
type RecordView struct {
	Key       []byte
	Value     []byte
	Headers   []byte // raw headers block; iterate with NewKVIter
	Partition uint32
	Offset    int64
	Timestamp int64
	ID        [16]byte
}

// BatchReader decodes an input batch without allocating.
type BatchReader struct {
	buf   []byte
	pos   int
	count uint32
	read  uint32
}

// NewBatchReader checks the batch header.
func NewBatchReader(buf []byte) (BatchReader, error) {
	if len(buf) < BatchHeaderSize {
		return BatchReader{}, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrMalformedBatch, len(buf), BatchHeaderSize)
	}
	if m := binary.LittleEndian.Uint32(buf[OffBatchMagic:]); m != BatchMagic {
		return BatchReader{}, fmt.Errorf("%w: magic %#x, want %#x", ErrMalformedBatch, m, BatchMagic)
	}
	return BatchReader{buf: buf, pos: BatchHeaderSize, count: binary.LittleEndian.Uint32(buf[OffBatchCount:])}, nil
}

// Count is the number of records the header announces.
func (r *BatchReader) Count() int { return int(r.count) }

// Next decodes the next record into v. It returns false at the end of the
// batch, and an error if the record overruns the buffer.
func (r *BatchReader) Next(v *RecordView) (bool, error) {
	if r.read == r.count {
		if r.pos != len(r.buf) {
			return false, fmt.Errorf("%w: %d trailing bytes after %d records", ErrMalformedBatch, len(r.buf)-r.pos, r.count)
		}
		return false, nil
	}
	b := r.buf[r.pos:]
	if len(b) < RecordHeaderSize {
		return false, fmt.Errorf("%w: record %d: header truncated", ErrMalformedBatch, r.read)
	}
	le := binary.LittleEndian
	kl := uint64(le.Uint32(b[OffRecKeyLen:]))
	vl := uint64(le.Uint32(b[OffRecValueLen:]))
	hl := uint64(le.Uint32(b[OffRecHeadersLen:]))
	if RecordHeaderSize+kl+vl+hl > uint64(len(b)) {
		return false, fmt.Errorf("%w: record %d: lengths %d+%d+%d overrun the batch", ErrMalformedBatch, r.read, kl, vl, hl)
	}
	v.Partition = le.Uint32(b[OffRecPartition:])
	v.Offset = int64(le.Uint64(b[OffRecOffset:]))
	v.Timestamp = int64(le.Uint64(b[OffRecTimestamp:]))
	copy(v.ID[:], b[OffRecID:OffRecID+RecIDLen])
	p := uint64(RecordHeaderSize)
	v.Key = b[p : p+kl : p+kl]
	p += kl
	v.Value = b[p : p+vl : p+vl]
	p += vl
	v.Headers = b[p : p+hl : p+hl]
	p += hl
	r.pos += int(p)
	r.read++
	return true, nil
}

// DecodeBatch decodes a whole batch into records that alias buf.
func DecodeBatch(buf []byte) ([]Record, error) {
	br, err := NewBatchReader(buf)
	if err != nil {
		return nil, err
	}
	recs := make([]Record, 0, min(br.Count(), len(buf)/RecordHeaderSize))
	var v RecordView
	for {
		ok, err := br.Next(&v)
		if err != nil {
			return nil, err
		}
		if !ok {
			return recs, nil
		}
		hs, err := DecodeKVBlock(v.Headers)
		if err != nil {
			return nil, fmt.Errorf("record %d headers: %w", len(recs), err)
		}
		recs = append(recs, Record{Key: v.Key, Value: v.Value, Headers: hs, Partition: v.Partition, Offset: v.Offset, Timestamp: v.Timestamp, ID: v.ID})
	}
}
