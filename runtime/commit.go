package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/crashpoint"
	"github.com/heliosdb/helios-wasm/storage"
)

// The committer: grouping processed batches into transactions, the
// archive of non-resumable input, and what a commit updates (metrics, flow
// credits, lag).

// commitLoop groups ready batches into transactions until the workers are
// done.
func (p *Pipeline) commitLoop(ctx context.Context, ch <-chan *work) error {
	group := make([]*work, 0, p.txnCap.max)
	var next *work // a batch of another plugin version, for the next transaction
	for {
		w := next
		if w == nil {
			var ok bool
			if w, ok = <-ch; !ok {
				return nil
			}
		}
		next = nil
		group = append(group[:0], w)
		// Take what is ready; with a linger, also what becomes ready
		// within it (a sink whose commit costs round trips, Kafka's, is
		// fed fewer, larger transactions).
		var linger <-chan time.Time
		var timer *time.Timer
		if p.txnLinger > 0 {
			timer = time.NewTimer(p.txnLinger)
			linger = timer.C
		}
	drain:
		for len(group) < p.txnCap.n {
			var w *work
			var ok bool
			select {
			case w, ok = <-ch:
			default:
				if linger == nil {
					break drain
				}
				select {
				case w, ok = <-ch:
				case <-linger:
					break drain
				}
			}
			if !ok {
				break drain
			}
			if w.gen != group[0].gen { // one transaction, one plugin version
				next = w
				break drain
			}
			group = append(group, w)
		}
		if timer != nil {
			timer.Stop()
		}
		if err := p.commit(ctx, group); err != nil {
			return err
		}
	}
}

func (p *Pipeline) commit(ctx context.Context, group []*work) error {
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	defer func(all []*work) {
		for _, w := range all {
			p.handed(w.part, -1)
		}
	}(group)
	return p.commitGroup(ctx, group)
}

// commitGroup commits group in one transaction. A transaction of several
// batches that takes longer than the transaction timeout to prepare (an
// overloaded host, a slow broker) is aborted with its effects held and
// committed again as two halves, and later transactions are gathered
// smaller (txnCap): the pipeline slows down rather than stops. A single
// batch that times out stops it.
func (p *Pipeline) commitGroup(ctx context.Context, group []*work) error {
	if p.fleet != nil {
		if group = p.dropDisowned(group); len(group) == 0 {
			return nil
		}
	}
	start := time.Now()
	txn, err := p.coord.Begin(ctx)
	if err != nil {
		return err
	}
	txn.decision.PluginHash = group[0].gen.plugin.Hash()
	txn.effects = p.effectsOf(group)
	txn.holdOnTimeout = len(group) > 1
	err = p.coord.Commit(ctx, txn)
	if txn.holdOnTimeout && errors.Is(err, errTxnTimedOut) {
		p.cfg.Metrics.TxnResults.WithLabelValues(p.cfg.Name, "timed_out").Inc()
		p.txnCap.shrink(len(group))
		p.cfg.Logger.Warn("a transaction took longer than the transaction timeout to prepare: aborted, its batches are committed again in two smaller transactions",
			"pipeline", p.cfg.Name, "txn", txn.id, "batches", len(group), "max_batches_per_txn", p.txnCap.n, "error", err)
		crashpoint.Hit(crashpoint.AfterTimeoutAbort)
		half := len(group) / 2
		if err := p.commitGroup(ctx, group[:half]); err != nil {
			return err
		}
		return p.commitGroup(ctx, group[half:])
	}
	elapsed := time.Since(start)
	p.recordCommit(group, elapsed, err)
	if err != nil {
		if errors.Is(err, errDisowned) {
			return p.disownedAbort(group, txn, err)
		}
		if errors.Is(err, storage.ErrFenced) {
			return fmt.Errorf("pipeline %s: a newer instance of this pipeline has started; this one stops without writing: %w", p.cfg.Name, err)
		}
		if errors.Is(err, errTxnTimedOut) {
			return fmt.Errorf("pipeline %s: %w (one batch of %d records could not be committed within the transaction timeout: raise --transaction-timeout, or lower --batch-size)",
				p.cfg.Name, err, group[0].n)
		}
		return fmt.Errorf("pipeline %s: %w", p.cfg.Name, err)
	}
	p.txnCap.committed(elapsed)
	return nil
}

