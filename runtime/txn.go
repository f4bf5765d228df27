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

// txnState is a transaction's place in the two-phase commit protocol:
//
//	Active -> Preparing -> Prepared -> Committing -> Committed
//	   |          |           |
//	   +----------+-> Aborting -> Aborted
//	   +----------+-----------+-> TimedOut (then aborted)
type txnState int

const (
	txnActive txnState = iota
	txnPreparing
	txnPrepared
	txnCommitting
	txnCommitted
	txnAborting
	txnAborted
	txnTimedOut
)

var txnStateNames = [...]string{"active", "preparing", "prepared", "committing", "committed", "aborting", "aborted", "timed-out"}

func (s txnState) String() string {
	if int(s) < len(txnStateNames) {
		return txnStateNames[s]
	}
	return fmt.Sprintf("TxnState(%d)", int(s))
}

// Errors of the commit path. errIndeterminate is not a failure: the decision
// may or may not be durable, and only a restart (which re-reads the store)
// can tell; the pipeline must stop rather than continue.
var (
	errPrepareFailed = errors.New("transaction prepare failed")
	errTxnTimedOut   = errors.New("transaction timed out")
	errIndeterminate = errors.New("transaction outcome indeterminate")
	errTxnFinished   = errors.New("transaction already finished")
)

// decisionRecord is the durable record of a committed transaction.
type decisionRecord struct {
	TxnID      uint64                     `json:"txn"`
	Time       time.Time                  `json:"time"`
	PluginHash string                     `json:"plugin,omitempty"`
	Records    int64                      `json:"records"`
	Data       map[string]json.RawMessage `json:"data,omitempty"` // per participant
}

// transaction is one transaction. It is used by one goroutine at a time.
type transaction struct {
	id       uint64
	state    txnState
	started  time.Time
	deadline time.Time
	batch    *storage.Batch
	decision decisionRecord
	effects  effects
	// checkpointed: write added a checkpoint; prepared: the external sink
	// was asked to prepare (so it must be told the outcome).
	checkpointed, prepared bool
	// holdOnTimeout: a transaction that times out keeps what its effects
	// hold (dead-letter room, pending message ids, state write sets) for
	// the caller, which commits the same effects again in smaller
	// transactions (Pipeline.commitGroup).
	holdOnTimeout bool
}

// ID is the transaction id, increasing per pipeline.
func (t *transaction) ID() uint64 { return t.id }

// State is the transaction's current state.
func (t *transaction) State() txnState { return t.state }

// setData records participant data in the decision record.
func (t *transaction) setData(participant string, data json.RawMessage) {
	if t.decision.Data == nil {
		t.decision.Data = map[string]json.RawMessage{}
	}
	t.decision.Data[participant] = data
}

// coordinatorConfig configures a TransactionCoordinator.
type coordinatorConfig struct {
	// Timeout bounds a transaction from Begin to its decision. It must
	// exceed the worst batch processing plus commit time. Default 30s.
	Timeout time.Duration
	// KeepDecisions is how many decision records are kept. Default 1000.
	KeepDecisions int
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
	// prepared, when set, is called once t's participants have prepared,
	// before its deadline is checked (tests slow transactions down).
	prepared func(t *transaction)
}

// coordinatorMetrics are the coordinator's counters.
type coordinatorMetrics struct {
	Total           uint64
	Committed       uint64
	Aborted         uint64
	TimedOut        uint64
	PrepareFailures uint64
	AvgCommitTime   time.Duration
	LastTxnID       uint64
}

// coordinator runs two-phase commit for one pipeline.
type coordinator struct {
	db       *storage.DB
	pipeline string
	cfg      coordinatorConfig
	parties  *parties

	mu          sync.Mutex
	nextID      uint64
	carried     map[string]json.RawMessage // last decided data per participant
	recovered   bool
	m           coordinatorMetrics
	commitTotal time.Duration
}

// newCoordinator creates a coordinator for pipeline in db whose
// transactions change ps.
func newCoordinator(db *storage.DB, pipeline string, cfg coordinatorConfig, ps *parties) *coordinator {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTxnTimeout
	}
	if cfg.KeepDecisions == 0 {
		cfg.KeepDecisions = DefaultKeepDecisions
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if ps == nil {
		ps = &parties{}
	}
	ps.pipeline = pipeline
	return &coordinator{db: db, pipeline: pipeline, cfg: cfg, parties: ps}
}

