package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// LogRangeSource is a bounded view of a topic for replays: partition Part
// (or every partition when Part < 0), offsets [From, To). Its identity names
// the range, so a replay keeps offsets of its own and never moves the live
// pipeline's.
type LogRangeSource struct {
	*LogSource
	Part     int
	From, To uint64 // To == 0: the high-water mark at open
}

// NewLogRangeSource checks the topic and the range.
func NewLogRangeSource(db *storage.DB, topic string, part int, from, to uint64) (*LogRangeSource, error) {
	ls, err := NewLogSource(db, topic)
	if err != nil {
		return nil, err
	}
	if part >= int(ls.parts) {
		return nil, fmt.Errorf("replay: topic %s has %d partitions, no partition %d", topic, ls.parts, part)
	}
	if to != 0 && to <= from {
		return nil, fmt.Errorf("replay: empty range [%d, %d)", from, to)
	}
	return &LogRangeSource{LogSource: ls, Part: part, From: from, To: to}, nil
}

// Identity implements Source.
func (s *LogRangeSource) Identity() string {
	return fmt.Sprintf("log:%s[p=%d,%d-%d]", s.topic, s.Part, s.From, s.To)
}

// Open implements Source; partitions outside the range read nothing.
func (s *LogRangeSource) Open(ctx context.Context, part uint32, from Position, _ bool) (Reader, error) {
	if s.Part >= 0 && part != uint32(s.Part) {
		return emptyReader{from}, nil
	}
	if uint64(from.Offset) < s.From {
		from.Offset = int64(s.From)
	}
	r, err := s.LogSource.Open(ctx, part, from, false)
	if err != nil {
		return nil, err
	}
	if lr := r.(*logReader); s.To != 0 && s.To < lr.end {
		lr.end = s.To
	}
	return r, nil
}

type emptyReader struct{ pos Position }

func (e emptyReader) Read(_ context.Context, dst []abi.Record, _, _ int) ([]abi.Record, Position, error) {
	return dst, e.pos, io.EOF
}
func (emptyReader) Close() error { return nil }

// ReplayMetrics are the replay manager's counters.
type ReplayMetrics struct {
	Active    int
	Completed uint64
	Messages  uint64 // messages handed out by NextMessage
}

// MessageReplayManager hands out the records of a log range one by one, for
// embedders that drive their own processing (the CLI's replay command runs a
// pipeline over a LogRangeSource instead, for exactly-once delivery).
type MessageReplayManager struct {
	db *storage.DB

	mu        sync.Mutex
	next      uint64
	sessions  map[uint64]*replaySession
	completed atomic.Uint64
	messages  atomic.Uint64
}

type replaySession struct {
	topic   string
	part    uint32
	off, to uint64
	buf     []storage.Entry
	arena   []byte
}

// NewMessageReplayManager creates a manager over db's log.
func NewMessageReplayManager(db *storage.DB) *MessageReplayManager {
	return &MessageReplayManager{db: db, sessions: map[uint64]*replaySession{}}
}

// ErrNoReplay means the replay id is unknown or completed.
var ErrNoReplay = errors.New("no such replay")

// StartReplay opens a replay of topic/part over [from, to) (to == 0: up to
// the current high-water mark) and returns its id.
func (m *MessageReplayManager) StartReplay(topic string, part uint32, from, to uint64) (uint64, error) {
	ti, err := m.db.Topic(topic)
	if err != nil {
		return 0, err
	}
	if part >= ti.Partitions {
		return 0, fmt.Errorf("replay: topic %s has %d partitions, no partition %d", topic, ti.Partitions, part)
	}
	if hw := ti.HighWater[part]; to == 0 || to > hw {
		to = hw
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.next
	m.next++
	m.sessions[id] = &replaySession{topic: topic, part: part, off: from, to: to}
	return id, nil
}

// NextMessage returns the next record of replay id, or ok == false at the end
// of its range. The entry's slices are valid until the next call.
func (m *MessageReplayManager) NextMessage(id uint64) (e storage.Entry, ok bool, err error) {
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	if s == nil {
		return e, false, fmt.Errorf("replay %d: %w", id, ErrNoReplay)
	}
	if len(s.buf) == 0 {
		if s.off >= s.to {
			return e, false, nil
		}
		s.buf, s.arena, err = m.db.ReadLog(s.topic, s.part, s.off, int(min(s.to-s.off, 1000)), 4<<20, s.buf[:0], s.arena)
		if err != nil || len(s.buf) == 0 {
			return e, false, err
		}
	}
	e, s.buf = s.buf[0], s.buf[1:]
	s.off = e.Offset + 1
	m.messages.Add(1)
	return e, true, nil
}

// CompleteReplay ends replay id.
func (m *MessageReplayManager) CompleteReplay(id uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[id]; !ok {
		return fmt.Errorf("replay %d: %w", id, ErrNoReplay)
	}
	delete(m.sessions, id)
	m.completed.Add(1)
	return nil
}

// Metrics returns the manager's counters.
func (m *MessageReplayManager) Metrics() ReplayMetrics {
	m.mu.Lock()
	active := len(m.sessions)
	m.mu.Unlock()
	return ReplayMetrics{Active: active, Completed: m.completed.Load(), Messages: m.messages.Load()}
}