// txnCap is how many batches the committer gathers into one transaction:
// the configured maximum, halved below a transaction that timed out and
// grown back by one batch after each commit that took less than a quarter
// of the timeout. Only the commit loop's goroutine uses it.
type txnCap struct {
	n, max  int
	timeout time.Duration
}

func (c *txnCap) shrink(batches int) { c.n = max(1, min(c.n, batches/2)) }

func (c *txnCap) committed(took time.Duration) {
	if c.n < c.max && took < c.timeout/4 {
		c.n++
	}
}

// dropDisowned discards a fleet's batches read under an assignment of
// their partition that has ended (fleet.owns) and returns the others: the
// partition's new owner, this instance or another, reprocesses them from
// the group's committed offset.
func (p *Pipeline) dropDisowned(group []*work) []*work {
	kept := group[:0:0]
	dropped := 0
	for _, w := range group {
		if p.fleet.owns(w.part, w.assignment) {
			kept = append(kept, w)
			continue
		}
		dropped += w.n
		p.credits.ReturnCredits("inflight", w.bytes)
		p.dlq.Release(len(w.dead))
		p.releaseIDs(w.part, w.ids)
		p.state.committed(w.ws)
	}
	if dropped > 0 {
		p.cfg.Logger.Info("discarded processed records of partitions lost to the consumer group before they committed: their new owner reprocesses them",
			"pipeline", p.cfg.Name, "records", dropped)
	}
	return kept
}

// disownedAbort follows a transaction that the coordinator aborted because
// its batches were read under assignments that ended while it was made
// (errDisowned). The abort released their dead-letter room and message ids
// and recordCommit their credits; their state writes leave the overlay
// here. A partition that is lost is lost with the whole session, so every
// batch of the transaction is disowned and the pipeline goes on; one that
// is not would have to be processed again, which only a restart does.
func (p *Pipeline) disownedAbort(group []*work, txn *transaction, err error) error {
	p.state.committed(txn.effects.state)
	for _, w := range group {
		if p.fleet.owns(w.part, w.assignment) {
			return fmt.Errorf("pipeline %s: a transaction with batches of partitions lost to the consumer group also held partition %d, still assigned: restart to reprocess it: %w",
				p.cfg.Name, w.part, err)
		}
	}
	n := 0
	for _, w := range group {
		n += w.n
	}
	p.cfg.Logger.Info("discarded a transaction whose partitions were lost to the consumer group while it was made: their new owner reprocesses them",
		"pipeline", p.cfg.Name, "txn", txn.id, "records", n)
	return nil
}

// effectsOf gathers what the processed batches of group change.
func (p *Pipeline) effectsOf(group []*work) effects {
	var e effects
	for _, w := range group {
		if len(w.recs) > 0 {
			e.outputs = append(e.outputs, Output{Part: w.part, Records: w.recs})
		}
		e.offsets = append(e.offsets, offsetMark{w.part, w.pos, w.assignment})
		e.consumed += w.n
		for _, ws := range w.ws {
			if ws.Len() > 0 {
				e.state = append(e.state, ws)
			}
		}
		e.dead = append(e.dead, w.dead...)
		for _, id := range w.ids {
			e.seen = append(e.seen, seenID{w.part, id})
		}
		e.archive = append(e.archive, w.input...)
		e.marks = append(e.marks, w.marks...)
		e.late = append(e.late, w.late...)
	}
	return e
}

func (p *Pipeline) archiving() bool { return !p.cfg.DisableArchive && !p.cfg.Source.Resumable() }

// archiveEntries copies a batch's input records for the archive.
func archiveEntries(recs []abi.Record) []storage.Entry {
	out := make([]storage.Entry, len(recs))
	for i, r := range recs {
		out[i] = storage.Entry{Timestamp: r.Timestamp, ID: r.ID, Key: clone(r.Key), Value: clone(r.Value), Headers: abi.AppendKVBlock(nil, r.Headers)}
	}
	return out
}

