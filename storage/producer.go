package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Producer fencing. A producer (a pipeline writing to the log) has an epoch
// that only increases, bumped each time an instance starts, and numbers its
// appends per partition. Commit refuses a batch from an older epoch than the
// producer's current one (a zombie instance) and a batch whose sequence
// numbers do not continue the partition's last committed one.

// ErrFenced means a newer instance of the producer has started.
var ErrFenced = errors.New("producer fenced by a newer epoch")

// ErrSequence means a producer's appends are out of order or repeated.
var ErrSequence = errors.New("producer sequence out of order")

func epochKey(producer string) []byte { return append([]byte{tagEpoch}, producer...) }

func sequenceKey(producer, topic string, part uint32) []byte {
	k := nameKey(nil, tagSequence, producer)
	k = append(append(k, topic...), 0)
	return binary.BigEndian.AppendUint32(k, part)
}

// BumpEpoch durably increments producer's epoch and returns it. Batches of
// earlier epochs are refused from now on.
func (db *DB) BumpEpoch(producer string) (uint64, error) {
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	cur, err := db.epochLocked(producer)
	if err != nil {
		return 0, err
	}
	next := cur + 1
	if err := db.guard(func() error {
		return db.pdb.Set(epochKey(producer), binary.BigEndian.AppendUint64(nil, next), pebble.Sync)
	}); err != nil {
		return 0, fmt.Errorf("storage: bump epoch of %s: %w", producer, err)
	}
	db.mu.Lock()
	db.epochs[producer] = next
	db.mu.Unlock()
	return next, nil
}

// epochLocked returns producer's current epoch; commitMu must be held.
func (db *DB) epochLocked(producer string) (uint64, error) {
	db.mu.Lock()
	e, ok := db.epochs[producer]
	db.mu.Unlock()
	if ok {
		return e, nil
	}
	v, found, err := db.get(epochKey(producer))
	if err != nil || !found {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// LastSequence returns the last committed sequence number of producer on a
// partition, and the epoch that wrote it.
func (db *DB) LastSequence(producer, topic string, part uint32) (epoch, seq uint64, found bool, err error) {
	v, found, err := db.get(sequenceKey(producer, topic, part))
	if err != nil || !found {
		return 0, 0, found, err
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), true, nil
}

// SetProducer marks the batch's sequenced appends as coming from producer at
// epoch.
func (b *Batch) SetProducer(producer string, epoch uint64) {
	b.producer, b.epoch = producer, epoch
}

// SequenceAppends numbers every later Append of the batch with sequence
// numbers reserve hands out: reserve(topic, part, n) reserves the
// producer's next n for the partition and returns the first. SetProducer
// must be set.
func (b *Batch) SequenceAppends(reserve func(topic string, part uint32, n uint64) uint64) {
	b.reserve = reserve
}

// FirstSequences calls fn with the first sequence number the batch uses in
// each partition (to hand them out again if the batch is discarded).
func (b *Batch) FirstSequences(fn func(topic string, part uint32, seq uint64)) {
	seen := map[tp]bool{}
	for _, r := range b.runs {
		if r.sequenced && !seen[r.tp] {
			seen[r.tp] = true
			fn(r.tp.topic, r.tp.part, r.seq)
		}
	}
}

// AppendSeq stages a log entry with the producer's sequence number seq for
// its partition (see SetProducer).
func (b *Batch) AppendSeq(topic string, part uint32, seq uint64, e *Entry) error {
	if b.producer == "" {
		return errors.New("storage: AppendSeq without SetProducer")
	}
	return b.appendRun(topic, part, 1, func(int) *Entry { return e }, seq, true)
}

// checkProducerLocked validates the batch's epoch and sequences and stages
// the new last sequences; commitMu must be held.
func (db *DB) checkProducerLocked(b *Batch) error {
	if b.producer == "" {
		return nil
	}
	cur, err := db.epochLocked(b.producer)
	if err != nil {
		return err
	}
	if b.epoch < cur {
		return fmt.Errorf("producer %s: batch of epoch %d, current epoch %d: %w", b.producer, b.epoch, cur, ErrFenced)
	}
	next := map[tp]uint64{}
	for _, r := range b.runs {
		if !r.sequenced {
			continue
		}
		want, ok := next[r.tp]
		if !ok {
			epoch, last, found, err := db.LastSequence(b.producer, r.tp.topic, r.tp.part)
			if err != nil {
				return err
			}
			want = 0
			if found && epoch == b.epoch {
				want = last + 1
			}
		}
		if r.seq != want {
			return fmt.Errorf("producer %s epoch %d, %s/%d: sequence %d, want %d: %w", b.producer, b.epoch, r.tp.topic, r.tp.part, r.seq, want, ErrSequence)
		}
		next[r.tp] = r.seq + uint64(r.end-r.start)
	}
	for t, n := range next {
		v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, b.epoch), n-1)
		if err := b.b.Set(sequenceKey(b.producer, t.topic, t.part), v, nil); err != nil {
			return err
		}
	}
	return nil
}
