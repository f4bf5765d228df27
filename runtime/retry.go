package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/storage"
)

// RetryConfig configures RetryDeadLetters.
type RetryConfig struct {
	Name         string // the pipeline
	DB           *storage.DB
	Plugin       *host.Plugin
	PluginConfig []abi.Header
	Sink         Sink     // the pipeline's sink
	IDs          []uint64 // entries to retry; empty: all
	Logger       *slog.Logger
	// Windowed says the pipeline runs windows (EventTimeConfig.Window): its
	// dead-lettered records are then not retried (RetryStats.InWindows).
	Windowed bool
}

// RetryStats summarises a retry.
type RetryStats struct {
	Retried   int // entries processed again
	Succeeded int // entries that produced their outputs and left the queue
	Outputs   int
	Skipped   int // malformed-input entries: the data itself is broken
	// InWindows counts records of a windowed pipeline left in the queue: a
	// retry cannot put a record back into its window, whose result may be
	// out already (a window close's own dead letters are retried).
	InWindows int
}

// RetryDeadLetters reprocesses dead-letter entries through cfg.Plugin with
// their original message ids, in one transaction with the pipeline's sink,
// state and queue: an entry that succeeds has its outputs written and leaves
// the queue exactly once; one that fails again stays, with its retry count,
// error and last-failure time updated.
func RetryDeadLetters(ctx context.Context, cfg RetryConfig) (RetryStats, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Before recovering the sink, which would produce to Kafka.
	if err := refuseFleetRetry(cfg.DB, cfg.Name); err != nil {
		return RetryStats{}, err
	}
	q, err := NewDeadLetterQueue(cfg.DB, cfg.Name)
	if err != nil {
		return RetryStats{}, err
	}
	state := newStateStore(cfg.DB, cfg.Name)
	ps := &parties{sink: cfg.Sink, state: state, dlq: q}
	if _, ok := cfg.Sink.(StoreSink); ok {
		// The retry is an instance of the pipeline: a run still writing is fenced.
		if ps.producer, err = newIdempotentProducer(cfg.DB, "pipeline:"+cfg.Name); err != nil {
			return RetryStats{}, err
		}
	}
	coord := newCoordinator(cfg.DB, cfg.Name, coordinatorConfig{}, ps)
	if _, err := coord.Recover(ctx); err != nil {
		return RetryStats{}, err
	}
	return retryEntries(ctx, retryTarget{coord: coord, q: q, state: state, sink: cfg.Sink, windowed: cfg.Windowed}, cfg)
}

// retryTarget is where a retry commits: the queue, state and sink of a
// pipeline and a coordinator that has them as participants.
type retryTarget struct {
	coord *coordinator
	q     *DeadLetterQueue
	state *stateStore
	sink  Sink
	// The running pipeline's schema step (nil: none): a retried record is
	// migrated, and its outputs checked, as in the pipeline.
	inSchema  *inputSchema
	outSchema *outputSchema
	// wroteState, if set, hears of each partition whose state the retry
	// changes (once per entry).
	wroteState func(part uint32)
	windowed   bool // see RetryConfig.Windowed
}

