package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/storage"
)

// Config configures a Pipeline. Name, DB, Plugin, Source and Sink are
// required; every other field has a documented default.
type Config struct {
	// Name identifies the pipeline in the data directory: its offsets,
	// state and decision records live under it.
	Name   string
	DB     *storage.DB
	Plugin *host.Plugin
	// PluginConfig is passed to the operator's helios_init.
	PluginConfig []abi.Header
	Source       Source
	Sink         Sink
	// BatchSize is the most records per operator call. Default 1000.
	BatchSize int
	// MaxBatchBytes bounds a batch's input values (a larger single record
	// still forms a batch of one). Default 16 MiB.
	MaxBatchBytes int
	// Follow keeps reading new input instead of stopping at the end of the
	// input as of start.
	Follow bool
	// MaxBatchesPerTxn groups up to this many processed batches (across
	// partitions) into one transaction when they are ready together.
	// Default 16.
	MaxBatchesPerTxn int
	Txn              CoordinatorConfig
	Offsets          OffsetConfig
	// Logger receives pipeline events. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) validate() error {
	var errs []error
	if err := storage.ValidateName("pipeline", c.Name); err != nil {
		errs = append(errs, err)
	}
	for _, req := range []struct {
		missing bool
		name    string
	}{{c.DB == nil, "DB"}, {c.Plugin == nil, "Plugin"}, {c.Source == nil, "Source"}, {c.Sink == nil, "Sink"}} {
		if req.missing {
			errs = append(errs, fmt.Errorf("pipeline: %s is required", req.name))
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.BatchSize < 0 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("pipeline: batch size %d out of range 1..1000000", c.BatchSize))
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("pipeline: MaxBatchBytes %d is negative", c.MaxBatchBytes))
	}
	if c.MaxBatchesPerTxn == 0 {
		c.MaxBatchesPerTxn = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

// Stats summarises a run.
type Stats struct {
	RecordsIn    int64
	RecordsOut   int64
	Batches      int64
	Transactions uint64
	Elapsed      time.Duration
	Resumed      bool // the pipeline had committed before this run
}

// ErrRecordFailed means the operator marked an input record as failed. Until
// a dead-letter queue is configured this stops the pipeline; everything
// before the record's batch is committed.
var ErrRecordFailed = errors.New("operator failed a record")

// RecordError locates a record the operator failed.
type RecordError struct {
	Source    string
	Partition uint32
	Offset    int64
	ID        [16]byte
	Code      uint32
	Message   string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%s partition %d offset %d: %v (code %d): %s", e.Source, e.Partition, e.Offset, ErrRecordFailed, e.Code, e.Message)
}

func (e *RecordError) Unwrap() error { return ErrRecordFailed }

// Pipeline runs source -> operator -> sink with exactly-once commits.
type Pipeline struct {
	cfg     Config
	coord   *TransactionCoordinator
	offsets *OffsetManager
	state   *StateStore

	stopOnce sync.Once
	stop     chan struct{}
	in, out  atomic.Int64
	batches  atomic.Int64
}

// New validates cfg (reporting every problem) and builds the pipeline.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, stop: make(chan struct{})}
	p.coord = NewTransactionCoordinator(cfg.DB, cfg.Name, cfg.Txn)
	p.state = NewStateStore(cfg.DB, cfg.Name)
	return p, nil
}

// Coordinator exposes the pipeline's transaction coordinator (metrics).
func (p *Pipeline) Coordinator() *TransactionCoordinator { return p.coord }

// Stop asks the pipeline to finish and commit the batches in flight, then
// return from Run without error. It is safe to call more than once.
func (p *Pipeline) Stop() { p.stopOnce.Do(func() { close(p.stop) }) }

// work is one processed batch on its way to the committer.
type work struct {
	part  uint32
	recs  []OutRecord
	arena []byte
	pos   Position
	n     int
	ws    *WriteSet
}

// Run processes until the input ends (or forever with Follow), Stop is
// called, or an error occurs. Canceling ctx abandons the batches in flight
// (they were not committed and will be reprocessed on the next run).
func (p *Pipeline) Run(ctx context.Context) (Stats, error) {
	start := time.Now()
	cfg := &p.cfg
	var err error
	p.offsets, err = NewOffsetManager(cfg.DB, cfg.Name, cfg.Source.Identity(), cfg.Source.Partitions(), cfg.Offsets)
	if err != nil {
		return Stats{}, err
	}
	p.coord.RegisterParticipant(cfg.Sink)
	p.coord.RegisterParticipant(p.offsets)
	p.coord.RegisterParticipant(p.state)
	last, err := p.coord.Recover(ctx)
	if err != nil {
		return Stats{}, err
	}
	stats := Stats{Resumed: last.TxnID > 0}
	if !cfg.Sink.ExactlyOnce() || !cfg.Source.Resumable() {
		cfg.Logger.Warn("this pipeline is at-least-once: stdin cannot be re-read and stdout cannot be taken back",
			"pipeline", cfg.Name, "source", cfg.Source.Identity(), "sink", cfg.Sink.Identity())
	}

	// Instances are created up front so that a refused configuration fails
	// before anything is read.
	parts := cfg.Source.Partitions()
	insts := make([]*host.Instance, parts)
	defer func() {
		for _, in := range insts {
			if in != nil {
				in.Close(context.Background())
			}
		}
	}()
	for part := range parts {
		insts[part], err = cfg.Plugin.NewInstance(ctx, host.InstanceConfig{Config: cfg.PluginConfig, Partition: int32(part),
			Logger: cfg.Logger.With("pipeline", cfg.Name)})
		if err != nil {
			return stats, err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// readCtx ends on Stop too, releasing readers blocked while following.
	readCtx, cancelRead := context.WithCancel(runCtx)
	defer cancelRead()
	go func() {
		select {
		case <-p.stop:
			cancelRead()
		case <-readCtx.Done():
		}
	}()

	ch := make(chan *work, 2*int(parts))
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		p.Stop()
	}
	for part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.work(runCtx, readCtx, part, insts[part], ch); err != nil {
				fail(err)
			}
		}()
	}
	go func() { wg.Wait(); close(ch) }()

	if err := p.commitLoop(runCtx, ch); err != nil {
		fail(err)
		cancel() // abandon workers; nothing more will be committed
		for range ch {
		}
	}
	stats.RecordsIn, stats.RecordsOut, stats.Batches = p.in.Load(), p.out.Load(), p.batches.Load()
	stats.Transactions = p.coord.Metrics().Committed
	stats.Elapsed = time.Since(start)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return stats, firstErr
}

