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
	effects  effects
	// checkpointed: write added a checkpoint; prepared: the external sink
	// was asked to prepare (so it must be told the outcome).
	checkpointed, prepared bool
}

// ID is the transaction id, increasing per pipeline.
func (t *Txn) ID() uint64 { return t.id }

// State is the transaction's current state.
func (t *Txn) State() TxnState { return t.state }

// setData records participant data in the decision record.
func (t *Txn) setData(participant string, data json.RawMessage) {
	if t.decision.Data == nil {
		t.decision.Data = map[string]json.RawMessage{}
	}
	t.decision.Data[participant] = data
}

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
	parties  *parties

	mu          sync.Mutex
	nextID      uint64
	carried     map[string]json.RawMessage // last decided data per participant
	recovered   bool
	m           CoordinatorMetrics
	commitTotal time.Duration
}

// NewTransactionCoordinator creates a coordinator for pipeline in db whose
// transactions change ps.
func NewTransactionCoordinator(db *storage.DB, pipeline string, cfg CoordinatorConfig, ps *parties) *TransactionCoordinator {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.KeepDecisions == 0 {
		cfg.KeepDecisions = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if ps == nil {
		ps = &parties{}
	}
	ps.pipeline = pipeline
	return &TransactionCoordinator{db: db, pipeline: pipeline, cfg: cfg, parties: ps}
}

// Recover reads the last decision and lets the external sink reconcile with
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
	if ext := c.parties.external(); ext != nil {
		dataDir, _ := filepath.Abs(c.db.Dir())
		last := Committed{Pipeline: c.pipeline, DataDir: dataDir}
		if d != nil {
			last.Txn, last.Data = d.TxnID, d.Data[sinkData]
		}
		if err := ext.Recover(ctx, last); err != nil {
			return nil, fmt.Errorf("recover pipeline %s: sink %s: %w", c.pipeline, ext.Identity(), err)
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
	t.decision.Records = int64(t.effects.consumed)
	if err := c.parties.write(t); err != nil {
		return c.prepareFailed(ctx, t, "the data directory's batch", err)
	}
	if ext := c.parties.external(); ext != nil {
		t.prepared = true
		data, err := ext.Prepare(ctx, t.id, t.effects.outputs)
		if err != nil {
			return c.prepareFailed(ctx, t, "sink "+ext.Identity(), err)
		}
		if data != nil {
			t.setData(sinkData, data)
		}
	}
	if c.cfg.Now().After(t.deadline) {
		c.abort(ctx, t, TxnTimedOut)
		return fmt.Errorf("txn %d: prepared after %v, beyond the %v timeout: %w", t.id, c.cfg.Now().Sub(t.started), c.cfg.Timeout, ErrTxnTimedOut)
	}
	t.state = TxnPrepared
	crashpoint.Hit(crashpoint.AfterPrepare)

	// A participant that set no data this time (as the sink in a `dlq purge`
	// from the CLI) keeps its last decided data: recovery always finds every
	// participant's state in the latest decision.
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
	if ext := c.parties.external(); ext != nil {
		if err := commitWithRetry(ctx, ext, t.id); err != nil {
			return fmt.Errorf("txn %d: phase 2 of sink %s: %w: %w", t.id, ext.Identity(), ErrIndeterminate, err)
		}
	}
	c.parties.committed(t)
	t.batch.Close()
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
func commitWithRetry(ctx context.Context, s TxnSink, txn uint64) error {
	backoff := time.Millisecond
	for {
		err := s.Commit(ctx, txn)
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

// prepareFailed aborts t after what failed to prepare.
func (c *TransactionCoordinator) prepareFailed(ctx context.Context, t *Txn, what string, err error) error {
	c.count(func(m *CoordinatorMetrics) { m.PrepareFailures++ })
	c.abort(ctx, t, TxnAborted)
	return fmt.Errorf("txn %d: %s: %w: %w", t.id, what, ErrPrepareFailed, err)
}

// sinkData is the sink's key in a decision's data.
const sinkData = "sink"

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
	if ext := c.parties.external(); ext != nil && t.prepared {
		ext.Abort(ctx, t.id) // idempotent; a failure leaves work for Recover
	}
	c.parties.aborted(t)
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
