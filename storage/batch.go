package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Batch collects writes that commit atomically and durably. Log appends get
// their offsets at commit time.
type Batch struct {
	db       *DB
	b        *pebble.Batch
	appends  []pendingAppend
	key      []byte // scratch
	producer string // set by SetProducer
	epoch    uint64
	nextSeq  func(topic string, part uint32) uint64 // set by SequenceAppends
	retain   []retention
	noSync   bool // set by SkipSync
}

// SkipSync marks the batch as a cache of state kept durably elsewhere (a
// Kafka transaction that already committed it): Commit does not wait for
// the disk, and a crash may lose the batch, which its owner rebuilds. A
// batch that appends to a log is synced anyway: readers never see past
// what is durable.
func (b *Batch) SkipSync() { b.noSync = true }

// syncOpt is how b commits.
func (b *Batch) syncOpt() *pebble.WriteOptions {
	if b.noSync && len(b.appends) == 0 {
		return pebble.NoSync
	}
	return pebble.Sync
}

type retention struct {
	tp   tp
	keep uint64
}

type pendingAppend struct {
	tp tp
	// at is where the entry's offset, the last 8 bytes of its key, lies in
	// the Pebble batch's data: Commit writes it there.
	at        int
	seq       uint64
	sequenced bool
}

// NewBatch starts an empty batch.
func (db *DB) NewBatch() *Batch {
	// Sized as the last batch that appended: a transaction's batch holds
	// megabytes, which growing by doubling would copy several times.
	return &Batch{db: db, b: db.pdb.NewBatchWithSize(int(db.batchSize.Load()))}
}

// Close releases the batch without committing it.
func (b *Batch) Close() {
	if b.b != nil {
		b.b.Close()
		b.b = nil
	}
}

// Append stages a log entry for topic/part; its offset is assigned at commit.
func (b *Batch) Append(topic string, part uint32, e *Entry) error {
	b.db.mu.Lock()
	parts, ok := b.db.topics[topic]
	b.db.mu.Unlock()
	if !ok {
		return fmt.Errorf("append to topic %q: %w", topic, ErrNoTopic)
	}
	if part >= parts {
		return fmt.Errorf("append to topic %q: partition %d out of range (%d partitions)", topic, part, parts)
	}
	// The entry goes into the Pebble batch now, encoded in place (its one
	// copy, made outside the commit lock), under its key with offset 0:
	// Commit writes the offset into the key.
	b.key = logKey(b.key[:0], topic, part, 0)
	op := b.b.SetDeferred(len(b.key), entrySize(e))
	copy(op.Key, b.key)
	putEntry(op.Value, e)
	if err := op.Finish(); err != nil {
		return err
	}
	// op.Key is a slice of the batch's data: its capacity runs to the end
	// of the data's, which gives its position (checked on a batch's first
	// append, the layout being the same for all: Commit writes there).
	data := b.b.Repr()
	a := pendingAppend{tp: tp{topic, part}, at: cap(data) - cap(op.Key) + len(op.Key) - 8}
	if len(b.appends) == 0 && (a.at < 0 || a.at+8 > len(data) || !bytes.Equal(data[a.at+8-len(b.key):a.at+8], b.key)) {
		return fmt.Errorf("append to topic %q: the Pebble batch does not hold the entry's key where expected (a Pebble version this build does not know)", topic)
	}
	if b.nextSeq != nil {
		a.seq, a.sequenced = b.nextSeq(topic, part), true
	}
	b.appends = append(b.appends, a)
	return nil
}

// Empty reports whether the batch holds no write at all.
func (b *Batch) Empty() bool { return b.b.Empty() && len(b.appends) == 0 && len(b.retain) == 0 }

// RetainLog keeps only the newest keep entries of a partition once this
// batch commits (retention), counting the batch's own appends. Offsets are
// never reused: readers simply start at the first entry that is left.
func (b *Batch) RetainLog(topic string, part uint32, keep uint64) {
	b.retain = append(b.retain, retention{tp{topic, part}, keep})
}

// PutOffset stages a consumer position.
func (b *Batch) PutOffset(group, source string, part uint32, pos Position) error {
	return b.b.Set(offsetKey(group, source, part), pos.encode(), nil)
}

// PutState stages an operator state write.
func (b *Batch) PutState(pipeline string, part uint32, key, value []byte) error {
	return b.b.Set(append(statePrefix(pipeline, part), key...), value, nil)
}

