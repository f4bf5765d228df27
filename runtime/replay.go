package runtime

import (
	"context"
	"fmt"
	"io"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// logRangeSource is a bounded view of a topic for replays: partition Part
// (or every partition when Part < 0), offsets [From, To). Its identity names
// the range, so a replay keeps offsets of its own and never moves the live
// pipeline's.
type logRangeSource struct {
	*logSource
	Part     int
	From, To uint64 // To == 0: the high-water mark at open
}

// NewLogRangeSource checks the topic and the range.
func NewLogRangeSource(db *storage.DB, topic string, part int, from, to uint64) (Source, error) {
	ls, err := newLogSource(db, topic)
	if err != nil {
		return nil, err
	}
	if part >= int(ls.parts) {
		return nil, fmt.Errorf("replay: topic %s has %d partitions, no partition %d", topic, ls.parts, part)
	}
	if to != 0 && to <= from {
		return nil, fmt.Errorf("replay: empty range [%d, %d)", from, to)
	}
	return &logRangeSource{logSource: ls, Part: part, From: from, To: to}, nil
}

// Identity implements Source.
func (s *logRangeSource) Identity() string {
	return fmt.Sprintf("log:%s[p=%d,%d-%d]", s.topic, s.Part, s.From, s.To)
}

// Open implements Source; partitions outside the range read nothing.
func (s *logRangeSource) Open(ctx context.Context, part uint32, from Position, _ bool) (Reader, error) {
	if s.Part >= 0 && part != uint32(s.Part) {
		return emptyReader{from}, nil
	}
	if uint64(from.Offset) < s.From {
		from.Offset = int64(s.From)
	}
	if s.To != 0 && uint64(from.Offset) >= s.To {
		return emptyReader{from}, nil // replayed already: a rerun outputs nothing
	}
	if kept, ok := s.firstKept(part); ok && kept > uint64(from.Offset) {
		return nil, fmt.Errorf("replay: %s partition %d keeps offsets from %d on: [%d, %d) are no longer kept (retention, or an archive's "+
			"record limit); replay from %d", s.topic, part, kept, from.Offset, kept, kept)
	}
	r, err := s.logSource.Open(ctx, part, from, false)
	if err != nil {
		return nil, err
	}
	if lr := r.(*logReader); s.To != 0 && s.To < lr.end {
		lr.end = s.To
	}
	return r, nil
}

// firstKept returns the first offset partition part still holds.
func (s *logRangeSource) firstKept(part uint32) (uint64, bool) {
	ents, _, err := s.db.ReadLog(s.topic, part, 0, 1, 1, nil, nil)
	if err != nil || len(ents) == 0 {
		return 0, false
	}
	return ents[0].Offset, true
}

type emptyReader struct{ pos Position }

func (e emptyReader) Read(_ context.Context, dst []abi.Record, _, _ int) ([]abi.Record, Position, error) {
	return dst, e.pos, io.EOF
}
func (emptyReader) Close() error { return nil }
