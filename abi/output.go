package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// OutputWriter builds an output buffer in a reusable byte slice. The zero
// value is ready after Reset.
type OutputWriter struct {
	buf   []byte
	count uint32
}

// Reset starts a new output, keeping the buffer's capacity.
func (w *OutputWriter) Reset() {
	w.buf = grow(w.buf[:0], OutputHeaderSize)
	clear(w.buf)
	w.count = 0
}

// Emit appends an output record belonging to input record inputIndex.
// headers is an encoded headers block (or nil).
func (w *OutputWriter) Emit(inputIndex uint32, key, value, headers []byte, timestamp int64) {
	w.entry(EntryKindRecord, inputIndex, 0, key, value, headers, timestamp)
}

// Fail marks input record inputIndex as failed with a Fail* code and message.
func (w *OutputWriter) Fail(inputIndex, code uint32, msg string) {
	p := len(w.buf)
	w.entry(EntryKindFailed, inputIndex, code, nil, nil, nil, 0)
	w.buf = append(w.buf, msg...)
	binary.LittleEndian.PutUint32(w.buf[p+OffEntValueLen:], uint32(len(msg)))
}

func (w *OutputWriter) entry(kind, idx, code uint32, key, value, headers []byte, ts int64) {
	p := len(w.buf)
	w.buf = grow(w.buf, EntryHeaderSize)
	le := binary.LittleEndian
	e := w.buf[p:]
	le.PutUint32(e[OffEntKind:], kind)
	le.PutUint32(e[OffEntInputIndex:], idx)
	le.PutUint32(e[OffEntKeyLen:], uint32(len(key)))
	le.PutUint32(e[OffEntValueLen:], uint32(len(value)))
	le.PutUint32(e[OffEntHeadersLen:], uint32(len(headers)))
	le.PutUint32(e[OffEntCode:], code)
	le.PutUint64(e[OffEntTimestamp:], uint64(ts))
	w.buf = append(w.buf, key...)
	w.buf = append(w.buf, value...)
	w.buf = append(w.buf, headers...)
	w.count++
}

// Finish writes the header and returns the encoded output. The slice stays
// valid until the next Reset.
func (w *OutputWriter) Finish() []byte {
	le := binary.LittleEndian
	le.PutUint32(w.buf[OffOutMagic:], OutputMagic)
	le.PutUint32(w.buf[OffOutStatus:], BatchOK)
	le.PutUint32(w.buf[OffOutCount:], w.count)
	return w.buf
}

// BatchError replaces the output with a batch-level error.
func (w *OutputWriter) BatchError(status uint32, msg string) []byte {
	w.Reset()
	le := binary.LittleEndian
	le.PutUint32(w.buf[OffOutMagic:], OutputMagic)
	le.PutUint32(w.buf[OffOutStatus:], status)
	le.PutUint32(w.buf[OffOutCount:], uint32(len(msg)))
	w.buf = append(w.buf, msg...)
	return w.buf
}

// Entry is one decoded output entry; byte slices alias the output buffer.
type Entry struct {
	Kind       uint32
	InputIndex uint32
	Code       uint32
	Key        []byte
	Value      []byte // for EntryKindFailed: the error message
	Headers    []byte // raw headers block
	Timestamp  int64
}

// ErrMalformedOutput reports an output buffer that breaks the layout rules.
var ErrMalformedOutput = errors.New("abi: malformed output")

// BatchFailure is a batch-level error reported by the guest.
type BatchFailure struct {
	Status  uint32
	Message string
}

func (e *BatchFailure) Error() string {
	return fmt.Sprintf("operator failed the batch (status %d): %s", e.Status, e.Message)
}

// DecodeOutput validates buf against an input of inputCount records and
// appends its entries to dst. A batch-level error is returned as *BatchFailure.
func DecodeOutput(dst []Entry, buf []byte, inputCount uint32) ([]Entry, error) {
	dst, _, err := DecodeOutputCounting(dst, buf, inputCount)
	return dst, err
}