// DeleteState stages an operator state deletion.
func (b *Batch) DeleteState(pipeline string, part uint32, key []byte) error {
	return b.b.Delete(append(statePrefix(pipeline, part), key...), nil)
}

// SeqKind names a family of per-pipeline sequenced records.
type SeqKind byte

const (
	SeqTxn        SeqKind = tagTxn        // transaction decision records
	SeqCheckpoint SeqKind = tagCheckpoint // offset checkpoints
	SeqDeadLetter SeqKind = tagDeadLetter // dead-letter entries
	SeqVersion    SeqKind = tagVersion    // plugin versions
	SeqEventTime  SeqKind = tagEventTime  // event-time state, one record per kind (runtime numbers them)
)

// PutBlob stages content-addressed bytes (e.g. a plugin module by its hash).
func (b *Batch) PutBlob(hash string, data []byte) error {
	return b.b.Set(append([]byte{tagBlob}, hash...), data, nil)
}

// DeleteBlob stages the deletion of content-addressed bytes.
func (b *Batch) DeleteBlob(hash string) error {
	return b.b.Delete(append([]byte{tagBlob}, hash...), nil)
}

// PutSeq stages record id of a sequenced family.
func (b *Batch) PutSeq(kind SeqKind, pipeline string, id uint64, data []byte) error {
	return b.b.Set(seqKey(byte(kind), pipeline, id), data, nil)
}

// DeleteSeq stages the deletion of one record of a sequenced family.
func (b *Batch) DeleteSeq(kind SeqKind, pipeline string, id uint64) error {
	return b.b.Delete(seqKey(byte(kind), pipeline, id), nil)
}

// DeleteSeqBefore stages the deletion of every record of the family below id.
func (b *Batch) DeleteSeqBefore(kind SeqKind, pipeline string, id uint64) error {
	return b.b.DeleteRange(seqKey(byte(kind), pipeline, 0), seqKey(byte(kind), pipeline, id), nil)
}

// PutMeta stages pipeline metadata.
func (b *Batch) PutMeta(pipeline string, data []byte) error {
	return b.b.Set(metaKey(pipeline), data, nil)
}

// ErrClosed is returned when committing a closed batch.
var ErrClosed = errors.New("storage: batch already committed or closed")

// Commit assigns offsets to the staged appends, writes everything in one
// synced Pebble batch (unless SkipSync), and only then publishes the new
// high-water marks.
// It returns the first offset assigned per partition appended to.
func (db *DB) Commit(b *Batch) error {
	if b.b == nil {
		return ErrClosed
	}
	defer b.Close()
	if len(b.appends) == 0 && b.producer == "" && len(b.retain) == 0 {
		return db.guard(func() error { return db.pdb.Apply(b.b, b.syncOpt()) })
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if err := db.checkProducerLocked(b); err != nil {
		return err
	}
	next := map[tp]uint64{}
	db.mu.Lock()
	for _, a := range b.appends {
		if _, ok := next[a.tp]; !ok {
			next[a.tp] = db.durable[a.tp]
		}
	}
	db.mu.Unlock()
	data := b.b.Repr()
	db.batchSize.Store(int64(len(data)))
	for _, a := range b.appends {
		off := next[a.tp]
		next[a.tp] = off + 1
		binary.BigEndian.PutUint64(data[a.at:], off)
	}
	for t, n := range next {
		if err := b.b.Set(highWaterKey(t.topic, t.part), binary.LittleEndian.AppendUint64(nil, n), nil); err != nil {
			return err
		}
	}
	// After the appends, so that the range deletion also covers entries
	// this batch wrote.
	for _, r := range b.retain {
		end, ok := next[r.tp]
		if !ok {
			db.mu.Lock()
			end = db.durable[r.tp]
			db.mu.Unlock()
		}
		if end > r.keep {
			if err := b.b.DeleteRange(logKey(nil, r.tp.topic, r.tp.part, 0), logKey(nil, r.tp.topic, r.tp.part, end-r.keep), nil); err != nil {
				return err
			}
		}
	}
	if err := db.guard(func() error { return db.pdb.Apply(b.b, b.syncOpt()) }); err != nil {
		return fmt.Errorf("storage: commit: %w", err)
	}
	db.mu.Lock()
	for t, n := range next {
		db.durable[t] = n
	}
	if len(next) > 0 {
		close(db.changed)
		db.changed = make(chan struct{})
	}
	db.mu.Unlock()
	return nil
}
