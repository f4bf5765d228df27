package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/heliosdb/helios-wasm/internal/crashpoint"
	"github.com/heliosdb/helios-wasm/storage"
)

// TxnState is a transaction's place in the two-phase commit protocol:
//
//	Active -> Preparing -> Prepared -> Committing -> Committed
//	   |          |           |
//	   +----------+-> Aborting -> Aborted
//	   +----------+-----------+-> TimedOut (then aborted)
type TxnState int

const (
	TxnActive TxnState = iota
	TxnPreparing
	TxnPrepared
	TxnCommitting
	TxnCommitted
	TxnAborting
	TxnAborted
	TxnTimedOut
)

var txnStateNames = [...]string{"active", "preparing", "prepared", "committing", "committed", "aborting", "aborted", "timed-out"}

func (s TxnState) String() string {
	if int(s) < len(txnStateNames) {
		return txnStateNames[s]
	}
	return fmt.Sprintf("TxnState(%d)", int(s))
}

// Errors of the commit path. ErrIndeterminate is not a failure: the decision
// may or may not be durable, and only a restart (which re-reads the store)
// can tell; the pipeline must stop rather than continue.
var (
	ErrPrepareFailed = errors.New("transaction prepare failed")
	ErrTxnTimedOut   = errors.New("transaction timed out")
	ErrIndeterminate = errors.New("transaction outcome indeterminate")
	ErrTxnFinished   = errors.New("transaction already finished")
)

// Participant takes part in every transaction of a coordinator.
//
// Prepare makes the participant's staged changes durable but not yet
// visible. A participant that lives in the data directory adds its writes to
// txn.Batch(), which commits atomically with the decision record; one that
// lives elsewhere (a file) writes and syncs there, and records in
// txn.SetData what recovery needs to roll forward or back.
// Commit (phase 2) makes the changes visible; it must be idempotent.
// Abort discards them; it must be idempotent.
type Participant interface {
	Name() string
	Prepare(ctx context.Context, txn *Txn) error
	Commit(ctx context.Context, txn *Txn) error
	Abort(ctx context.Context, txn *Txn) error
}

// Recoverer is implemented by participants that must reconcile themselves
// with the last durable decision on start (for example, truncating a file to
// its committed length). d is nil when the pipeline has never committed.
type Recoverer interface {
	Recover(ctx context.Context, d *Decision) error
}

// Decision is the durable record of a committed transaction.
type Decision struct {
	TxnID      uint64                     `json:"txn"`
	Time       time.Time                  `json:"time"`
	PluginHash string                     `json:"plugin,omitempty"`
	Records    int64                      `json:"records"`
	Data       map[string]json.RawMessage `json:"data,omitempty"` // per participant
}

// Txn is one transaction. It is used by one goroutine at a time.
type Txn struct {
	id       uint64
	state    TxnState
	started  time.Time
	deadline time.Time
	batch    *storage.Batch
	decision Decision
}

// ID is the transaction id, increasing per pipeline.
func (t *Txn) ID() uint64 { return t.id }

// State is the transaction's current state.
func (t *Txn) State() TxnState { return t.state }

// Batch is the storage batch that commits atomically with the decision.
func (t *Txn) Batch() *storage.Batch { return t.batch }

// SetData records participant data in the decision record.
func (t *Txn) SetData(participant string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if t.decision.Data == nil {
		t.decision.Data = map[string]json.RawMessage{}
	}
	t.decision.Data[participant] = b
	return nil
}

// SetPluginHash records which plugin version produced this transaction.
func (t *Txn) SetPluginHash(h string) { t.decision.PluginHash = h }

// AddRecords counts input records in the transaction.
func (t *Txn) AddRecords(n int) { t.decision.Records += int64(n) }

// CoordinatorConfig configures a TransactionCoordinator.
type CoordinatorConfig struct {
	// Timeout bounds a transaction from Begin to its decision. It must
	// exceed the worst batch processing plus commit time. Default 30s.
	Timeout time.Duration
	// KeepDecisions is how many decision records are kept. Default 1000.
	KeepDecisions int
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
}

// CoordinatorMetrics are the coordinator's counters.
type CoordinatorMetrics struct {
	Total           uint64
	Committed       uint64
	Aborted         uint64
	TimedOut        uint64
	PrepareFailures uint64
	AvgCommitTime   time.Duration
	LastTxnID       uint64
}

