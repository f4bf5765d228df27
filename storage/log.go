package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
)

// TopicInfo describes a topic of the embedded log.
type TopicInfo struct {
	Name       string
	Partitions uint32
	HighWater  []uint64 // durable next offset per partition
}

func decodeTopicMeta(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("corrupt topic metadata (%d bytes)", len(b))
	}
	return binary.LittleEndian.Uint32(b), nil
}

func decodeU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// ErrNoTopic means the topic does not exist.
var ErrNoTopic = fmt.Errorf("no such topic")

// MaxPartitions bounds a topic's partition count.
const MaxPartitions = 1024

// CreateTopic creates topic with the given partitions. Creating an existing
// topic with the same partition count is a no-op; with another count, an error.
func (db *DB) CreateTopic(topic string, partitions uint32) error {
	if err := ValidateName("topic", topic); err != nil {
		return err
	}
	if partitions == 0 || partitions > MaxPartitions {
		return fmt.Errorf("topic %q: partitions must be 1..%d, got %d", topic, MaxPartitions, partitions)
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	db.mu.Lock()
	have, ok := db.topics[topic]
	db.mu.Unlock()
	if ok {
		if have != partitions {
			return fmt.Errorf("topic %q already exists with %d partitions, not %d", topic, have, partitions)
		}
		return nil
	}
	if err := db.guard(func() error {
		return db.pdb.Set(topicKey(topic), binary.LittleEndian.AppendUint32(nil, partitions), pebble.Sync)
	}); err != nil {
		return fmt.Errorf("storage: create topic %q: %w", topic, err)
	}
	db.mu.Lock()
	db.topics[topic] = partitions
	db.mu.Unlock()
	return nil
}

// Topic returns a topic's description.
func (db *DB) Topic(topic string) (TopicInfo, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	parts, ok := db.topics[topic]
	if !ok {
		return TopicInfo{}, fmt.Errorf("topic %q: %w (create it, or write to it first)", topic, ErrNoTopic)
	}
	ti := TopicInfo{Name: topic, Partitions: parts, HighWater: make([]uint64, parts)}
	for p := range parts {
		ti.HighWater[p] = db.durable[tp{topic, p}]
	}
	return ti, nil
}

// Topics lists every topic, sorted by name.
func (db *DB) Topics() []TopicInfo {
	db.mu.Lock()
	names := make([]string, 0, len(db.topics))
	for n := range db.topics {
		names = append(names, n)
	}
	db.mu.Unlock()
	sort.Strings(names)
	out := make([]TopicInfo, 0, len(names))
	for _, n := range names {
		ti, err := db.Topic(n)
		if err == nil {
			out = append(out, ti)
		}
	}
	return out
}

// HighWater is the durable next offset of a partition: every offset below it
// is committed and readable.
func (db *DB) HighWater(topic string, part uint32) uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.durable[tp{topic, part}]
}

// Changed returns a channel closed by the next commit that appends to the
// log, for readers that tail it.
func (db *DB) Changed() <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.changed
}

// WaitBeyond blocks until the partition's high-water mark exceeds off or ctx
// is done.
func (db *DB) WaitBeyond(ctx context.Context, topic string, part uint32, off uint64) error {
	for {
		ch := db.Changed()
		if db.HighWater(topic, part) > off {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ReadLog appends to dst the committed entries of a partition from offset
// from, at most max entries and about maxBytes of values (at least one entry
// is returned when one is available). Entries' slices alias arena, which is
// returned grown; pass it back in to reuse it.
func (db *DB) ReadLog(topic string, part uint32, from uint64, max, maxBytes int, dst []Entry, arena []byte) ([]Entry, []byte, error) {
	hw := db.HighWater(topic, part)
	if from >= hw || max <= 0 {
		return dst, arena, nil
	}
	lo := logKey(nil, topic, part, from)
	hi := logKey(nil, topic, part, hw)
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return dst, arena, err
	}
	defer it.Close()
	arena = arena[:0]
	type span struct {
		off        uint64
		start, end int
	}
	spans := make([]span, 0, min(max, 4096))
	bytes := 0
	for it.First(); it.Valid() && len(spans) < max && (bytes < maxBytes || len(spans) == 0); it.Next() {
		k := it.Key()
		off := binary.BigEndian.Uint64(k[len(k)-8:])
		v, err := it.ValueAndErr()
		if err != nil {
			return dst, arena, damaged(db.dir, err)
		}
		start := len(arena)
		arena = append(arena, v...)
		spans = append(spans, span{off, start, len(arena)})
		bytes += len(v)
	}
	if err := it.Error(); err != nil {
		return dst, arena, damaged(db.dir, err)
	}
	// Decode after the arena stops growing so the slices stay valid.
	for _, s := range spans {
		e := Entry{Offset: s.off}
		if err := decodeEntry(arena[s.start:s.end:s.end], &e); err != nil {
			return dst, arena, fmt.Errorf("topic %s partition %d offset %d: %w", topic, part, s.off, err)
		}
		dst = append(dst, e)
	}
	return dst, arena, nil
}
