package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
)

// Operator calls: one batch, isolating records that make the plugin fail,
// routing failed records, retrying retryable ones.

// process runs one batch through the operator. When the plugin fails on the
// batch (trap, deadline, memory limit, malformed output) and a dead-letter
// queue is configured, it isolates the records responsible.
// lines (nil when unknown) gives the records' line numbers to dead-letter
// entries.
func (p *Pipeline) process(ctx context.Context, part uint32, gen *generation, inst *host.Instance, recs []abi.Record, lines []lineAt) (*work, error) {
	w := &work{part: part, gen: gen, lines: lines}
	if err := p.processInto(ctx, w, inst, recs); err != nil {
		return nil, err
	}
	return w, nil
}

// processInto runs recs through the operator (for window w.win, if set),
// adding the results to w after its earlier calls.
func (p *Pipeline) processInto(ctx context.Context, w *work, inst *host.Instance, recs []abi.Record) error {
	ws := p.state.NewWriteSetAfter(w.part, w.ws)
	entries, err := p.call(ctx, inst, recs, ws, w.win)
	if err == nil {
		return p.accept(w, recs, entries, ws)
	}
	if p.dlq == nil || !isolatable(err) {
		return p.batchError(w.part, recs, err)
	}
	return p.isolate(ctx, w, inst, recs, err)
}

// isolatable reports whether a batch failure can be pinned on its records.
func isolatable(err error) bool {
	for _, k := range []error{host.ErrTrap, host.ErrDeadline, host.ErrMemoryLimit, host.ErrBadOutput, host.ErrBatchFailed, host.ErrOutputLimit, host.ErrStateLimit} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

func (p *Pipeline) batchError(part uint32, recs []abi.Record, err error) error {
	return fmt.Errorf("%s partition %d, batch of %d records at offset %d: %w", p.cfg.Source.Identity(), part, len(recs), recs[0].Offset, err)
}

// isolate finds the records of recs that make the plugin fail, given that
// running recs[lo:] fails with err. It binary-searches for the first poison
// record on prefixes (accepting each prefix that succeeds, so state flows in
// order), sends it to the dead-letter queue, and runs the rest as one batch,
// repeating while that fails. Each suspect is confirmed on a fresh instance
// before it is dead-lettered (see confirm). One poison record among n costs
// ceil(log2(n)) + 2 re-executions.
func (p *Pipeline) isolate(ctx context.Context, w *work, inst *host.Instance, recs []abi.Record, err error) error {
	lo, n := 0, len(recs)
	for lo < n {
		hi := n // invariant: running recs[lo:hi] fails with err
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			ws := p.state.NewWriteSetAfter(w.part, w.ws)
			entries, e := p.call(ctx, inst, recs[lo:mid], ws, w.win)
			switch {
			case e == nil:
				if aerr := p.accept(w, recs[lo:mid], entries, ws); aerr != nil {
					return aerr
				}
				lo = mid
			case isolatable(e):
				hi, err = mid, e
			default:
				return p.batchError(w.part, recs[lo:mid], e)
			}
		}
		if err := p.confirm(ctx, w, recs[lo:lo+1], err); err != nil {
			return err
		}
		lo++
		if lo == n {
			return nil
		}
		ws := p.state.NewWriteSetAfter(w.part, w.ws)
		entries, e := p.call(ctx, inst, recs[lo:], ws, w.win)
		switch {
		case e == nil:
			return p.accept(w, recs[lo:], entries, ws)
		case isolatable(e):
			err = e
		default:
			return p.batchError(w.part, recs[lo:], e)
		}
	}
	return nil
}

