package runtime

import (
	"context"
	"fmt"
	"io"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// logSource reads a topic of the embedded log, one reader per partition.
type logSource struct {
	db    *storage.DB
	topic string
	parts uint32
}

// newLogSource checks that topic exists.
func newLogSource(db *storage.DB, topic string) (*logSource, error) {
	ti, err := db.Topic(topic)
	if err != nil {
		return nil, err
	}
	return &logSource{db: db, topic: topic, parts: ti.Partitions}, nil
}

func (s *logSource) Identity() string   { return "log:" + s.topic }
func (s *logSource) Partitions() uint32 { return s.parts }
func (s *logSource) Resumable() bool    { return true }

// EndOffset implements EndOffsetSource: the partition's high-water mark.
func (s *logSource) EndOffset(part uint32) (int64, bool) {
	return int64(s.db.HighWater(s.topic, part)), true
}

// Open implements Source.
func (s *logSource) Open(_ context.Context, part uint32, from Position, follow bool) (Reader, error) {
	r := &logReader{db: s.db, topic: s.topic, part: part, pos: from, follow: follow,
		src: sourceHash(fmt.Sprintf("%s/%d", s.Identity(), part))}
	if !follow {
		r.end = s.db.HighWater(s.topic, part)
	}
	return r, nil
}

type logReader struct {
	db      *storage.DB
	topic   string
	part    uint32
	pos     Position
	follow  bool
	end     uint64 // without follow: the high-water mark at Open
	src     uint64 // for ids of entries written without one
	entries []storage.Entry
	arena   []byte

	maxRecord int         // longest value in bytes; 0: no limit
	keepBad   bool        // set too-large records aside instead of stopping
	bad       []BadRecord // too-large records since the last TakeBadRecords
}

func (r *logReader) configure(c readerConfig) { r.maxRecord = c.maxRecordBytes }
func (r *logReader) KeepBadRecords()          { r.keepBad = true }

func (r *logReader) TakeBadRecords() []BadRecord {
	b := r.bad
	r.bad = nil
	return b
}

// tooLarge handles an entry longer than the record limit: set aside (true),
// or, without keepBad, the error that stops the pipeline at it.
func (r *logReader) tooLarge(e *storage.Entry, id [16]byte) error {
	err := &inputError{Source: fmt.Sprintf("log:%s partition %d", r.topic, r.part), Offset: int64(e.Offset),
		Err: fmt.Errorf("%w: record of %d bytes, longer than the %d-byte limit", ErrRecordTooLarge, len(e.Value), r.maxRecord)}
	if !r.keepBad {
		err.Err = fmt.Errorf("%w; raise the limit, then rerun: everything before it is committed", err.Err)
		return err
	}
	r.bad = append(r.bad, BadRecord{Data: append([]byte(nil), e.Value[:min(len(e.Value), tooLargeHead)]...), Offset: int64(e.Offset),
		ID: id, Code: abi.FailRecordTooLarge, Err: err})
	return nil
}

func (r *logReader) Read(ctx context.Context, dst []abi.Record, max, maxBytes int) ([]abi.Record, Position, error) {
	for {
		from := uint64(r.pos.Offset)
		if !r.follow {
			if from >= r.end {
				return dst, r.pos, io.EOF
			}
			max = int(min(uint64(max), r.end-from))
		}
		var err error
		r.entries, r.arena, err = r.db.ReadLog(r.topic, r.part, from, max, maxBytes, r.entries[:0], r.arena)
		if err != nil {
			return dst, r.pos, err
		}
		if !r.follow {
			// Offsets below from may be gone (retention), and the read starts
			// at the first kept: it must still stop at the end.
			n := len(r.entries)
			for n > 0 && r.entries[n-1].Offset >= r.end {
				n--
			}
			if n == 0 && len(r.entries) > 0 {
				r.pos.Offset = int64(r.end) // nothing kept in [from, end)
				return dst, r.pos, io.EOF
			}
			r.entries = r.entries[:n]
		}
		if len(r.entries) > 0 {
			for i := range r.entries {
				e := &r.entries[i]
				id := e.ID
				if id == ([16]byte{}) {
					id = positionID(r.src, int64(e.Offset))
				}
				if r.maxRecord > 0 && len(e.Value) > r.maxRecord {
					if err := r.tooLarge(e, id); err != nil {
						// Stop at it: the entries before it are returned.
						r.pos = Position{Offset: int64(e.Offset), Ordinal: r.pos.Ordinal + int64(i)}
						return dst, r.pos, err
					}
					continue
				}
				var hs []abi.Header
				if len(e.Headers) > 0 {
					hs, _ = abi.DecodeKVBlock(e.Headers)
				}
				dst = append(dst, abi.Record{Key: e.Key, Value: e.Value, Headers: hs, Partition: r.part,
					Offset: int64(e.Offset), Timestamp: e.Timestamp, ID: id})
			}
			last := r.entries[len(r.entries)-1].Offset
			r.pos = Position{Offset: int64(last) + 1, Ordinal: r.pos.Ordinal + int64(len(r.entries))}
			return dst, r.pos, nil
		}
		if !r.follow {
			return dst, r.pos, io.EOF
		}
		if err := r.db.WaitBeyond(ctx, r.topic, r.part, from); err != nil {
			return dst, r.pos, err
		}
	}
}

func (r *logReader) Close() error { return nil }
