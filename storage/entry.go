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

// entrySize is the length of e's encoding (without its offset, which is
// in the key; putEntry writes it):
//
//	u8 version | i64 timestamp LE | [16] id | uvarint key_len | key |
//	uvarint headers_len | headers | value
func entrySize(e *Entry) int {
	return 1 + 8 + 16 + uvarintLen(len(e.Key)) + len(e.Key) + uvarintLen(len(e.Headers)) + len(e.Headers) + len(e.Value)
}

// putEntry encodes e into dst, which is entrySize(e) bytes.
func putEntry(dst []byte, e *Entry) {
	dst[0] = entryVersion
	binary.LittleEndian.PutUint64(dst[1:], uint64(e.Timestamp))
	*(*[16]byte)(dst[9:]) = e.ID
	p := 25 + binary.PutUvarint(dst[25:], uint64(len(e.Key)))
	p += copy(dst[p:], e.Key)
	p += binary.PutUvarint(dst[p:], uint64(len(e.Headers)))
	p += copy(dst[p:], e.Headers)
	copy(dst[p:], e.Value)
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
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
// (the next line number, for files). File, when set, identifies the file
// that Offset is a place in, so that a replaced file is never resumed at an
// offset of its predecessor.
type Position struct {
	Offset  int64
	Ordinal int64
	File    FileID `json:",omitzero"`
	// Generation counts the times a source started over on a new file at
	// the same path (rotation, a replaced input read from its start), so
	// that ids derived from positions never repeat a predecessor's.
	Generation uint64 `json:",omitzero"`
}

// FileID identifies one file independently of its path, as log shippers do:
// its device and inode, and a hash of its first FingerprintLen bytes (bytes
// already consumed, which appending never changes). The zero FileID means
// "not recorded" (positions of logs, and of files written by older
// versions).
type FileID struct {
	Dev, Ino       uint64
	FingerprintLen uint32
	Fingerprint    uint64
}

const positionLen, fileIDLen, generationLen = 16, 28, 8

func (p Position) encode() []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(p.Offset))
	b = binary.LittleEndian.AppendUint64(b, uint64(p.Ordinal))
	if p.File == (FileID{}) && p.Generation == 0 {
		return b
	}
	b = binary.LittleEndian.AppendUint64(b, p.File.Dev)
	b = binary.LittleEndian.AppendUint64(b, p.File.Ino)
	b = binary.LittleEndian.AppendUint32(b, p.File.FingerprintLen)
	b = binary.LittleEndian.AppendUint64(b, p.File.Fingerprint)
	if p.Generation == 0 {
		return b
	}
	return binary.LittleEndian.AppendUint64(b, p.Generation)
}

func decodePosition(b []byte) (Position, error) {
	if len(b) != positionLen && len(b) != positionLen+fileIDLen && len(b) != positionLen+fileIDLen+generationLen {
		return Position{}, fmt.Errorf("storage: corrupt position of %d bytes", len(b))
	}
	p := Position{Offset: int64(binary.LittleEndian.Uint64(b)), Ordinal: int64(binary.LittleEndian.Uint64(b[8:]))}
	if f := b[positionLen:]; len(f) >= fileIDLen {
		p.File = FileID{Dev: binary.LittleEndian.Uint64(f), Ino: binary.LittleEndian.Uint64(f[8:]),
			FingerprintLen: binary.LittleEndian.Uint32(f[16:]), Fingerprint: binary.LittleEndian.Uint64(f[20:])}
		if g := f[fileIDLen:]; len(g) == generationLen {
			p.Generation = binary.LittleEndian.Uint64(g)
		}
	}
	return p, nil
}
