package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
)

// lineReader turns a byte stream into JSON Lines records: one record per
// newline-terminated line, the line (without its newline) as the value. A
// last line without newline is a record only when the input is known to be
// complete (final). Blank lines are skipped but counted. A line that is not
// valid JSON, or longer than maxRecord, ends the stream with an *InputError
// once the lines before it have been returned (or, with KeepBadRecords, is
// handed over for the dead-letter queue).
type lineReader struct {
	name   string // for errors: the file path or "stdin"
	src    uint64 // source hash, for ids
	r      io.Reader
	follow bool // on EOF wait for more input instead of ending
	poll   time.Duration
	final  bool // at EOF the input is complete: a last line without newline counts
	// atEOF, when set, is called while following each time the input is
	// exhausted (after the poll wait): the file reader detects rotation there.
	atEOF func() error

	maxRecord int // longest record in bytes; 0: no limit

	buf     []byte
	start   int // first unconsumed byte of buf
	eof     bool
	pos     Position // position of buf[start] (while skipping: of the skipped line)
	pending error
	skip    *skipping // a record longer than maxRecord being discarded
	left    int64     // at EOF: bytes of an unterminated last line left unread

	draining bool // return what is buffered, read no more (drain)

	keepBad bool        // collect malformed lines instead of stopping
	bad     []BadRecord // malformed lines since the last TakeBadRecords
	lines   []lineAt    // the records returned by the last Read: their lines
}

// lineAt is the 1-based line number of the record at a byte offset.
type lineAt struct{ offset, line int64 }

// lineNumberer is implemented by line-oriented readers: lineNumbers gives
// the line of each record returned by the last Read, valid until the next
// Read. Dead-letter entries for plugin failures carry it, like those for
// malformed lines.
type lineNumberer interface {
	lineNumbers() []lineAt
}

func (l *lineReader) lineNumbers() []lineAt { return l.lines }

// lineOf finds the line of the record at offset in lines (0: unknown). A
// linear scan: it runs only for dead-lettered records, and a rotation within
// one Read makes offsets restart.
func lineOf(lines []lineAt, offset int64) int64 {
	for _, l := range lines {
		if l.offset == offset {
			return l.line
		}
	}
	return 0
}

// skipping is a record longer than the limit, discarded up to its newline.
type skipping struct {
	head []byte // its first bytes, for the dead-letter entry
	n    int64  // bytes discarded so far
}

// tooLargeHead is how much of a too-large record its dead-letter entry keeps.
const tooLargeHead = 4 << 10

// id is the message id of the line at offset of the current file: its
// generation takes part, so a new file's lines never get the ids of its
// predecessor's.
func (l *lineReader) id(offset int64) [16]byte {
	return positionID(l.src^(l.pos.Generation*0x9e3779b97f4a7c15), offset)
}

// BadRecord is an input record a Reader could not turn into a record.
type BadRecord struct {
	Data   []byte   // the record as read (its head, when too large)
	Line   int64    // 1-based line of a line-oriented source, else 0
	Offset int64    // where it starts in the source partition
	ID     [16]byte // its message id
	Code   uint32   // abi.FailMalformedInput or abi.FailRecordTooLarge
	Err    error    // what is wrong with it
}

// BadRecordReader is implemented by readers that can set bad records aside
// instead of failing: after KeepBadRecords, Read consumes such a record and
// TakeBadRecords hands it over (the pipeline dead-letters it).
type BadRecordReader interface {
	Reader
	KeepBadRecords()
	TakeBadRecords() []BadRecord
}

// readerConfig is what a pipeline tells its readers after opening them.
type readerConfig struct {
	maxRecordBytes int
	finalLine      bool
	logger         *slog.Logger // the pipeline's, with its name
	resumed        bool         // the reader starts at a committed position
}

// configurableReader is implemented by readers that honour readerConfig.
type configurableReader interface {
	configure(readerConfig)
}

