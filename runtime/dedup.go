package runtime

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// DedupConfig configures message deduplication. Deduplication matters when
// message ids come from the data (IDField, IDHeader, or ids stored in the
// embedded log by a producer): ids derived from a record's position are
// unique by construction, and committed offsets already keep a position from
// being processed twice.
type DedupConfig struct {
	// Window is how long a message id is remembered. Default 5m (the seed's
	// advice: match the longest redelivery window).
	Window time.Duration
	// IDField takes the message id from this top-level JSON field of the
	// value: a UUID string is used as is, any other value is hashed into a
	// UUID (version 5). Records without the field keep their id.
	IDField string
	// IDHeader takes the message id from this record header, likewise.
	IDHeader string
	// CleanupEvery is how often expired ids are deleted. Default Window/10,
	// at least 1s.
	CleanupEvery time.Duration
	// Now is the clock for expiry (tests inject one). Default time.Now.
	Now func() time.Time
}

// dedupMetrics are the deduplicator's counters.
type dedupMetrics struct {
	Checked uint64
	Hits    uint64 // duplicates skipped
	Expired uint64 // ids deleted by CleanupExpired
}

// deduplicator skips records whose message id was seen within the
// window. Seen ids live in the data directory and are recorded in the same
// transaction as the outputs of their batch (it is a Participant), so a
// crash never leaves an id recorded without its output or the reverse.
// Memory holds only the ids of batches not yet committed.
type deduplicator struct {
	db       *storage.DB
	pipeline string
	cfg      DedupConfig

	mu                     sync.Mutex
	pending                map[[16]byte]int // processed, not yet committed (count of batches)
	checked, hits, expired atomic.Uint64
}

// newDeduplicator creates the deduplicator of pipeline.
func newDeduplicator(db *storage.DB, pipeline string, cfg DedupConfig) *deduplicator {
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.CleanupEvery == 0 {
		cfg.CleanupEvery = max(cfg.Window/10, time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &deduplicator{db: db, pipeline: pipeline, cfg: cfg, pending: map[[16]byte]int{}}
}

// Name implements Participant.
func (d *deduplicator) Name() string { return "dedup" }

var dedupNamespace = uuid.MustParse("6ba7b811-9dad-11d1-80b4-00c04fd430c8") // RFC 4122 URL namespace

// idFrom turns a field or header value into a message id.
func idFrom(v []byte) [16]byte {
	if u, err := uuid.ParseBytes(v); err == nil {
		return u
	}
	return uuid.NewSHA1(dedupNamespace, v)
}

// AssignIDs sets each record's id from the configured field or header.
func (d *deduplicator) AssignIDs(recs []abi.Record) {
	if d.cfg.IDField == "" && d.cfg.IDHeader == "" {
		return
	}
	for i := range recs {
		r := &recs[i]
		if d.cfg.IDHeader != "" {
			for _, h := range r.Headers {
				if string(h.Key) == d.cfg.IDHeader {
					r.ID = idFrom(h.Value)
				}
			}
		}
		if d.cfg.IDField != "" {
			var obj map[string]json.RawMessage
			if json.Unmarshal(r.Value, &obj) != nil {
				continue
			}
			raw, ok := obj[d.cfg.IDField]
			if !ok {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) == nil {
				r.ID = idFrom([]byte(s))
			} else {
				r.ID = idFrom(raw)
			}
		}
	}
}

// CheckAndRecord reports whether id is a duplicate (seen within the window,
// committed or pending); if not, it records id as pending.
//
// The id is marked pending before the store is read, so that two
// partitions reading the same id at once cannot both find it absent: one
// finds the other's mark. A transaction releases its marks only after its
// ids are in the store, so an id is always in one or the other.
func (d *deduplicator) CheckAndRecord(id [16]byte) (bool, error) {
	d.checked.Add(1)
	d.mu.Lock()
	if d.pending[id] > 0 {
		d.mu.Unlock()
		d.hits.Add(1)
		return true, nil
	}
	d.pending[id]++
	d.mu.Unlock()
	expiry, found, err := d.db.GetDedup(d.pipeline, id)
	if err == nil && !(found && expiry > d.cfg.Now().UnixNano()) {
		return false, nil
	}
	d.release([]seenID{{id: id}})
	if err != nil {
		return false, err
	}
	d.hits.Add(1)
	return true, nil
}

// Filter drops the duplicates from recs (in place) and returns the kept
// records and their ids.
func (d *deduplicator) Filter(recs []abi.Record) ([]abi.Record, [][16]byte, error) {
	kept := recs[:0]
	var ids [][16]byte
	for _, r := range recs {
		dup, err := d.CheckAndRecord(r.ID)
		if err != nil {
			for _, id := range ids {
				d.release([]seenID{{id: id}})
			}
			return nil, nil, err
		}
		if !dup {
			kept = append(kept, r)
			ids = append(ids, r.ID)
		}
	}
	return kept, ids, nil
}

// write remembers ids in b, until the window ends.
func (d *deduplicator) write(b *storage.Batch, ids []seenID) error {
	expiry := d.expiry()
	for _, s := range ids {
		if err := b.PutDedup(d.pipeline, s.id, expiry); err != nil {
			return err
		}
	}
	return nil
}

// releaseIDs drops the pending marks of ids, the message ids of a batch of
// part that will not commit (abandoned before its hand-over, or dropped).
func (p *Pipeline) releaseIDs(part uint32, ids [][16]byte) {
	if p.dedup == nil || len(ids) == 0 {
		return
	}
	s := make([]seenID, len(ids))
	for i, id := range ids {
		s[i] = seenID{part, id}
	}
	p.dedup.release(s)
}

// release drops ids from the pending set once their transaction committed
// (they are in the store) or aborted.
func (d *deduplicator) release(ids []seenID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range ids {
		if d.pending[s.id]--; d.pending[s.id] <= 0 {
			delete(d.pending, s.id)
		}
	}
}

// expiry is when an id remembered now expires (Unix nanoseconds).
func (d *deduplicator) expiry() int64 { return d.cfg.Now().Add(d.cfg.Window).UnixNano() }

// CleanupExpired deletes expired ids, in synced batches of 10,000 that do
// not wait for (or block) the pipeline's commits, and returns how many.
func (d *deduplicator) CleanupExpired(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := d.db.ExpireDedup(d.pipeline, d.cfg.Now().UnixNano(), 10_000)
		total += n
		d.expired.Add(uint64(n))
		if err != nil || n < 10_000 {
			return total, err
		}
	}
	return total, ctx.Err()
}

// runCleanup calls CleanupExpired every CleanupEvery until ctx ends.
func (d *deduplicator) runCleanup(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(d.cfg.CleanupEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.CleanupExpired(ctx); err != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}

// Metrics returns the deduplicator's counters.
func (d *deduplicator) Metrics() dedupMetrics {
	return dedupMetrics{Checked: d.checked.Load(), Hits: d.hits.Load(), Expired: d.expired.Load()}
}
