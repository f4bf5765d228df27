package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Batch collects writes that commit atomically and durably. Log appends get
// their offsets at commit time.
type Batch struct {
	db   *DB
	b    *pebble.Batch
	runs []appendRun // the log appends, in runs of one partition
	// at is where each append's offset, the last 8 bytes of its key, lies
	// in the Pebble batch's data, in append order: Commit writes it there.
	at       []int
	key      []byte // scratch
	topic    string // the topic last appended to, and its partition count
	parts    uint32
	producer string // set by SetProducer
	epoch    uint64
	reserve  func(topic string, part uint32, n uint64) uint64 // set by SequenceAppends
	retain   []retention
	noSync   bool // set by SkipSync
	dedup    bool // holds message ids: commits under commitMu (ExpireDedup)
}

// SkipSync marks the batch as a cache of state kept durably elsewhere (a
// Kafka transaction that already committed it): Commit does not wait for
// the disk, and a crash may lose the batch, which its owner rebuilds. A
// batch that appends to a log is synced anyway: readers never see past
// what is durable.
func (b *Batch) SkipSync() { b.noSync = true }

// syncOpt is how b commits.
func (b *Batch) syncOpt() *pebble.WriteOptions {
	if b.noSync && len(b.runs) == 0 {
		return pebble.NoSync
	}
	return pebble.Sync
}

type retention struct {
	tp   tp
	keep uint64
}

// appendRun is consecutive appends to one partition, b.at[start:end]. The
// batch's work at commit (offsets, sequence checks) is per run, not per
// entry: a transaction appends thousands of entries in a few runs.
type appendRun struct {
	tp         tp
	start, end int
	seq        uint64 // sequence number of the run's first entry, when sequenced
	sequenced  bool
}

// NewBatch starts an empty batch.
func (db *DB) NewBatch() *Batch {
	// Sized as the last batch that appended, with room to spare: a
	// transaction's batch holds megabytes, which growing by doubling would
	// copy several times.
	size := db.batchSize.Load()
	return &Batch{db: db, b: db.pdb.NewBatchWithSize(int(size + size/8))}
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
	return b.AppendN(topic, part, 1, func(int) *Entry { return e })
}

// AppendN stages n log entries for topic/part, entry(i) giving the i-th (it
// may reuse one Entry: each is encoded before the next is asked for). It is
// n Appends at the cost of one for the batch's bookkeeping.
func (b *Batch) AppendN(topic string, part uint32, n int, entry func(i int) *Entry) error {
	if n <= 0 {
		return nil
	}
	var seq uint64
	if b.reserve != nil {
		if err := b.checkPartition(topic, part); err != nil {
			return err
		}
		seq = b.reserve(topic, part, uint64(n))
	}
	return b.appendRun(topic, part, n, entry, seq, b.reserve != nil)
}

// checkPartition reports a topic or partition that does not exist.
func (b *Batch) checkPartition(topic string, part uint32) error {
	if topic != b.topic || b.parts == 0 {
		b.db.mu.Lock()
		parts, ok := b.db.topics[topic]
		b.db.mu.Unlock()
		if !ok {
			return fmt.Errorf("append to topic %q: %w", topic, ErrNoTopic)
		}
		b.topic, b.parts = topic, parts
	}
	if part >= b.parts {
		return fmt.Errorf("append to topic %q: partition %d out of range (%d partitions)", topic, part, b.parts)
	}
	return nil
}

// appendRun stages n entries for topic/part, numbered from seq when
// sequenced.
func (b *Batch) appendRun(topic string, part uint32, n int, entry func(i int) *Entry, seq uint64, sequenced bool) error {
	if err := b.checkPartition(topic, part); err != nil {
		return err
	}
	t := tp{topic, part}
	// A run continues the last one when nothing tells them apart.
	r := len(b.runs) - 1
	if r < 0 || b.runs[r].tp != t || b.runs[r].sequenced != sequenced ||
		sequenced && b.runs[r].seq+uint64(b.runs[r].end-b.runs[r].start) != seq {
		b.runs = append(b.runs, appendRun{tp: t, start: len(b.at), end: len(b.at), seq: seq, sequenced: sequenced})
		r++
	}
	b.at = slices.Grow(b.at, n)
	// Each entry goes into the Pebble batch now, encoded in place (its one
	// copy, made outside the commit lock), under its key with offset 0:
	// Commit writes the offset into the key.
	b.key = logKey(b.key[:0], topic, part, 0)
	for i := range n {
		e := entry(i)
		op := b.b.SetDeferred(len(b.key), entrySize(e))
		copy(op.Key, b.key)
		putEntry(op.Value, e)
		if err := op.Finish(); err != nil {
			return err
		}
		// op.Key is a slice of the batch's data: its capacity runs to the
		// end of the data's, which gives its position (checked on a batch's
		// first append, the layout being the same for all: Commit writes
		// there).
		data := b.b.Repr()
		at := cap(data) - cap(op.Key) + len(op.Key) - 8
		if len(b.at) == 0 && (at < 0 || at+8 > len(data) || !bytes.Equal(data[at+8-len(b.key):at+8], b.key)) {
			return fmt.Errorf("append to topic %q: the Pebble batch does not hold the entry's key where expected (a Pebble version this build does not know)", topic)
		}
		b.at = append(b.at, at)
		b.runs[r].end++
	}
	return nil
}

// Empty reports whether the batch holds no write at all.
func (b *Batch) Empty() bool { return b.b.Empty() && len(b.runs) == 0 && len(b.retain) == 0 }

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
	if len(b.runs) == 0 && b.producer == "" && len(b.retain) == 0 && !b.dedup {
		return db.guard(func() error { return db.pdb.Apply(b.b, b.syncOpt()) })
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	if err := db.checkProducerLocked(b); err != nil {
		return err
	}
	next := map[tp]uint64{}
	db.mu.Lock()
	for _, r := range b.runs {
		if _, ok := next[r.tp]; !ok {
			next[r.tp] = db.durable[r.tp]
		}
	}
	db.mu.Unlock()
	data := b.b.Repr()
	for _, r := range b.runs {
		off := next[r.tp]
		for _, at := range b.at[r.start:r.end] {
			binary.BigEndian.PutUint64(data[at:], off)
			off++
		}
		next[r.tp] = off
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
	if len(b.runs) > 0 {
		db.batchSize.Store(int64(len(b.b.Repr())))
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
