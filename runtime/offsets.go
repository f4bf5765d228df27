package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/heliosdb/helios-wasm/storage"
)

// Position is a place in a source (see storage.Position).
type Position = storage.Position

// checkpointRecord is a snapshot of every partition's committed position.
type checkpointRecord struct {
	ID      uint64              `json:"id"`
	TxnID   uint64              `json:"txn"`
	Time    time.Time           `json:"time"`
	Offsets map[uint32]Position `json:"offsets"`
}

// offsetConfig configures an OffsetManager.
type offsetConfig struct {
	// CheckpointEvery writes a checkpoint after this many records.
	// Default 10,000 (the seed advises 1,000-10,000).
	CheckpointEvery int64
	// KeepCheckpoints is how many checkpoints CleanupOldCheckpoints keeps by
	// default, and how many are kept automatically. Default 10.
	KeepCheckpoints int
}

// offsetManager keeps a pipeline's committed source positions and its
// checkpoints. Positions commit in the transaction of the outputs they
// produced (effects.offsets).
type offsetManager struct {
	db     *storage.DB
	group  string // the pipeline name
	source string // the source's identity
	cfg    offsetConfig

	mu        sync.Mutex
	pos       map[uint32]Position // committed, per partition
	sinceCkpt int64               // records committed since the last checkpoint
	nextCkpt  uint64              // id of the next checkpoint
}

// newOffsetManager loads group's committed positions in source.
func newOffsetManager(db *storage.DB, group, source string, partitions uint32, cfg offsetConfig) (*offsetManager, error) {
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.KeepCheckpoints == 0 {
		cfg.KeepCheckpoints = DefaultKeepCheckpoints
	}
	m := &offsetManager{db: db, group: group, source: source, cfg: cfg, pos: map[uint32]Position{}}
	for p := uint32(0); p < partitions; p++ {
		pos, found, err := db.GetOffset(group, source, p)
		if err != nil {
			return nil, fmt.Errorf("offsets of %s in %s partition %d: %w", group, source, p, err)
		}
		if found {
			m.pos[p] = pos
		}
	}
	id, _, found, err := db.LatestSeq(storage.SeqCheckpoint, group)
	if err != nil {
		return nil, err
	}
	if found {
		m.nextCkpt = id + 1
	}
	return m, nil
}

// Committed returns partition's committed position.
func (m *offsetManager) Committed(part uint32) (Position, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pos[part]
	return p, ok
}

// write adds e's positions to b, with a checkpoint when e asks for one or
// CheckpointEvery records have passed, and reports whether it added one.
// Transactions commit one at a time, so the checkpoint id and count are
// those of the last commit.
func (m *offsetManager) write(b *storage.Batch, txn uint64, e *effects) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range e.offsets {
		if err := b.PutOffset(m.group, m.source, o.part, o.pos); err != nil {
			return false, err
		}
	}
	if !e.checkpoint && m.sinceCkpt+int64(e.consumed) < m.cfg.CheckpointEvery {
		return false, nil
	}
	offs := make(map[uint32]Position, len(m.pos))
	for p, pos := range m.pos {
		offs[p] = pos
	}
	for _, o := range e.offsets {
		offs[o.part] = o.pos
	}
	id := m.nextCkpt
	data, err := json.Marshal(checkpointRecord{ID: id, TxnID: txn, Time: time.Now().UTC(), Offsets: offs})
	if err != nil {
		return false, err
	}
	if err := b.PutSeq(storage.SeqCheckpoint, m.group, id, data); err != nil {
		return false, err
	}
	if keep := uint64(m.cfg.KeepCheckpoints); id >= keep {
		if err := b.DeleteSeqBefore(storage.SeqCheckpoint, m.group, id-keep+1); err != nil {
			return false, err
		}
	}
	return true, nil
}

// committed takes in the positions of a committed transaction.
func (m *offsetManager) committed(e *effects, checkpointed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range e.offsets {
		m.pos[o.part] = o.pos
	}
	if checkpointed {
		m.nextCkpt++
		m.sinceCkpt = 0
	} else {
		m.sinceCkpt += int64(e.consumed)
	}
}

// CreateCheckpoint writes a checkpoint of the committed positions now, in a
// transaction of its own, and returns its id.
func (m *offsetManager) CreateCheckpoint(ctx context.Context, c *coordinator) (uint64, error) {
	txn, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	txn.effects.checkpoint = true
	m.mu.Lock()
	id := m.nextCkpt
	m.mu.Unlock()
	return id, c.Commit(ctx, txn)
}

// RecoverFromCheckpoint returns the latest checkpoint, or nil if none.
func (m *offsetManager) RecoverFromCheckpoint() (*checkpointRecord, error) {
	_, data, found, err := m.db.LatestSeq(storage.SeqCheckpoint, m.group)
	if err != nil || !found {
		return nil, err
	}
	var c checkpointRecord
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("checkpoint of %s is corrupt: %w", m.group, err)
	}
	return &c, nil
}

// Checkpoints lists the kept checkpoints, oldest first.
func (m *offsetManager) Checkpoints() ([]checkpointRecord, error) {
	var out []checkpointRecord
	err := m.db.ListSeq(storage.SeqCheckpoint, m.group, func(_ uint64, data []byte) error {
		var c checkpointRecord
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// CleanupOldCheckpoints deletes all but the newest keep checkpoints.
func (m *offsetManager) CleanupOldCheckpoints(keep int) error {
	id, _, found, err := m.db.LatestSeq(storage.SeqCheckpoint, m.group)
	if err != nil || !found || uint64(keep) > id {
		return err
	}
	b := m.db.NewBatch()
	if err := b.DeleteSeqBefore(storage.SeqCheckpoint, m.group, id-uint64(keep)+1); err != nil {
		b.Close()
		return err
	}
	return m.db.Commit(b)
}