// TransactionCoordinator runs two-phase commit for one pipeline.
type TransactionCoordinator struct {
	db       *storage.DB
	pipeline string
	cfg      CoordinatorConfig

	mu           sync.Mutex
	participants []Participant
	nextID       uint64
	carried      map[string]json.RawMessage // last decided data per participant
	recovered    bool
	m            CoordinatorMetrics
	commitTotal  time.Duration
}

// NewTransactionCoordinator creates a coordinator for pipeline in db.
func NewTransactionCoordinator(db *storage.DB, pipeline string, cfg CoordinatorConfig) *TransactionCoordinator {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.KeepDecisions == 0 {
		cfg.KeepDecisions = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &TransactionCoordinator{db: db, pipeline: pipeline, cfg: cfg}
}

// RegisterParticipant adds p to every future transaction. Register all
// participants before Recover.
func (c *TransactionCoordinator) RegisterParticipant(p Participant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.participants = append(c.participants, p)
}

// Recover reads the last decision and lets every participant reconcile with
// it. A pipeline that never committed gets an empty transaction 0 committed
// first, so that every later crash finds a decision to return to.
func (c *TransactionCoordinator) Recover(ctx context.Context) (*Decision, error) {
	id, data, found, err := c.db.LatestSeq(storage.SeqTxn, c.pipeline)
	if err != nil {
		return nil, fmt.Errorf("recover pipeline %s: %w", c.pipeline, err)
	}
	var d *Decision
	if found {
		d = new(Decision)
		if err := json.Unmarshal(data, d); err != nil {
			return nil, fmt.Errorf("recover pipeline %s: decision %d is corrupt: %w", c.pipeline, id, err)
		}
	}
	dataDir, _ := filepath.Abs(c.db.Dir())
	for _, p := range c.participants {
		if o, ok := p.(ownedParticipant); ok {
			o.setOwner(dataDir, c.pipeline)
		}
		if r, ok := p.(Recoverer); ok {
			if err := r.Recover(ctx, d); err != nil {
				return nil, fmt.Errorf("recover pipeline %s: participant %s: %w", c.pipeline, p.Name(), err)
			}
		}
	}
	c.mu.Lock()
	c.recovered = true
	if found {
		c.nextID = id + 1
		c.m.LastTxnID = id
		c.carried = d.Data
	}
	c.mu.Unlock()
	if !found {
		txn, err := c.Begin(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.Commit(ctx, txn); err != nil {
			return nil, fmt.Errorf("pipeline %s: initial transaction: %w", c.pipeline, err)
		}
		d = &txn.decision
	}
	return d, nil
}

// Begin starts a transaction.
func (c *TransactionCoordinator) Begin(ctx context.Context) (*Txn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.recovered {
		return nil, errors.New("transaction coordinator: Begin before Recover")
	}
	now := c.cfg.Now()
	t := &Txn{id: c.nextID, state: TxnActive, started: now, deadline: now.Add(c.cfg.Timeout), batch: c.db.NewBatch()}
	t.decision.TxnID = t.id
	c.nextID++
	c.m.Total++
	return t, nil
}

// Commit runs both phases. On a prepare failure or timeout the transaction
// is aborted and the error wraps ErrPrepareFailed or ErrTxnTimedOut. An
// error wrapping ErrIndeterminate means the process must stop and recover.
func (c *TransactionCoordinator) Commit(ctx context.Context, t *Txn) error {
	if t.state != TxnActive {
		return fmt.Errorf("commit txn %d in state %s: %w", t.id, t.state, ErrTxnFinished)
	}
	crashpoint.Hit(crashpoint.BeforePrepare)
	t.state = TxnPreparing
	for _, p := range c.participants {
		if err := p.Prepare(ctx, t); err != nil {
			c.count(func(m *CoordinatorMetrics) { m.PrepareFailures++ })
			c.abort(ctx, t, TxnAborted)
			return fmt.Errorf("txn %d: participant %s: %w: %w", t.id, p.Name(), ErrPrepareFailed, err)
		}
	}
	if c.cfg.Now().After(t.deadline) {
		c.abort(ctx, t, TxnTimedOut)
		return fmt.Errorf("txn %d: prepared after %v, beyond the %v timeout: %w", t.id, c.cfg.Now().Sub(t.started), c.cfg.Timeout, ErrTxnTimedOut)
	}
	t.state = TxnPrepared
	crashpoint.Hit(crashpoint.AfterPrepare)

	// A participant that set no data this time (or was not registered, as
	// in a `dlq purge` from the CLI) keeps its last decided data: recovery
	// always finds every participant's state in the latest decision.
	c.mu.Lock()
	for k, v := range c.carried {
		if _, ok := t.decision.Data[k]; !ok {
			if t.decision.Data == nil {
				t.decision.Data = map[string]json.RawMessage{}
			}
			t.decision.Data[k] = v
		}
	}
	c.mu.Unlock()
	// The decision record goes into the same synced batch as every
	// data-directory participant's writes: one atomic, durable decision.
	t.decision.Time = c.cfg.Now().UTC()
	rec, err := json.Marshal(&t.decision)
	if err != nil {
		c.abort(ctx, t, TxnAborted)
		return err
	}
	if err := t.batch.PutSeq(storage.SeqTxn, c.pipeline, t.id, rec); err != nil {
		c.abort(ctx, t, TxnAborted)
		return err
	}
	if keep := uint64(c.cfg.KeepDecisions); t.id > keep && t.id%64 == 0 {
		if err := t.batch.DeleteSeqBefore(storage.SeqTxn, c.pipeline, t.id-keep); err != nil {
			c.abort(ctx, t, TxnAborted)
			return err
		}
	}
	crashpoint.Hit(crashpoint.BeforeOffsetWrite)
	if err := c.db.Commit(t.batch); err != nil {
		if errors.Is(err, storage.ErrFenced) || errors.Is(err, storage.ErrSequence) {
			// Refused before anything was written: a definite abort.
			c.abort(ctx, t, TxnAborted)
			return fmt.Errorf("txn %d: %w", t.id, err)
		}
		// The synced write failed: it may or may not be on disk.
		t.state = TxnAborting
		return fmt.Errorf("txn %d: writing the decision: %w: %w", t.id, ErrIndeterminate, err)
	}
	crashpoint.Hit(crashpoint.AfterDecision)

	t.state = TxnCommitting
	for _, p := range c.participants {
		if err := commitWithRetry(ctx, p, t); err != nil {
			return fmt.Errorf("txn %d: phase 2 of %s: %w: %w", t.id, p.Name(), ErrIndeterminate, err)
		}
	}
	t.state = TxnCommitted
	crashpoint.Hit(crashpoint.AfterCommit)
	elapsed := c.cfg.Now().Sub(t.started)
	c.count(func(m *CoordinatorMetrics) {
		c.carried = t.decision.Data
		m.Committed++
		m.LastTxnID = t.id
		c.commitTotal += elapsed
		m.AvgCommitTime = c.commitTotal / time.Duration(m.Committed)
	})
	return nil
}

// commitWithRetry retries phase 2, which is idempotent, until it succeeds or
// ctx ends: the decision is durable, so giving up would leave a participant
// behind it.
func commitWithRetry(ctx context.Context, p Participant, t *Txn) error {
	backoff := time.Millisecond
	for {
		err := p.Commit(ctx, t)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Abort abandons an active transaction.
func (c *TransactionCoordinator) Abort(ctx context.Context, t *Txn) error {
	if t.state != TxnActive && t.state != TxnPrepared {
		return fmt.Errorf("abort txn %d in state %s: %w", t.id, t.state, ErrTxnFinished)
	}
	c.abort(ctx, t, TxnAborted)
	return nil
}

func (c *TransactionCoordinator) abort(ctx context.Context, t *Txn, final TxnState) {
	t.state = TxnAborting
	for _, p := range c.participants {
		p.Abort(ctx, t) // idempotent; a failure leaves work for Recover
	}
	t.batch.Close()
	t.state = final
	c.count(func(m *CoordinatorMetrics) {
		if final == TxnTimedOut {
			m.TimedOut++
		}
		m.Aborted++
	})
}

func (c *TransactionCoordinator) count(f func(*CoordinatorMetrics)) {
	c.mu.Lock()
	f(&c.m)
	c.mu.Unlock()
}

// Metrics returns a snapshot of the coordinator's counters.
func (c *TransactionCoordinator) Metrics() CoordinatorMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m
}