// unterminatedReader is implemented by readers that can end with an
// unterminated last line left unread.
type unterminatedReader interface {
	unterminated() int64
}

func (l *lineReader) KeepBadRecords() { l.keepBad = true }

func (l *lineReader) TakeBadRecords() []BadRecord {
	b := l.bad
	l.bad = nil
	return b
}

func (l *lineReader) configure(c readerConfig) {
	l.maxRecord = c.maxRecordBytes
	if c.finalLine && !l.follow {
		l.final = true
	}
}

func (l *lineReader) unterminated() int64 { return l.left }

// drain implements drainableReader.
func (l *lineReader) drain() { l.draining = true }

// drainableReader is implemented by readers that buffer input ahead of
// the records they return. After drain, Read returns the complete records
// buffered, then errDrained, and reads no more input: a stopped pipeline
// processes what it has read of a source that cannot be read again.
type drainableReader interface{ drain() }

// errDrained ends the reads of a drained reader.
var errDrained = errors.New("input drained: stopped")

const initialLineBuf = 1 << 20

func (l *lineReader) Read(ctx context.Context, dst []abi.Record, max, maxBytes int) ([]abi.Record, Position, error) {
	l.lines = l.lines[:0]
	if l.pending != nil {
		return dst, l.pos, l.pending
	}
	for {
		n := len(dst)
		dst = l.scan(dst, max, maxBytes)
		if len(dst) > n || l.pending != nil || len(l.bad) > 0 {
			return dst, l.pos, nil
		}
		if l.draining {
			return dst, l.pos, errDrained
		}
		if l.eof {
			if !l.follow {
				l.left = int64(len(l.buf) - l.start)
				if l.skip != nil {
					l.left += l.skip.n
				}
				return dst, l.pos, io.EOF
			}
			select {
			case <-ctx.Done():
				return dst, l.pos, ctx.Err()
			case <-time.After(l.poll):
			}
			if l.atEOF != nil {
				if err := l.atEOF(); err != nil {
					return dst, l.pos, err
				}
			}
			l.eof = false
		}
		if err := l.fill(); err != nil {
			return dst, l.pos, err
		}
	}
}

// fill compacts the buffer and reads more input. Records returned earlier
// are no longer referenced (Read's contract), so moving bytes is safe. The
// buffer grows while one line fills it, up to maxRecord plus one read
// buffer: scan discards a longer line instead.
func (l *lineReader) fill() error {
	if l.start > 0 {
		n := copy(l.buf, l.buf[l.start:])
		l.buf = l.buf[:n]
		l.start = 0
	}
	if l.buf == nil {
		l.buf = make([]byte, 0, initialLineBuf)
	}
	if len(l.buf) == cap(l.buf) { // one line fills the buffer: grow it
		c := 2 * cap(l.buf)
		if l.maxRecord > 0 {
			c = min(c, l.maxRecord+initialLineBuf)
		}
		if c > cap(l.buf) {
			nb := make([]byte, len(l.buf), c)
			copy(nb, l.buf)
			l.buf = nb
		}
	}
	n, err := l.r.Read(l.buf[len(l.buf):cap(l.buf)])
	l.buf = l.buf[:len(l.buf)+n]
	if err == io.EOF {
		l.eof = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", l.name, err)
	}
	return nil
}