// confirm runs suspect (one record that made the plugin fail with err) alone
// on a fresh instance of the batch's plugin version, one that has not run
// any of the batch: a failure that does not repeat there (a guest that traps
// on its instance's Nth call, a process paused past the deadline) was not
// the record's doing, so the record is accepted (its outputs and state
// writes in order with the accepted prefixes) and counted as a transient
// failure. A failure that repeats dead-letters the record.
func (p *Pipeline) confirm(ctx context.Context, w *work, suspect []abi.Record, err error) error {
	fresh, ierr := w.gen.plugin.NewInstance(ctx, host.InstanceConfig{Config: w.gen.config, Partition: int32(w.part),
		Logger: p.cfg.Logger.With("pipeline", p.cfg.Name)})
	if ierr != nil {
		return fmt.Errorf("%s partition %d offset %d: new instance to confirm a failure (%v): %w",
			p.cfg.Source.Identity(), w.part, suspect[0].Offset, err, ierr)
	}
	defer fresh.Close(context.Background())
	ws := p.state.NewWriteSetAfter(w.part, w.ws)
	entries, e := p.call(ctx, fresh, suspect, ws, w.win)
	switch {
	case e == nil:
		p.cfg.Logger.Warn("a plugin failure did not repeat on a fresh instance: the record is processed, not dead-lettered",
			"pipeline", p.cfg.Name, "partition", w.part, "offset", suspect[0].Offset, "error", err)
		p.cfg.Metrics.TransientFailures.WithLabelValues(p.cfg.Name).Inc()
		return p.accept(w, suspect, entries, ws)
	case !isolatable(e):
		return p.batchError(w.part, suspect, e)
	}
	p.cfg.Logger.Warn("isolated a record that makes the plugin fail; it goes to the dead-letter queue",
		"pipeline", p.cfg.Name, "partition", w.part, "offset", suspect[0].Offset, "error", e)
	w.dead = append(w.dead, p.deadEntry(w, &suspect[0], hostFailCode(e), e.Error()))
	return nil
}

// hostFailCode maps a plugin failure to the code recorded with the record;
// a failure of another kind counts as a trap.
func hostFailCode(err error) uint32 {
	if code, ok := host.RecordFailCode(err); ok {
		return code
	}
	return abi.FailTrap
}

func (p *Pipeline) deadEntry(w *work, r *abi.Record, code uint32, msg string) DLQEntry {
	plugin, part := w.gen.plugin, w.part
	return DLQEntry{
		MessageID: messageID(r.ID), Key: append([]byte(nil), r.Key...), Value: append([]byte(nil), r.Value...),
		Headers: abi.AppendKVBlock(nil, r.Headers), Timestamp: r.Timestamp, Source: p.cfg.Source.Identity(),
		Partition: part, Offset: r.Offset, Line: lineOf(w.lines, r.Offset), Error: msg, Code: code, Plugin: plugin.Name(), PluginHash: plugin.Hash(),
	}
}

func (p *Pipeline) badLines(part uint32, plugin *host.Plugin, bad []BadRecord) []DLQEntry {
	out := make([]DLQEntry, len(bad))
	for i, b := range bad {
		out[i] = DLQEntry{MessageID: messageID(b.ID), Value: b.Data,
			Source: p.cfg.Source.Identity(), Partition: part, Offset: b.Offset, Line: b.Line,
			Error: b.Err.Error(), Code: b.Code, Plugin: plugin.Name(), PluginHash: plugin.Hash()}
	}
	return out
}

// accept copies the outputs of one successful operator call out of the
// instance's memory into w, and routes the records the operator failed.
func (p *Pipeline) accept(w *work, recs []abi.Record, entries []abi.Entry, ws *writeSet) error {
	rejected, err := p.sinkRejects(w, recs, entries)
	if err != nil {
		return err
	}
	size, accepted := 0, 0
	for i := range entries {
		e := &entries[i]
		if e.Kind == abi.EntryKindFailed {
			r := &recs[e.InputIndex]
			if e.Code == abi.FailRetryable && p.cfg.MaxRetries > 0 {
				w.retry = append(w.retry, retryRec{rec: r, msg: string(e.Value)})
				continue
			}
			if p.dlq == nil {
				return &RecordError{Source: p.cfg.Source.Identity(), Partition: w.part, Offset: r.Offset, ID: r.ID, Code: e.Code, Message: string(e.Value)}
			}
			w.dead = append(w.dead, p.deadEntry(w, r, e.Code, string(e.Value)))
			continue
		}
		size += len(e.Key) + len(e.Value) + len(e.Headers)
		accepted++
	}
	arena := make([]byte, 0, size)
	w.recs = slices.Grow(w.recs, accepted)
	idx, prev := uint32(0), int64(-1) // idx: output index within its input
	for i := range entries {
		e := &entries[i]
		if e.Kind == abi.EntryKindFailed || rejected[e.InputIndex] {
			continue
		}
		if int64(e.InputIndex) != prev {
			idx, prev = 0, int64(e.InputIndex)
		}
		var o OutRecord
		o.Key, arena = appendView(arena, e.Key)
		o.Value, arena = appendView(arena, e.Value)
		o.Headers, arena = appendView(arena, e.Headers)
		o.Timestamp = e.Timestamp
		in := recs[e.InputIndex].ID
		if w.win != nil {
			in = windowInputID(in, w.win.win)
		}
		o.ID = outputID(in, idx)
		idx++
		w.recs = append(w.recs, o)
	}
	w.ws = append(w.ws, ws)
	return nil
}