// retryEntries retries cfg.IDs (all when empty) of t.q in one transaction.
func retryEntries(ctx context.Context, t retryTarget, cfg RetryConfig) (RetryStats, error) {
	var st RetryStats
	coord, q, state := t.coord, t.q, t.state
	var entries []DLQEntry
	var err error
	if len(cfg.IDs) == 0 {
		err = q.List(func(e DLQEntry) error { entries = append(entries, e); return nil })
	} else {
		for _, id := range uniqueIDs(cfg.IDs) {
			e, gerr := q.Get(id)
			if gerr != nil {
				return st, gerr
			}
			entries = append(entries, e)
		}
	}
	if err != nil || len(entries) == 0 {
		return st, err
	}
	var e effects
	insts := map[uint32]*host.Instance{}
	defer func() {
		for _, in := range insts {
			in.Close(context.Background())
		}
	}()
	for _, d := range entries {
		if d.Code == abi.FailMalformedInput || d.Code == abi.FailRecordTooLarge { // a too-large entry keeps only the record's head
			st.Skipped++ // no plugin can fix it: correct the data and produce it again, or purge it
			continue
		}
		if _, closing := d.Metadata[metaWindowScope]; t.windowed && !closing {
			// Processed outside its window, it would fail in an SDK's
			// window operator, or write state outside every window.
			st.InWindows++
			continue
		}
		inst := insts[d.Partition]
		if inst == nil {
			if inst, err = cfg.Plugin.NewInstance(ctx, host.InstanceConfig{Config: cfg.PluginConfig, Partition: int32(d.Partition), Logger: cfg.Logger}); err != nil {
				return st, err
			}
			insts[d.Partition] = inst
		}
		st.Retried++
		outs, ws, failure, err := retryOne(ctx, inst, state, d, t.inSchema, t.outSchema)
		if err != nil {
			return st, err
		}
		if failure != "" {
			d.RetryCount++
			d.Error = failure
			d.Plugin, d.PluginHash = cfg.Plugin.Name(), cfg.Plugin.Hash()
			e.deadUpdated = append(e.deadUpdated, d)
			continue
		}
		if len(outs) > 0 {
			e.outputs = append(e.outputs, Output{Part: d.Partition, Records: outs})
		}
		if ws.Len() > 0 {
			e.state = append(e.state, ws)
			if t.wroteState != nil {
				t.wroteState(d.Partition)
			}
		}
		e.deadRemoved = append(e.deadRemoved, d.ID)
		st.Succeeded++
		st.Outputs += len(outs)
	}
	txn, err := coord.Begin(ctx)
	if err != nil {
		return st, err
	}
	txn.decision.PluginHash = cfg.Plugin.Hash()
	txn.effects = e
	return st, coord.Commit(ctx, txn)
}

// retryOne runs one entry's record; failure is non-empty when it fails again.
func retryOne(ctx context.Context, inst *host.Instance, state *stateStore, e DLQEntry, in *inputSchema, out *outputSchema) ([]OutRecord, *writeSet, string, error) {
	id, err := uuid.Parse(e.MessageID)
	if err != nil {
		return nil, nil, "", fmt.Errorf("dead-letter entry %d: message id %q: %w", e.ID, e.MessageID, err)
	}
	hs, err := abi.DecodeKVBlock(e.Headers)
	if err != nil {
		return nil, nil, "", fmt.Errorf("dead-letter entry %d: headers: %w", e.ID, err)
	}
	rec := []abi.Record{{Key: e.Key, Value: e.Value, Headers: hs, Partition: e.Partition, Offset: e.Offset, Timestamp: e.Timestamp, ID: id}}
	win, scope, closing, err := deadClose(&e)
	if err != nil {
		return nil, nil, "", err
	}
	if closing {
		rec[0].Value = nil // a close record is its key; the entry's value is the key's state
	} else if in != nil {
		value, headers, err := in.migrate(&rec[0])
		if err != nil {
			return nil, nil, "schema: " + err.Error(), nil
		}
		rec[0].Value, rec[0].Headers = value, headers
	}
	ws := state.NewWriteSet(e.Partition)
	var entries []abi.Entry
	if closing {
		// The key's state goes back under the window's scope for the
		// call, and the close frees it again.
		st := newScopedState(ws, scope)
		if e.Value != nil {
			if err := st.Put(e.Key, e.Value); err != nil {
				return nil, nil, "", err
			}
		}
		if entries, err = inst.CloseWindow(ctx, rec, st, win); err == nil {
			err = st.Delete(e.Key)
		}
	} else {
		entries, err = inst.Process(ctx, rec, ws)
	}
	if err != nil {
		if isolatable(err) || errors.Is(err, host.ErrInit) {
			return nil, nil, err.Error(), nil
		}
		return nil, nil, "", err
	}
	var outs []OutRecord
	for i, en := range entries {
		if en.Kind == abi.EntryKindFailed {
			return nil, nil, string(en.Value), nil
		}
		if out != nil {
			if en.Headers, err = out.check(&entries[i]); err != nil {
				return nil, nil, err.Error(), nil
			}
		}
		outs = append(outs, OutRecord{Key: clone(en.Key), Value: clone(en.Value), Headers: clone(en.Headers),
			Timestamp: en.Timestamp, ID: outputID(id, uint32(i))})
	}
	state.Enqueue(ws)
	return outs, ws, "", nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