// scan cuts complete lines out of the buffer into records.
func (l *lineReader) scan(dst []abi.Record, max, maxBytes int) []abi.Record {
	got, bytesOut := 0, 0
	for got < max && (bytesOut < maxBytes || got == 0) {
		rest := l.buf[l.start:]
		if l.skip != nil {
			if !l.skipOn(rest) {
				return dst
			}
			got++
			continue
		}
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		consumed := 0
		switch {
		case i >= 0:
			line, consumed = rest[:i], i+1
		case l.maxRecord > 0 && len(rest) > l.maxRecord:
			// No newline within the limit: discard the line up to its end.
			if !l.keepBad {
				l.pending = l.tooLarge(fmt.Errorf("record longer than the %d-byte limit; raise the limit, or remove or split the line, then rerun: "+
					"everything before it is committed", l.maxRecord), l.pos.Offset, l.pos.Ordinal+1)
				return dst
			}
			l.skip = &skipping{head: append([]byte(nil), rest[:min(len(rest), tooLargeHead)]...)}
			continue
		case l.eof && l.final && len(rest) > 0:
			line, consumed = rest, len(rest)
		default:
			return dst
		}
		lineStart := l.pos.Offset
		if l.maxRecord > 0 && len(line) > l.maxRecord {
			if !l.keepBad {
				l.pending = l.tooLarge(fmt.Errorf("record of %d bytes, longer than the %d-byte limit; raise the limit, or remove or split the line, then rerun: "+
					"everything before it is committed", len(line), l.maxRecord), lineStart, l.pos.Ordinal+1)
				return dst
			}
			l.skip = &skipping{head: append([]byte(nil), line[:min(len(line), tooLargeHead)]...)}
			continue
		}
		l.start += consumed
		l.pos.Offset += int64(consumed)
		l.pos.Ordinal++
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !json.Valid(line) {
			var v any
			err := json.Unmarshal(line, &v)
			if l.keepBad {
				l.bad = append(l.bad, BadRecord{Data: append([]byte(nil), line...), Line: l.pos.Ordinal, Offset: lineStart,
					ID: l.id(lineStart), Code: abi.FailMalformedInput,
					Err: &inputError{Source: l.name, Line: l.pos.Ordinal, Offset: lineStart, Err: fmt.Errorf("not valid JSON (%v)", err)}})
				got++ // counts toward the batch, so a file of bad lines still yields batches
				continue
			}
			l.pos.Offset, l.pos.Ordinal = lineStart, l.pos.Ordinal-1
			l.pending = &inputError{Source: l.name, Line: l.pos.Ordinal + 1, Offset: lineStart,
				Err: fmt.Errorf("not valid JSON (%v); fix or remove the line, then rerun: everything before it is committed", err)}
			return dst
		}
		dst = append(dst, abi.Record{Value: line, Offset: lineStart, ID: l.id(lineStart)})
		l.lines = append(l.lines, lineAt{offset: lineStart, line: l.pos.Ordinal})
		got++
		bytesOut += len(line)
	}
	return dst
}

// skipOn discards rest, part of a record longer than maxRecord. When it
// reaches the record's end (its newline, or the end of a complete input) it
// consumes the record, sets it aside as a bad line and returns true. Until
// then l.pos stays at the record's start, so a restart skips it again.
func (l *lineReader) skipOn(rest []byte) bool {
	i := bytes.IndexByte(rest, '\n')
	end := i + 1
	if i < 0 {
		if !l.eof || !l.final {
			l.skip.n += int64(len(rest))
			l.start += len(rest)
			return false
		}
		end = len(rest) // the last line of a complete input
	}
	size := l.skip.n + int64(end)
	if i >= 0 {
		size-- // without its newline
	}
	l.start += end
	lineStart := l.pos.Offset
	l.pos.Offset += l.skip.n + int64(end)
	l.pos.Ordinal++
	err := l.tooLarge(fmt.Errorf("record of %d bytes, longer than the %d-byte limit: skipped (this entry keeps its first %d bytes; the whole record is in the input at byte %d)",
		size, l.maxRecord, len(l.skip.head), lineStart), lineStart, l.pos.Ordinal)
	l.bad = append(l.bad, BadRecord{Data: l.skip.head, Line: l.pos.Ordinal, Offset: lineStart, ID: l.id(lineStart),
		Code: abi.FailRecordTooLarge, Err: err})
	l.skip = nil
	return true
}

func (l *lineReader) tooLarge(err error, offset, line int64) *inputError {
	return &inputError{Source: l.name, Line: line, Offset: offset, Err: fmt.Errorf("%w: %w", ErrRecordTooLarge, err)}
}

func (l *lineReader) Close() error { return nil }