// work reads, processes and hands over the batches of one partition.
func (p *Pipeline) work(ctx, readCtx context.Context, part uint32, inst *host.Instance, ch chan<- *work) error {
	cfg := &p.cfg
	from, _ := p.offsets.Committed(part)
	r, err := cfg.Source.Open(ctx, part, from, cfg.Follow)
	if err != nil {
		return err
	}
	defer r.Close()
	var recs []abi.Record
	for {
		select {
		case <-p.stop:
			return nil
		default:
		}
		var pos Position
		recs, pos, err = r.Read(readCtx, recs[:0], cfg.BatchSize, cfg.MaxBatchBytes)
		if len(recs) == 0 {
			switch {
			case err == io.EOF:
				return nil
			case readCtx.Err() != nil && ctx.Err() == nil:
				return nil // stopped while waiting for input
			case err != nil:
				return err
			}
			continue
		}
		for i := range recs {
			recs[i].Partition = part
		}
		ws := p.state.NewWriteSet(part)
		entries, perr := inst.Process(ctx, recs, ws)
		if perr != nil {
			return fmt.Errorf("%s partition %d, batch of %d records at offset %d: %w", cfg.Source.Identity(), part, len(recs), recs[0].Offset, perr)
		}
		w, ferr := p.collect(part, recs, entries)
		if ferr != nil {
			return ferr
		}
		w.pos, w.n, w.ws = pos, len(recs), ws
		p.state.Enqueue(ws)
		select {
		case ch <- w:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.in.Add(int64(len(recs)))
		p.out.Add(int64(len(w.recs)))
		p.batches.Add(1)
		if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) {
			return err
		}
		if err == io.EOF {
			return nil
		}
	}
}

// collect copies a batch's outputs out of the instance's memory.
func (p *Pipeline) collect(part uint32, recs []abi.Record, entries []abi.Entry) (*work, error) {
	size := 0
	for i := range entries {
		e := &entries[i]
		if e.Kind == abi.EntryKindFailed {
			r := &recs[e.InputIndex]
			return nil, &RecordError{Source: p.cfg.Source.Identity(), Partition: part, Offset: r.Offset, ID: r.ID, Code: e.Code, Message: string(e.Value)}
		}
		size += len(e.Key) + len(e.Value) + len(e.Headers)
	}
	w := &work{part: part, recs: make([]OutRecord, len(entries)), arena: make([]byte, 0, size)}
	idx, prev := uint32(0), uint32(0)
	for i := range entries {
		e := &entries[i]
		if i == 0 || e.InputIndex != prev {
			idx = 0
		}
		prev = e.InputIndex
		o := &w.recs[i]
		o.Key, w.arena = appendView(w.arena, e.Key)
		o.Value, w.arena = appendView(w.arena, e.Value)
		o.Headers, w.arena = appendView(w.arena, e.Headers)
		o.Timestamp = e.Timestamp
		o.ID = outputID(recs[e.InputIndex].ID, idx)
		idx++
	}
	return w, nil
}

// appendView appends b to arena (which never reallocates: its capacity was
// sized up front) and returns the appended view.
func appendView(arena, b []byte) ([]byte, []byte) {
	start := len(arena)
	arena = append(arena, b...)
	return arena[start:len(arena):len(arena)], arena
}

// commitLoop groups ready batches into transactions until the workers are
// done.
func (p *Pipeline) commitLoop(ctx context.Context, ch <-chan *work) error {
	cfg := &p.cfg
	group := make([]*work, 0, cfg.MaxBatchesPerTxn)
	for {
		w, ok := <-ch
		if !ok {
			return nil
		}
		group = append(group[:0], w)
	drain:
		for len(group) < cfg.MaxBatchesPerTxn {
			select {
			case w, ok := <-ch:
				if !ok {
					break drain
				}
				group = append(group, w)
			default:
				break drain
			}
		}
		if err := p.commit(ctx, group); err != nil {
			return err
		}
	}
}

func (p *Pipeline) commit(ctx context.Context, group []*work) error {
	txn, err := p.coord.Begin(ctx)
	if err != nil {
		return err
	}
	txn.SetPluginHash(p.cfg.Plugin.Hash())
	for _, w := range group {
		if err := p.cfg.Sink.Stage(txn, w.part, w.recs); err != nil {
			p.coord.Abort(ctx, txn)
			return fmt.Errorf("pipeline %s: sink %s: %w", p.cfg.Name, p.cfg.Sink.Identity(), err)
		}
		p.offsets.StageOffset(txn, w.part, w.pos, w.n)
		p.state.Stage(txn, w.ws)
		txn.AddRecords(w.n)
	}
	if err := p.coord.Commit(ctx, txn); err != nil {
		return fmt.Errorf("pipeline %s: %w", p.cfg.Name, err)
	}
	return nil
}
