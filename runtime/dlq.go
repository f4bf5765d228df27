package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/heliosdb/helios-wasm/storage"
)

// DLQEntry is a record that could not be processed, with why and where.
type DLQEntry struct {
	ID           uint64            `json:"id"`
	MessageID    string            `json:"message_id"`
	Key          []byte            `json:"key,omitempty"`
	Value        []byte            `json:"value"`
	Headers      []byte            `json:"headers,omitempty"` // encoded headers block
	Timestamp    int64             `json:"timestamp,omitempty"`
	Source       string            `json:"source"`
	Partition    uint32            `json:"partition"`
	Offset       int64             `json:"offset"`
	Line         int64             `json:"line,omitempty"` // 1-based, for line-oriented sources
	Error        string            `json:"error"`
	Code         uint32            `json:"code"` // abi.Fail* (guest or host assigned)
	RetryCount   int               `json:"retry_count"`
	Plugin       string            `json:"plugin"`
	PluginHash   string            `json:"plugin_hash"`
	Pipeline     string            `json:"pipeline"`
	FirstFailure time.Time         `json:"first_failure"`
	LastFailure  time.Time         `json:"last_failure"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// messageID renders a 16-byte id as a UUID string.
func messageID(id [16]byte) string { return uuid.UUID(id).String() }

// dlqConfig configures a DeadLetterQueue.
type dlqConfig struct {
	// Max bounds the entries kept (Config.DeadLetterMax). A batch needing
	// more than Max entries can never fit: it is an error in bounded and
	// following runs alike. Default 10,000.
	Max int
}

// dlqMetrics are the queue's counters.
type dlqMetrics struct {
	Size    int
	Added   uint64
	Removed uint64
	Full    bool // a pipeline is paused waiting for room
}

// DeadLetterQueue keeps a pipeline's failed records in the data directory.
// A record enters the queue in the same transaction as the outputs of its
// batch (effects.dead), so each input ends up exactly
// once in the output or in the queue.
type DeadLetterQueue struct {
	db       *storage.DB
	pipeline string
	cfg      dlqConfig

	mu       sync.Mutex
	size     int    // committed entries
	reserved int    // entries of processed batches not yet committed
	nextID   uint64 // next entry id
	m        dlqMetrics
	room     chan struct{} // closed when entries leave the queue
}

// NewDeadLetterQueue opens pipeline's queue, to read it (List, Get) or
// purge it while the pipeline is not running.
func NewDeadLetterQueue(db *storage.DB, pipeline string) (*DeadLetterQueue, error) {
	return newDeadLetterQueue(db, pipeline, dlqConfig{})
}

// newDeadLetterQueue opens pipeline's queue with its bound.
func newDeadLetterQueue(db *storage.DB, pipeline string, cfg dlqConfig) (*DeadLetterQueue, error) {
	if cfg.Max == 0 {
		cfg.Max = DefaultDeadLetterMax
	}
	if cfg.Max < 0 {
		return nil, fmt.Errorf("dead-letter queue: max %d is negative", cfg.Max)
	}
	q := &DeadLetterQueue{db: db, pipeline: pipeline, cfg: cfg, room: make(chan struct{})}
	err := db.ListSeq(storage.SeqDeadLetter, pipeline, func(id uint64, _ []byte) error {
		q.size++
		q.nextID = id + 1
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dead-letter queue of %s: %w", pipeline, err)
	}
	q.m.Size = q.size
	return q, nil
}

// Max is the configured bound.
func (q *DeadLetterQueue) Max() int { return q.cfg.Max }

// dlqFullError details ErrDLQFull.
type dlqFullError struct {
	Pipeline  string
	Committed int // entries in the queue
	Reserved  int // entries of processed batches not yet committed
	Needed    int // entries the batch needs
	Max       int
}

func (e *dlqFullError) Error() string {
	if e.Needed > e.Max {
		return fmt.Sprintf("pipeline %s: %v: one batch needs %d entries, more than the queue's max of %d, so it can never fit: "+
			"raise the max (or make batches smaller) and run again; everything before this batch is committed",
			e.Pipeline, ErrDLQFull, e.Needed, e.Max)
	}
	return fmt.Sprintf("pipeline %s: %v: %d entries committed and %d reserved by batches not yet committed, max %d; "+
		"the next batch needs %d more: inspect the queue (dlq list), then dlq retry or dlq purge (also while the pipeline runs), "+
		"or raise the max, and run again; everything before this batch is committed",
		e.Pipeline, ErrDLQFull, e.Committed, e.Reserved, e.Max, e.Needed)
}

func (e *dlqFullError) Unwrap() error { return ErrDLQFull }

// Reserve holds room for n more entries until the transaction that adds
// them commits or aborts (or Release). When they do not fit it returns a
// *DLQFullError, unless wait is set and they could fit (n <= Max): then it
// calls onFull once and waits until entries leave the queue, or ctx ends.
func (q *DeadLetterQueue) Reserve(ctx context.Context, n int, wait bool, onFull func(*dlqFullError)) error {
	if n == 0 {
		return nil
	}
	warned := false
	for {
		q.mu.Lock()
		if q.size+q.reserved+n <= q.cfg.Max {
			q.reserved += n
			q.m.Full = false
			q.mu.Unlock()
			return nil
		}
		full := &dlqFullError{Pipeline: q.pipeline, Committed: q.size, Reserved: q.reserved, Needed: n, Max: q.cfg.Max}
		if !wait || n > q.cfg.Max {
			q.mu.Unlock()
			return full
		}
		q.m.Full = true
		room := q.room
		q.mu.Unlock()
		if !warned && onFull != nil {
			onFull(full)
			warned = true
		}
		select {
		case <-room:
		case <-ctx.Done():
			q.mu.Lock()
			q.m.Full = false
			q.mu.Unlock()
			return fmt.Errorf("%w: %w", full, ctx.Err())
		}
	}
}

// Release gives back room reserved for n entries that will not be staged
// (a batch abandoned when the pipeline stops).
func (q *DeadLetterQueue) Release(n int) {
	if q == nil || n == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reserved = max(0, q.reserved-n)
	q.signalRoom()
}

// signalRoom wakes the reservations waiting for room; q.mu is held.
func (q *DeadLetterQueue) signalRoom() {
	close(q.room)
	q.room = make(chan struct{})
}

// write adds e's new entries (numbered after the last committed one; their
// room was reserved), removals and rewrites to b.
func (q *DeadLetterQueue) write(b *storage.Batch, e *effects) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now().UTC()
	for i := range e.dead {
		d := &e.dead[i]
		d.ID = q.nextID + uint64(i)
		d.Pipeline = q.pipeline
		if d.FirstFailure.IsZero() {
			d.FirstFailure = now
		}
		d.LastFailure = now
		if err := q.put(b, d); err != nil {
			return err
		}
	}
	for _, id := range e.deadRemoved {
		if err := b.DeleteSeq(storage.SeqDeadLetter, q.pipeline, id); err != nil {
			return err
		}
	}
	for i := range e.deadUpdated {
		d := e.deadUpdated[i]
		d.LastFailure = now
		if err := q.put(b, &d); err != nil {
			return err
		}
	}
	return nil
}

// put stores entry e in b.
func (q *DeadLetterQueue) put(b *storage.Batch, e *DLQEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.PutSeq(storage.SeqDeadLetter, q.pipeline, e.ID, data)
}

// committed counts a committed transaction's added and removed entries.
func (q *DeadLetterQueue) committed(added, removed int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nextID += uint64(added)
	q.size += added - removed
	q.reserved = max(0, q.reserved-added)
	q.m.Added += uint64(added)
	q.m.Removed += uint64(removed)
	q.m.Size = q.size
	if removed > 0 {
		q.signalRoom()
	}
}

// aborted gives back the room an aborted transaction's entries held.
func (q *DeadLetterQueue) aborted(added int) {
	if added == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reserved = max(0, q.reserved-added)
	q.signalRoom()
}

// Reserved is the number of entries held for batches not yet committed.
func (q *DeadLetterQueue) Reserved() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.reserved
}

// Size is the number of committed entries.
func (q *DeadLetterQueue) Size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size
}

// metrics returns the queue's counters.
func (q *DeadLetterQueue) metrics() dlqMetrics {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.m
}

// List calls fn for every entry, oldest first.
func (q *DeadLetterQueue) List(fn func(DLQEntry) error) error {
	return q.db.ListSeq(storage.SeqDeadLetter, q.pipeline, func(_ uint64, data []byte) error {
		var e DLQEntry
		if err := json.Unmarshal(data, &e); err != nil {
			return err
		}
		return fn(e)
	})
}

// Get returns entry id.
func (q *DeadLetterQueue) Get(id uint64) (DLQEntry, error) {
	data, found, err := q.db.GetSeq(storage.SeqDeadLetter, q.pipeline, id)
	if err != nil {
		return DLQEntry{}, err
	}
	if !found {
		return DLQEntry{}, fmt.Errorf("pipeline %s: entry %d: %w", q.pipeline, id, ErrNoEntry)
	}
	var e DLQEntry
	return e, json.Unmarshal(data, &e)
}

// Purge deletes the given entries (all when ids is empty) in a transaction
// of the pipeline, and returns how many were deleted. The pipeline must not
// be running (a running one purges with Pipeline.PurgeDeadLetters).
func (q *DeadLetterQueue) Purge(ctx context.Context, ids []uint64) (int, error) {
	c := newCoordinator(q.db, q.pipeline, coordinatorConfig{}, &parties{dlq: q})
	if _, err := c.Recover(ctx); err != nil {
		return 0, err
	}
	return q.purge(ctx, c, ids)
}

// purge deletes entries in a transaction of c.
func (q *DeadLetterQueue) purge(ctx context.Context, c *coordinator, ids []uint64) (int, error) {
	if len(ids) == 0 {
		if err := q.List(func(e DLQEntry) error { ids = append(ids, e.ID); return nil }); err != nil {
			return 0, err
		}
	}
	ids = uniqueIDs(ids)
	for _, id := range ids {
		if _, err := q.Get(id); err != nil {
			return 0, err
		}
	}
	txn, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	txn.effects.deadRemoved = ids
	return len(ids), c.Commit(ctx, txn)
}

// uniqueIDs returns ids without repeats, in their first order: an entry
// named twice is retried or purged once (retried twice, its outputs were
// written twice, and the queue's size counted it removed twice).
func uniqueIDs(ids []uint64) []uint64 {
	seen := make(map[uint64]bool, len(ids))
	out := make([]uint64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