// appendView appends b to arena (which never reallocates: its capacity was
// sized up front) and returns the appended view.
func appendView(arena, b []byte) ([]byte, []byte) {
	start := len(arena)
	arena = append(arena, b...)
	return arena[start:len(arena):len(arena)], arena
}

// retryRecords runs the records the operator failed as retryable again, as
// one group per attempt, up to MaxRetries attempts, waiting RetryBackoff
// (doubling, at most 5s) before each. A group that makes the plugin fail is
// isolated like a batch. Records still retryable after the last attempt go
// to the dead-letter queue (or stop the pipeline without one). Stop or the
// end of ctx interrupts the wait with errStopped or ctx's error: the batch
// is not handed over, and is processed again by the next run; from a source
// that cannot be read again (stdin), Stop ends the retries instead, and the
// records still retryable go to the dead-letter queue with the batch.
func (p *Pipeline) retryRecords(ctx context.Context, inst *host.Instance, w *work) error {
	return p.retryFailed(ctx, w, func(group []abi.Record) error {
		ws := p.state.NewWriteSetAfter(w.part, w.ws)
		entries, err := p.call(ctx, inst, group, ws, w.win)
		switch {
		case err == nil:
			return p.accept(w, group, entries, ws)
		case isolatable(err) && p.dlq != nil:
			return p.isolate(ctx, w, inst, group, err)
		default:
			return p.batchError(w.part, group, err)
		}
	})
}

// retryFailed is retryRecords' loop, with again running one group of
// w.retry once (a process call, or a window's close call).
func (p *Pipeline) retryFailed(ctx context.Context, w *work, again func(group []abi.Record) error) error {
	backoff := p.cfg.RetryBackoff
	attempts := 0
	for ; attempts < p.cfg.MaxRetries && len(w.retry) > 0; attempts++ {
		if err := p.sleep(ctx, backoff); err != nil {
			if errors.Is(err, errStopped) && !p.cfg.Source.Resumable() {
				break // stdin cannot be read again: the records still retryable are dead-lettered now, not lost with the batch
			}
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
		group := make([]abi.Record, len(w.retry))
		for i, r := range w.retry {
			group[i] = *r.rec
		}
		w.retry = w.retry[:0:0]
		if err := again(group); err != nil {
			return err
		}
	}
	for _, r := range w.retry {
		if p.dlq == nil {
			return &RecordError{Source: p.cfg.Source.Identity(), Partition: w.part, Offset: r.rec.Offset, ID: r.rec.ID, Code: abi.FailRetryable,
				Message: fmt.Sprintf("%s (after %d retries)", r.msg, attempts)}
		}
		e := p.deadEntry(w, r.rec, abi.FailRetryable, r.msg)
		e.RetryCount = attempts
		w.dead = append(w.dead, e)
	}
	w.retry = nil
	return nil
}

// errStopped means Stop interrupted a wait inside a batch.
var errStopped = errors.New("pipeline stopped")

// errStaleState is handOver's refusal of a batch processed across a live
// dead-letter retry: its state reads may predate the retry's writes, so it
// is processed again.
var errStaleState = errors.New("state changed by a dead-letter retry while the batch was processed")

// sleep waits d, or until Stop (errStopped) or the end of ctx.
func (p *Pipeline) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.stop:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs one operator call (for window win, nil outside windows: its
// state scoped to the window) and records its metrics.
func (p *Pipeline) call(ctx context.Context, inst *host.Instance, recs []abi.Record, ws *writeSet, win *windowCall) ([]abi.Entry, error) {
	m, name, plugin := p.cfg.Metrics, p.cfg.Name, inst.Plugin().Name()
	start := time.Now()
	var entries []abi.Entry
	var err error
	if win != nil {
		entries, err = inst.ProcessWindow(ctx, recs, newScopedState(ws, win.scope), *p.windows.hostWindow(win.win))
	} else {
		entries, err = inst.Process(ctx, recs, ws)
	}
	m.CallDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	m.PluginCalls.WithLabelValues(name, plugin).Inc()
	if err != nil && isolatable(err) {
		m.PluginTraps.WithLabelValues(name, plugin, failKind(err)).Inc()
	}
	return entries, err
}

func failKind(err error) string {
	switch hostFailCode(err) {
	case abi.FailDeadline:
		return "deadline"
	case abi.FailMemoryLimit:
		return "memory_limit"
	case abi.FailBadOutput:
		return "bad_output"
	case abi.FailBatchFailed:
		return "batch_failed"
	case abi.FailOutputLimit:
		return "output_limit"
	case abi.FailStateLimit:
		return "state_limit"
	}
	return "trap"
}