// DecodeOutputCounting is DecodeOutput that also returns how many of the
// entries it appended are failures (EntryKindFailed): a host learns whether
// any record failed without another pass over the entries.
func DecodeOutputCounting(dst []Entry, buf []byte, inputCount uint32) (_ []Entry, failed int, _ error) {
	if len(buf) < OutputHeaderSize {
		return dst, failed, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrMalformedOutput, len(buf), OutputHeaderSize)
	}
	le := binary.LittleEndian
	if m := le.Uint32(buf[OffOutMagic:]); m != OutputMagic {
		return dst, failed, fmt.Errorf("%w: magic %#x, want %#x", ErrMalformedOutput, m, OutputMagic)
	}
	count := le.Uint32(buf[OffOutCount:])
	if st := le.Uint32(buf[OffOutStatus:]); st != BatchOK {
		if uint64(count) > uint64(len(buf)-OutputHeaderSize) {
			return dst, failed, fmt.Errorf("%w: batch error message of %d bytes overruns the buffer", ErrMalformedOutput, count)
		}
		return dst, failed, &BatchFailure{Status: st, Message: string(buf[OutputHeaderSize : OutputHeaderSize+int(count)])}
	}
	// Grow once, bounded by what the buffer can hold.
	dst = slices.Grow(dst, int(min(uint64(count), uint64(len(buf)/EntryHeaderSize))))
	p := OutputHeaderSize
	last := uint32(0)
	for i := uint32(0); i < count; i++ {
		b := buf[p:]
		if len(b) < EntryHeaderSize {
			return dst, failed, fmt.Errorf("%w: entry %d: header truncated", ErrMalformedOutput, i)
		}
		kind, idx := le.Uint32(b[OffEntKind:]), le.Uint32(b[OffEntInputIndex:])
		kl := uint64(le.Uint32(b[OffEntKeyLen:]))
		vl := uint64(le.Uint32(b[OffEntValueLen:]))
		hl := uint64(le.Uint32(b[OffEntHeadersLen:]))
		switch {
		case kind != EntryKindRecord && kind != EntryKindFailed:
			return dst, failed, fmt.Errorf("%w: entry %d: unknown kind %d", ErrMalformedOutput, i, kind)
		case idx >= inputCount:
			return dst, failed, fmt.Errorf("%w: entry %d: input index %d out of range (batch has %d records)", ErrMalformedOutput, i, idx, inputCount)
		case idx < last:
			return dst, failed, fmt.Errorf("%w: entry %d: input index %d after %d (entries must follow input order)", ErrMalformedOutput, i, idx, last)
		case EntryHeaderSize+kl+vl+hl > uint64(len(b)):
			return dst, failed, fmt.Errorf("%w: entry %d: lengths %d+%d+%d overrun the buffer", ErrMalformedOutput, i, kl, vl, hl)
		}
		last = idx
		if kind == EntryKindFailed {
			failed++
		}
		// Filled in place: an Entry is 96 bytes, and building one to
		// append copies it twice.
		dst = dst[:len(dst)+1]
		e := &dst[len(dst)-1]
		e.Kind, e.InputIndex = kind, idx
		e.Code, e.Timestamp = le.Uint32(b[OffEntCode:]), int64(le.Uint64(b[OffEntTimestamp:]))
		k, v := EntryHeaderSize+int(kl), EntryHeaderSize+int(kl+vl)
		end := v + int(hl)
		e.Key, e.Value, e.Headers = b[EntryHeaderSize:k:k], b[k:v:v], b[v:end:end]
		if hl > 0 {
			if _, err := NewKVIter(e.Headers); err != nil {
				return dst, failed, fmt.Errorf("%w: entry %d: %v", ErrMalformedOutput, i, err)
			}
		}
		p += end
	}
	if p != len(buf) {
		return dst, failed, fmt.Errorf("%w: %d trailing bytes after %d entries", ErrMalformedOutput, len(buf)-p, count)
	}
	return dst, failed, nil
}

// Mark returns the current end of the output, for Rewind.
func (w *OutputWriter) Mark() (mark [2]uint32) { return [2]uint32{uint32(len(w.buf)), w.count} }

// Rewind drops every entry appended after mark.
func (w *OutputWriter) Rewind(mark [2]uint32) { w.buf, w.count = w.buf[:mark[0]], mark[1] }
