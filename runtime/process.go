package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
)

// Operator calls: one batch, isolating records that make the plugin fail,
// routing failed records, retrying retryable ones.

// process runs one batch through the operator. When the plugin fails on the
// batch (trap, deadline, memory limit, malformed output) and a dead-letter
// queue is configured, it isolates the records responsible.
func (p *Pipeline) process(ctx context.Context, part uint32, gen *generation, inst *host.Instance, recs []abi.Record) (*work, error) {
	w := &work{part: part, gen: gen}
	ws := p.state.NewWriteSet(part)
	entries, err := p.call(ctx, inst, recs, ws)
	if err == nil {
		return w, p.accept(w, recs, entries, ws)
	}
	if p.dlq == nil || !isolatable(err) {
		return nil, p.batchError(part, recs, err)
	}
	return w, p.isolate(ctx, w, inst, recs, err)
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
// repeating while that fails. One poison record among n costs
// ceil(log2(n)) + 1 re-executions.
func (p *Pipeline) isolate(ctx context.Context, w *work, inst *host.Instance, recs []abi.Record, err error) error {
	lo, n := 0, len(recs)
	for lo < n {
		hi := n // invariant: running recs[lo:hi] fails with err
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			ws := p.state.NewWriteSet(w.part)
			entries, e := p.call(ctx, inst, recs[lo:mid], ws)
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
		p.cfg.Logger.Warn("isolated a record that makes the plugin fail; it goes to the dead-letter queue",
			"pipeline", p.cfg.Name, "partition", w.part, "offset", recs[lo].Offset, "error", err)
		w.dead = append(w.dead, p.deadEntry(w, &recs[lo], hostFailCode(err), err.Error()))
		lo++
		if lo == n {
			return nil
		}
		ws := p.state.NewWriteSet(w.part)
		entries, e := p.call(ctx, inst, recs[lo:], ws)
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
		Partition: part, Offset: r.Offset, Error: msg, Code: code, Plugin: plugin.Name(), PluginHash: plugin.Hash(),
	}
}

func (p *Pipeline) badLines(part uint32, plugin *host.Plugin, bad []badLine) []DLQEntry {
	out := make([]DLQEntry, len(bad))
	for i, b := range bad {
		out[i] = DLQEntry{MessageID: messageID(positionID(sourceHash(p.cfg.Source.Identity()), b.offset)), Value: b.line,
			Source: p.cfg.Source.Identity(), Partition: part, Offset: b.offset, Line: b.lineNo,
			Error: b.err.Error(), Code: abi.FailMalformedInput, Plugin: plugin.Name(), PluginHash: plugin.Hash()}
	}
	return out
}

// accept copies the outputs of one successful operator call out of the
// instance's memory into w, and routes the records the operator failed.
func (p *Pipeline) accept(w *work, recs []abi.Record, entries []abi.Entry, ws *WriteSet) error {
	size := 0
	for i := range entries {
		e := &entries[i]
		if e.Kind == abi.EntryKindFailed {
			r := &recs[e.InputIndex]
			if e.Code == abi.FailRetryable && p.cfg.MaxRetries > 0 {
				w.retry = append(w.retry, r)
				continue
			}
			if p.dlq == nil {
				return &RecordError{Source: p.cfg.Source.Identity(), Partition: w.part, Offset: r.Offset, ID: r.ID, Code: e.Code, Message: string(e.Value)}
			}
			w.dead = append(w.dead, p.deadEntry(w, r, e.Code, string(e.Value)))
			continue
		}
		size += len(e.Key) + len(e.Value) + len(e.Headers)
	}
	arena := make([]byte, 0, size)
	idx, prev := uint32(0), int64(-1) // idx: output index within its input
	for i := range entries {
		e := &entries[i]
		if e.Kind == abi.EntryKindFailed {
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
		o.ID = outputID(recs[e.InputIndex].ID, idx)
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

// retryRecords runs each record the operator failed as retryable again, on
// its own, up to MaxRetries times with exponential backoff. One that still
// fails goes to the dead-letter queue (or stops the pipeline without one).
func (p *Pipeline) retryRecords(ctx context.Context, inst *host.Instance, w *work) error {
	pending := w.retry
	w.retry = nil
	for _, r := range pending {
		backoff := p.cfg.RetryBackoff
		var lastCode uint32
		var lastMsg string
		done, attempts := false, 0
		for attempt := 1; attempt <= p.cfg.MaxRetries && !done; attempt++ {
			attempts = attempt
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(2*backoff, 5*time.Second)
			ws := p.state.NewWriteSet(w.part)
			one := []abi.Record{*r}
			entries, err := p.call(ctx, inst, one, ws)
			switch {
			case err != nil && isolatable(err) && p.dlq != nil:
				lastCode, lastMsg, done = hostFailCode(err), err.Error(), true
				continue
			case err != nil:
				return p.batchError(w.part, one, err)
			}
			if len(entries) > 0 && entries[0].Kind == abi.EntryKindFailed {
				lastCode, lastMsg = entries[0].Code, string(entries[0].Value)
				done = lastCode != abi.FailRetryable
				continue
			}
			if err := p.accept(w, one, entries, ws); err != nil {
				return err
			}
			lastMsg, done = "", true
		}
		if lastMsg == "" && done {
			continue // succeeded
		}
		if p.dlq == nil {
			return &RecordError{Source: p.cfg.Source.Identity(), Partition: w.part, Offset: r.Offset, ID: r.ID, Code: lastCode,
				Message: fmt.Sprintf("%s (after %d retries)", lastMsg, attempts)}
		}
		e := p.deadEntry(w, r, lastCode, lastMsg)
		e.RetryCount = attempts
		w.dead = append(w.dead, e)
	}
	return nil
}

// call runs one operator call and records its metrics.
func (p *Pipeline) call(ctx context.Context, inst *host.Instance, recs []abi.Record, ws *WriteSet) ([]abi.Entry, error) {
	m, name, plugin := p.cfg.Metrics, p.cfg.Name, inst.Plugin().Name()
	start := time.Now()
	entries, err := inst.Process(ctx, recs, ws)
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