// Recover reads the last decision and lets the external sink reconcile with
// it. A pipeline that never committed gets an empty transaction 0 committed
// first, so that every later crash finds a decision to return to.
func (c *coordinator) Recover(ctx context.Context) (*decisionRecord, error) {
	id, data, found, err := c.db.LatestSeq(storage.SeqTxn, c.pipeline)
	if err != nil {
		return nil, fmt.Errorf("recover pipeline %s: %w", c.pipeline, err)
	}
	var d *decisionRecord
	if found {
		d = new(decisionRecord)
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
func (c *coordinator) Begin(ctx context.Context) (*transaction, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.recovered {
		return nil, errors.New("transaction coordinator: Begin before Recover")
	}
	now := c.cfg.Now()
	t := &transaction{id: c.nextID, state: txnActive, started: now, deadline: now.Add(c.cfg.Timeout), batch: c.db.NewBatch()}
	t.decision.TxnID = t.id
	c.nextID++
	c.m.Total++
	return t, nil
}

// Commit runs both phases. On a prepare failure or timeout the transaction
// is aborted and the error wraps ErrPrepareFailed or ErrTxnTimedOut. An
// error wrapping ErrIndeterminate means the process must stop and recover.
func (c *coordinator) Commit(ctx context.Context, t *transaction) error {
	if t.state != txnActive {
		return fmt.Errorf("commit txn %d in state %s: %w", t.id, t.state, errTxnFinished)
	}
	crashpoint.Hit(crashpoint.BeforePrepare)
	t.state = txnPreparing
	t.decision.Records = int64(t.effects.consumed)
	if err := c.parties.write(t); err != nil {
		return c.prepareFailed(ctx, t, "the data directory's batch", err)
	}
	ext := c.parties.external()
	deciding, _ := ext.(decidingSink)
	if ext != nil {
		t.prepared = true
		var data json.RawMessage
		var err error
		if deciding != nil {
			data, err = deciding.prepareAll(ctx, t)
		} else {
			data, err = ext.Prepare(ctx, t.id, t.effects.outputs)
		}
		if err != nil {
			return c.prepareFailed(ctx, t, "sink "+ext.Identity(), err)
		}
		if data != nil {
			t.setData(sinkData, data)
		}
	}
	if c.cfg.prepared != nil {
		c.cfg.prepared(t)
	}
	crashpoint.SlowPrepare(len(t.effects.offsets)) // one offset mark per batch
	// An at-least-once sink has written its outputs in Prepare and cannot
	// take them back: aborting would only write them again. Its
	// transaction commits however long it took.
	_, written := ext.(AtLeastOnceSink)
	if c.cfg.Now().After(t.deadline) && !(written && t.prepared) {
		took := c.cfg.Now().Sub(t.started)
		c.abort(ctx, t, txnTimedOut)
		return fmt.Errorf("txn %d: prepared after %v, beyond the %v timeout: %w", t.id, took.Round(time.Millisecond), c.cfg.Timeout, errTxnTimedOut)
	}
	t.state = txnPrepared
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
		c.abort(ctx, t, txnAborted)
		return err
	}
	if err := t.batch.PutSeq(storage.SeqTxn, c.pipeline, t.id, rec); err != nil {
		c.abort(ctx, t, txnAborted)
		return err
	}
	if keep := uint64(c.cfg.KeepDecisions); t.id > keep && t.id%64 == 0 {
		if err := t.batch.DeleteSeqBefore(storage.SeqTxn, c.pipeline, t.id-keep); err != nil {
			c.abort(ctx, t, txnAborted)
			return err
		}
	}
	crashpoint.Hit(crashpoint.BeforeOffsetWrite)
	if deciding != nil {
		return c.commitDecided(ctx, t, deciding)
	}
	if err := c.db.Commit(t.batch); err != nil {
		if errors.Is(err, storage.ErrFenced) || errors.Is(err, storage.ErrSequence) {
			// Refused before anything was written: a definite abort.
			c.abort(ctx, t, txnAborted)
			return fmt.Errorf("txn %d: %w", t.id, err)
		}
		// The synced write failed: it may or may not be on disk.
		t.state = txnAborting
		return fmt.Errorf("txn %d: writing the decision: %w: %w", t.id, errIndeterminate, err)
	}
	crashpoint.Hit(crashpoint.AfterDecision)

	t.state = txnCommitting
	if ext != nil {
		if err := commitWithRetry(ctx, ext, t.id); err != nil {
			return fmt.Errorf("txn %d: phase 2 of sink %s: %w: %w", t.id, ext.Identity(), errIndeterminate, err)
		}
	}
	c.finish(t)
	return nil
}

// commitDecided commits a transaction whose decision is the external
// participant's commit (decidingSink), and then writes the data
// directory's batch. A failure of either leaves the data directory behind
// what may have been decided: the pipeline stops, and its restart brings
// the data directory up to the participant's record (a changelog restore).
func (c *coordinator) commitDecided(ctx context.Context, t *transaction, d decidingSink) error {
	t.state = txnCommitting
	if err := d.Commit(ctx, t.id); err != nil {
		t.batch.Close()
		t.state = txnAborting
		if errors.Is(err, storage.ErrFenced) {
			return fmt.Errorf("txn %d: %w", t.id, err)
		}
		return fmt.Errorf("txn %d: commit of %s: %w: %w", t.id, d.Identity(), errIndeterminate, err)
	}
	crashpoint.Hit(crashpoint.AfterDecision)
	if t.id > 0 { // the first carries the instance's id: synced
		t.batch.SkipSync() // a cache of what Kafka holds: a restart restores what a crash loses
	}
	if err := c.db.Commit(t.batch); err != nil {
		t.state = txnAborting
		return fmt.Errorf("txn %d: committed in %s, but writing the data directory failed (a restart restores it): %w: %w",
			t.id, d.Identity(), errIndeterminate, err)
	}
	c.finish(t)
	return nil
}

// finish updates the views and counters of a committed transaction.
func (c *coordinator) finish(t *transaction) {
	c.parties.committed(t)
	t.batch.Close()
	t.state = txnCommitted
	crashpoint.Hit(crashpoint.AfterCommit)
	elapsed := c.cfg.Now().Sub(t.started)
	c.count(func(m *coordinatorMetrics) {
		c.carried = t.decision.Data
		m.Committed++
		m.LastTxnID = t.id
		c.commitTotal += elapsed
		m.AvgCommitTime = c.commitTotal / time.Duration(m.Committed)
	})
}

// commitWithRetry retries phase 2, which is idempotent, until it succeeds or
// ctx ends: the decision is durable, so giving up would leave a participant
// behind it.
func commitWithRetry(ctx context.Context, s TxnSink, txn uint64) error {
	backoff := time.Millisecond
	for {
		err := s.Commit(ctx, txn)
		if err == nil || errors.Is(err, storage.ErrFenced) {
			return err // done, or another instance has taken over
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
func (c *coordinator) prepareFailed(ctx context.Context, t *transaction, what string, err error) error {
	c.count(func(m *coordinatorMetrics) { m.PrepareFailures++ })
	c.abort(ctx, t, txnAborted)
	return fmt.Errorf("txn %d: %s: %w: %w", t.id, what, errPrepareFailed, err)
}

// sinkData is the sink's key in a decision's data.
const sinkData = "sink"

// Abort abandons an active transaction.
func (c *coordinator) Abort(ctx context.Context, t *transaction) error {
	if t.state != txnActive && t.state != txnPrepared {
		return fmt.Errorf("abort txn %d in state %s: %w", t.id, t.state, errTxnFinished)
	}
	c.abort(ctx, t, txnAborted)
	return nil
}

func (c *coordinator) abort(ctx context.Context, t *transaction, final txnState) {
	t.state = txnAborting
	if ext := c.parties.external(); ext != nil && t.prepared {
		ext.Abort(ctx, t.id) // idempotent; a failure leaves work for Recover
	}
	if final == txnTimedOut && t.holdOnTimeout {
		c.parties.abandoned(t)
	} else {
		c.parties.aborted(t)
	}
	t.batch.Close()
	t.state = final
	c.count(func(m *coordinatorMetrics) {
		if final == txnTimedOut {
			m.TimedOut++
		}
		m.Aborted++
	})
}

func (c *coordinator) count(f func(*coordinatorMetrics)) {
	c.mu.Lock()
	f(&c.m)
	c.mu.Unlock()
}

// Metrics returns a snapshot of the coordinator's counters.
func (c *coordinator) Metrics() coordinatorMetrics {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m
}
