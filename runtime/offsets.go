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

// Checkpoint is a snapshot of every partition's committed position.
type Checkpoint struct {
	ID      uint64              `json:"id"`
	TxnID   uint64              `json:"txn"`
	Time    time.Time           `json:"time"`
	Offsets map[uint32]Position `json:"offsets"`
}

// OffsetConfig configures an OffsetManager.
type OffsetConfig struct {
	// CheckpointEvery writes a checkpoint after this many records.
	// Default 10,000 (the seed advises 1,000-10,000).
	CheckpointEvery int64
	// KeepCheckpoints is how many checkpoints CleanupOldCheckpoints keeps by
	// default, and how many are kept automatically. Default 10.
	KeepCheckpoints int
}

// OffsetManager stages source positions in transactions and keeps
// checkpoints. It is a Participant: staged positions commit atomically with
// the outputs they produced.
type OffsetManager struct {
	db     *storage.DB
	group  string // the pipeline name
	source string // the source's identity
	cfg    OffsetConfig

	mu          sync.Mutex
	committed   map[uint32]Position
	staged      map[uint64]map[uint32]Position // txn id -> positions
	sinceCkpt   int64
	nextCkpt    uint64
	pendingCkpt map[uint64]uint64 // txn id -> checkpoint id written by it
}

// NewOffsetManager loads group's committed positions in source.
func NewOffsetManager(db *storage.DB, group, source string, partitions uint32, cfg OffsetConfig) (*OffsetManager, error) {
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = 10_000
	}
	if cfg.KeepCheckpoints == 0 {
		cfg.KeepCheckpoints = 10
	}
	m := &OffsetManager{db: db, group: group, source: source, cfg: cfg,
		committed: map[uint32]Position{}, staged: map[uint64]map[uint32]Position{}, pendingCkpt: map[uint64]uint64{}}
	for p := uint32(0); p < partitions; p++ {
		pos, found, err := db.GetOffset(group, source, p)
		if err != nil {
			return nil, fmt.Errorf("offsets of %s in %s partition %d: %w", group, source, p, err)
		}
		if found {
			m.committed[p] = pos
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

// Name implements Participant.
func (m *OffsetManager) Name() string { return "offsets" }

// Committed returns partition's committed position.
func (m *OffsetManager) Committed(part uint32) (Position, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.committed[part]
	return p, ok
}

// StageOffset records that txn consumed partition up to pos (exclusive) and
// n more records.
func (m *OffsetManager) StageOffset(txn *Txn, part uint32, pos Position, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.staged[txn.ID()]
	if s == nil {
		s = map[uint32]Position{}
		m.staged[txn.ID()] = s
	}
	s[part] = pos
	m.sinceCkpt += int64(n)
}

// Prepare implements Participant: staged positions join the decision batch,
// with a checkpoint when CheckpointEvery records have passed.
func (m *OffsetManager) Prepare(_ context.Context, txn *Txn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for part, pos := range m.staged[txn.ID()] {
		if err := txn.Batch().PutOffset(m.group, m.source, part, pos); err != nil {
			return err
		}
	}
	if m.sinceCkpt >= m.cfg.CheckpointEvery {
		if err := m.stageCheckpoint(txn); err != nil {
			return err
		}
		m.sinceCkpt = 0
	}
	return nil
}

func (m *OffsetManager) stageCheckpoint(txn *Txn) error {
	offs := make(map[uint32]Position, len(m.committed))
	for p, pos := range m.committed {
		offs[p] = pos
	}
	for p, pos := range m.staged[txn.ID()] {
		offs[p] = pos
	}
	id := m.nextCkpt
	b, err := json.Marshal(Checkpoint{ID: id, TxnID: txn.ID(), Time: time.Now().UTC(), Offsets: offs})
	if err != nil {
		return err
	}
	if err := txn.Batch().PutSeq(storage.SeqCheckpoint, m.group, id, b); err != nil {
		return err
	}
	if keep := uint64(m.cfg.KeepCheckpoints); id >= keep {
		if err := txn.Batch().DeleteSeqBefore(storage.SeqCheckpoint, m.group, id-keep+1); err != nil {
			return err
		}
	}
	m.nextCkpt++
	m.pendingCkpt[txn.ID()] = id
	return nil
}

// Commit implements Participant.
func (m *OffsetManager) Commit(_ context.Context, txn *Txn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, pos := range m.staged[txn.ID()] {
		m.committed[p] = pos
	}
	delete(m.staged, txn.ID())
	delete(m.pendingCkpt, txn.ID())
	return nil
}

// Abort implements Participant.
func (m *OffsetManager) Abort(_ context.Context, txn *Txn) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.staged, txn.ID())
	if _, ok := m.pendingCkpt[txn.ID()]; ok {
		m.nextCkpt--
		delete(m.pendingCkpt, txn.ID())
	}
	return nil
}

// CreateCheckpoint writes a checkpoint of the committed positions now, in a
// transaction of its own.
func (m *OffsetManager) CreateCheckpoint(ctx context.Context, c *TransactionCoordinator) (uint64, error) {
	txn, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	err = m.stageCheckpoint(txn)
	id := m.nextCkpt - 1
	m.mu.Unlock()
	if err != nil {
		c.Abort(ctx, txn)
		return 0, err
	}
	return id, c.Commit(ctx, txn)
}

// RecoverFromCheckpoint returns the latest checkpoint, or nil if none.
func (m *OffsetManager) RecoverFromCheckpoint() (*Checkpoint, error) {
	_, data, found, err := m.db.LatestSeq(storage.SeqCheckpoint, m.group)
	if err != nil || !found {
		return nil, err
	}
	var c Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("checkpoint of %s is corrupt: %w", m.group, err)
	}
	return &c, nil
}

// Checkpoints lists the kept checkpoints, oldest first.
func (m *OffsetManager) Checkpoints() ([]Checkpoint, error) {
	var out []Checkpoint
	err := m.db.ListSeq(storage.SeqCheckpoint, m.group, func(_ uint64, data []byte) error {
		var c Checkpoint
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// CleanupOldCheckpoints deletes all but the newest keep checkpoints.
func (m *OffsetManager) CleanupOldCheckpoints(keep int) error {
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
