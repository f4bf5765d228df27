package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Dead-letter operations on a running pipeline. They commit through the
// pipeline's own coordinator, serialised with its commit loop, so that the
// queue, state and sink have one writer and the pipeline's reservations
// see the room they free (a pipeline paused on a full queue resumes).

// PurgeDeadLetters deletes entries ids (all when empty) from the running
// pipeline's queue and returns how many were deleted.
func (p *Pipeline) PurgeDeadLetters(ctx context.Context, ids []uint64) (int, error) {
	var n int
	err := p.liveTxn(func() (err error) {
		n, err = p.dlq.purge(ctx, p.coord, ids)
		return err
	})
	return n, err
}

// RetryDeadLetters reprocesses entries ids (all when empty) through the
// running pipeline's current plugin version and configuration, into its
// sink, as the function RetryDeadLetters does for a stopped pipeline.
func (p *Pipeline) RetryDeadLetters(ctx context.Context, ids []uint64) (RetryStats, error) {
	var st RetryStats
	if p.fleet != nil {
		return st, p.fleet.refuseRetry()
	}
	g, done := p.useGeneration()
	defer done()
	if g == nil {
		return st, fmt.Errorf("pipeline %s: %w", p.cfg.Name, ErrNotRunning)
	}
	release, err := p.quiesce(ctx)
	if err != nil {
		return st, err
	}
	defer release()
	var wrote []uint32 // partitions whose state the retry changed
	err = p.liveTxn(func() (err error) {
		st, err = retryEntries(ctx, retryTarget{coord: p.coord, q: p.dlq, state: p.state, sink: p.cfg.Sink,
			inSchema: p.inSchema, outSchema: p.outSchema, windowed: p.windows != nil,
			wroteState: func(part uint32) { wrote = append(wrote, part) }},
			RetryConfig{Name: p.cfg.Name, Plugin: g.plugin, PluginConfig: g.config, IDs: ids, Logger: p.cfg.Logger})
		return err
	})
	// Batches of those partitions being processed now may have read state
	// the retry changed: they are processed again (handOver).
	for _, part := range wrote {
		if int(part) < len(p.stateEpochs) {
			p.stateEpochs[part].Add(1)
		}
	}
	return st, err
}

// liveTxn runs fn, which commits one transaction through p.coord, between
// two commits of the pipeline. A failure other than a missing entry stops
// the pipeline with that error: a retry's state writes were already
// visible to its batches, and the next run recovers from the last decision.
func (p *Pipeline) liveTxn(fn func() error) error {
	if p.dlq == nil {
		return fmt.Errorf("pipeline %s runs without a dead-letter queue", p.cfg.Name)
	}
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	if !p.live {
		return fmt.Errorf("pipeline %s: %w", p.cfg.Name, ErrNotRunning)
	}
	err := fn()
	if err != nil && !errors.Is(err, ErrNoEntry) {
		err = fmt.Errorf("pipeline %s: dead-letter queue: %w", p.cfg.Name, err)
		p.failRun(err)
	}
	return err
}

// quiesce holds workers before they hand over another batch and waits until
// every batch handed over has been through commit, so that a retry's state
// writes, which read the partition's pending writes, commit after them.
// release lets the workers continue.
func (p *Pipeline) quiesce(ctx context.Context) (release func(), err error) {
	p.handover.Lock()
	for p.uncommitted.Load() > 0 {
		select {
		case <-p.stop:
			p.handover.Unlock()
			return nil, fmt.Errorf("pipeline %s: %w", p.cfg.Name, ErrNotRunning)
		case <-ctx.Done():
			p.handover.Unlock()
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return p.handover.Unlock, nil
}