// recordCommit updates metrics and flow state after a commit attempt.
func (p *Pipeline) recordCommit(group []*work, elapsed time.Duration, err error) {
	m, name := p.cfg.Metrics, p.cfg.Name
	var held int64
	for _, w := range group {
		held += w.bytes
	}
	p.credits.ReturnCredits("inflight", held)
	m.Credits.WithLabelValues(name).Set(float64(p.credits.Available("inflight")))
	switch {
	case err == nil:
		m.TxnResults.WithLabelValues(name, "committed").Inc()
	case errors.Is(err, errTxnTimedOut):
		m.TxnResults.WithLabelValues(name, "timed_out").Inc()
		return
	default:
		if errors.Is(err, errPrepareFailed) {
			m.PrepareFailures.WithLabelValues(name).Inc()
		}
		m.TxnResults.WithLabelValues(name, "aborted").Inc()
		return
	}
	m.CommitDuration.WithLabelValues(name).Observe(elapsed.Seconds())
	// Stats and status count committed work only: a batch processed but
	// lost to a failed commit is reprocessed by the next run.
	for _, w := range group {
		p.in.Add(int64(w.n))
		p.out.Add(int64(len(w.recs)))
		p.dead.Add(int64(len(w.dead)))
		p.late.Add(int64(w.lateOut))
		p.batches.Add(1)
		part := partName(w.part)
		m.RecordsIn.WithLabelValues(name, part).Add(float64(w.n))
		m.RecordsOut.WithLabelValues(name, part).Add(float64(len(w.recs)))
		m.RecordsFailed.WithLabelValues(name, part).Add(float64(len(w.dead)))
		m.DLQAdded.WithLabelValues(name).Add(float64(len(w.dead)))
		if p.dedup != nil {
			m.DedupHits.WithLabelValues(name).Add(float64(w.dups))
		}
	}
	if p.dlq != nil {
		dm := p.dlq.metrics()
		m.DLQSize.WithLabelValues(name).Set(float64(dm.Size))
		full := 0.0
		if dm.Full {
			full = 1
		}
		m.DLQFull.WithLabelValues(name).Set(full)
	}
	if p.clock != nil {
		p.recordEventTime(group)
	}
	p.notifyCommitted(group)
	if !p.cfg.Flow.Disabled {
		p.depth.RecordDepth("commit", 0)
		p.updateLag(group)
	}
}

// updateLag refreshes consumer lag for sources that know their ends.
func (p *Pipeline) updateLag(group []*work) {
	src, ok := p.cfg.Source.(EndOffsetSource)
	if !ok {
		return
	}
	for _, w := range group {
		end, ok := src.EndOffset(w.part)
		if !ok {
			continue
		}
		part := partName(w.part)
		p.lag.UpdateLatestOffset(part, end)
		p.lag.UpdateConsumerOffset(p.cfg.Name, part, w.pos.Offset)
		p.lag.RecordLag(p.cfg.Name, part)
		lm := p.lag.Metrics(p.cfg.Name, part)
		p.cfg.Metrics.ConsumerLag.WithLabelValues(p.cfg.Name, part).Set(float64(lm.CurrentLag))
		p.cfg.Metrics.LagVelocity.WithLabelValues(p.cfg.Name, part).Set(lm.LagVelocity)
	}
}

// notifyCommitted tells a CommitListener source what group committed.
func (p *Pipeline) notifyCommitted(group []*work) {
	l, ok := p.cfg.Source.(CommitListener)
	if !ok {
		return
	}
	pos := make(map[uint32]Position, len(group))
	for _, w := range group {
		pos[w.part] = w.pos // batches of one partition commit in order: the last is the newest
	}
	l.Committed(p.cfg.Name, pos)
}

func partName(part uint32) string { return strconv.FormatUint(uint64(part), 10) }

// recordEventTime updates the event-time metrics after a commit.
func (p *Pipeline) recordEventTime(group []*work) {
	m, name := p.cfg.Metrics, p.cfg.Name
	var accepted, dropped int
	for _, w := range group {
		dropped += w.lateOut
		accepted += len(w.late) - w.lateOut
	}
	if accepted > 0 {
		m.LateRecords.WithLabelValues(name, "accept").Add(float64(accepted))
	}
	if dropped > 0 {
		m.LateRecords.WithLabelValues(name, "drop").Add(float64(dropped))
	}
	p.clock.updateMetrics(m, name, p.cfg.Source.Partitions(), p.now())
}
