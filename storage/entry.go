package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Entry is one record of the embedded log.
type Entry struct {
	Offset    uint64 // assigned at commit
	Timestamp int64  // event time, Unix milliseconds
	ID        [16]byte
	Key       []byte
	Headers   []byte // encoded headers block (abi layout), opaque here
	Value     []byte
}

const entryVersion = 1

// appendEntry encodes e (without its offset, which is in the key):
//
//	u8 version | i64 timestamp LE | [16] id | uvarint key_len | key |
//	uvarint headers_len | headers | value
func appendEntry(dst []byte, e *Entry) []byte {
	dst = append(dst, entryVersion)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Timestamp))
	dst = append(dst, e.ID[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Key)))
	dst = append(dst, e.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(e.Headers)))
	dst = append(dst, e.Headers...)
	return append(dst, e.Value...)
}

var errCorruptEntry = errors.New("storage: corrupt log entry")

// decodeEntry decodes b into e; e's slices alias b.
func decodeEntry(b []byte, e *Entry) error {
	if len(b) < 1+8+16 || b[0] != entryVersion {
		return fmt.Errorf("%w: bad header", errCorruptEntry)
	}
	e.Timestamp = int64(binary.LittleEndian.Uint64(b[1:]))
	copy(e.ID[:], b[9:25])
	b = b[25:]
	for _, f := range []*[]byte{&e.Key, &e.Headers} {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return fmt.Errorf("%w: bad length", errCorruptEntry)
		}
		*f = b[w : w+int(n) : w+int(n)]
		b = b[w+int(n):]
	}
	e.Value = b
	return nil
}

// Position is a consumer's place in a source: Offset is where to resume
// (a log offset or a file byte offset), Ordinal counts the records consumed
// (the next line number, for files).
type Position struct {
	Offset  int64
	Ordinal int64
}

func (p Position) encode() []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(p.Offset))
	return binary.LittleEndian.AppendUint64(b, uint64(p.Ordinal))
}

func decodePosition(b []byte) (Position, error) {
	if len(b) != 16 {
		return Position{}, fmt.Errorf("storage: corrupt position of %d bytes", len(b))
	}
	return Position{Offset: int64(binary.LittleEndian.Uint64(b)), Ordinal: int64(binary.LittleEndian.Uint64(b[8:]))}, nil
}
