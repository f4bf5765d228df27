package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
)

// lineReader turns a byte stream into JSON Lines records: one record per
// line, the line (without its newline) as the value. Blank lines are skipped
// but counted. A line that is not valid JSON ends the stream with an
// *InputError once the lines before it have been returned.
type lineReader struct {
	name    string // for errors: the file path or "stdin"
	src     uint64 // source hash, for ids
	r       io.Reader
	follow  bool // on EOF wait for more input instead of ending
	poll    time.Duration
	partial bool // a final line without newline counts at EOF (not following)

	buf     []byte
	start   int // first unconsumed byte of buf
	eof     bool
	pos     Position // position of buf[start]
	pending error

	keepBad bool      // collect malformed lines instead of stopping
	bad     []badLine // malformed lines since the last takeBadLines
}

// badLine is an input line that could not be parsed.
type badLine struct {
	line   []byte
	lineNo int64
	offset int64
	err    error
}

// badLineReader is implemented by line-oriented readers: with keepBadLines
// a malformed line is consumed and handed over through takeBadLines (to the
// dead-letter queue) instead of ending the stream.
type badLineReader interface {
	keepBadLines()
	takeBadLines() []badLine
}

func (l *lineReader) keepBadLines() { l.keepBad = true }

func (l *lineReader) takeBadLines() []badLine {
	b := l.bad
	l.bad = nil
	return b
}

const initialLineBuf = 1 << 20

func (l *lineReader) Read(ctx context.Context, dst []abi.Record, max, maxBytes int) ([]abi.Record, Position, error) {
	if l.pending != nil {
		return dst, l.pos, l.pending
	}
	for {
		n := len(dst)
		dst = l.scan(dst, max, maxBytes)
		if len(dst) > n || l.pending != nil || len(l.bad) > 0 {
			return dst, l.pos, nil
		}
		if l.eof {
			if !l.follow {
				return dst, l.pos, io.EOF
			}
			select {
			case <-ctx.Done():
				return dst, l.pos, ctx.Err()
			case <-time.After(l.poll):
			}
			l.eof = false
		}
		if err := l.fill(); err != nil {
			return dst, l.pos, err
		}
	}
}

// fill compacts the buffer and reads more input. Records returned earlier
// are no longer referenced (Read's contract), so moving bytes is safe.
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
		nb := make([]byte, len(l.buf), 2*cap(l.buf))
		copy(nb, l.buf)
		l.buf = nb
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
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		consumed := 0
		switch {
		case i >= 0:
			line, consumed = rest[:i], i+1
		case l.eof && !l.follow && l.partial && len(rest) > 0:
			line, consumed = rest, len(rest)
		default:
			return dst
		}
		lineStart := l.pos.Offset
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
				l.bad = append(l.bad, badLine{line: append([]byte(nil), line...), lineNo: l.pos.Ordinal, offset: lineStart,
					err: &InputError{Source: l.name, Line: l.pos.Ordinal, Offset: lineStart, Err: fmt.Errorf("not valid JSON (%v)", err)}})
				got++ // counts toward the batch, so a file of bad lines still yields batches
				continue
			}
			l.pos.Offset, l.pos.Ordinal = lineStart, l.pos.Ordinal-1
			l.pending = &InputError{Source: l.name, Line: l.pos.Ordinal + 1, Offset: lineStart,
				Err: fmt.Errorf("not valid JSON (%v); fix or remove the line, then rerun: everything before it is committed", err)}
			return dst
		}
		dst = append(dst, abi.Record{Value: line, Offset: lineStart, ID: positionID(l.src, lineStart)})
		got++
		bytesOut += len(line)
	}
	return dst
}

func (l *lineReader) Close() error { return nil }
