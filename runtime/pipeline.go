package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/runtime/internal/flow"
	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// Config configures a Pipeline. Name, DB, Plugin, Source and Sink are
// required. Every other field's zero value is its documented default (the
// Default* constants); a negative number is an error. Features that are on
// by default (the dead-letter queue, the archive of non-resumable input,
// flow control) are turned off by their Disable field; features that are
// off by default (deduplication, retries, schemas) are turned on by setting
// their field. New reports every problem at once.
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
	// input as of start. A followed file that is rotated (renamed away and
	// recreated, or copied and truncated) is read on from the new file's
	// start, after the rest of the old one.
	Follow bool
	// FinalLine says the input is complete: a last line without a newline
	// is a record. Default false: only newline-terminated lines are
	// records, and a bounded run leaves an unterminated last line
	// uncommitted (a writer may be in the middle of it) with a warning.
	// Standard input always counts its last line (at EOF it is complete).
	FinalLine bool
	// FromStart reads a file input from its beginning when it is not the
	// file the committed position refers to (replaced, rewritten or
	// truncated), instead of failing with ErrInputReplaced. An unchanged
	// input resumes as usual. Default false.
	FromStart bool
	// MaxRecordBytes bounds one input record. A longer line is skipped
	// (never buffered beyond the limit plus one read buffer) and
	// dead-lettered with abi.FailRecordTooLarge; without a dead-letter queue
	// it stops the pipeline. Default 8 MiB.
	MaxRecordBytes int
	// MaxBatchesPerTxn groups up to this many processed batches (across
	// partitions) into one transaction when they are ready together.
	// Default 16; 64 for a kafka: output, whose committer also waits up to
	// 20ms for batches to become ready (each commit is a Kafka
	// transaction, with round trips whatever its size).
	MaxBatchesPerTxn int
	// TxnTimeout bounds a transaction's commit, from its start to its
	// prepared decision. A transaction of several batches that exceeds it
	// is aborted and its batches are committed again in smaller ones (and
	// later transactions gather fewer batches); one batch that exceeds it
	// stops the pipeline. Default 30s.
	TxnTimeout time.Duration
	// KeepDecisions is how many decision records are kept. Default 1000.
	KeepDecisions int
	// CheckpointEvery writes a checkpoint of every partition's position
	// after this many records (the seed advises 1,000-10,000); the last
	// KeepCheckpoints are kept. Defaults 10,000 and 10.
	CheckpointEvery int64
	KeepCheckpoints int
	// DeadLetterMax bounds the dead-letter queue, which receives records
	// the operator fails, records that make the plugin trap (isolated by
	// bisecting the batch), and input records that cannot be parsed. A
	// record is never dropped: when a batch's dead letters do not fit, a
	// bounded run stops (everything before the batch committed) and a
	// following run pauses until entries leave the queue. Default 10,000.
	DeadLetterMax int
	// DisableDeadLetter stops the pipeline at the first such record instead
	// (everything before its batch is committed).
	DisableDeadLetter bool
	// Dedup, when set, skips records whose message id was seen within its
	// window (see DedupConfig). Default: off.
	Dedup *DedupConfig
	// MaxRetries retries the records of a batch the operator marks
	// retryable (abi.FailRetryable), as one group per attempt, up to this
	// many times, waiting RetryBackoff before each attempt, before they go
	// to the dead-letter queue. Retried records' outputs follow the rest of
	// their batch. Stop interrupts the wait (the batch is processed again
	// by the next run). Default 0.
	MaxRetries   int
	RetryBackoff time.Duration // default 100ms, doubling, at most 5s
	// Flow bounds and adapts the work between reading and commit.
	Flow FlowConfig
	// Metrics receives the pipeline's Prometheus metrics. Default: metrics
	// are kept but not registered anywhere.
	Metrics *Metrics
	// ArchiveMax keeps the last ArchiveMax input records of a source that
	// cannot be re-read (stdin) in the topic ArchiveTopic(Name), written in
	// the same transaction, so that they can be replayed. Default 100,000.
	// DisableArchive keeps none.
	ArchiveMax     int
	DisableArchive bool
	// KeepVersions bounds the plugin history kept for rollback: recording a
	// version beyond it deletes the oldest records, and their modules when
	// no remaining version (of any pipeline) uses them, in the same
	// transaction. The running version and the rollback target are always
	// kept. Default DefaultKeepVersions (10); at least 2.
	KeepVersions int
	// Schema, when set, is the reader schema, a version read from the
	// registry in DB: every input record is validated against the writer
	// version its schema.Header (SUBJECT/VERSION) names, and migrated to
	// Schema before the operator, which sees it at Schema (its header says
	// so). A record without the header is read as the subject's first
	// version. A record of another subject, or one that does not match its
	// writer version or cannot be migrated, goes to the dead-letter queue
	// with abi.FailSchema as it was read (without one, it stops the
	// pipeline). Default nil: records reach the operator unchecked.
	Schema *schema.Version
	// OutputSchema, when set, validates every output value against this
	// version and sets the output's schema.Header to it. An output that
	// does not match fails its input record like an operator failure:
	// dead-lettered with abi.FailSchema, none of its outputs written.
	// Default nil: outputs are not checked.
	OutputSchema *schema.Version
	// EventTime, when set, reads each record's event time before the
	// operator (see EventTimeConfig): a record whose event time cannot be
	// read goes to the dead-letter queue with abi.FailEventTime (without
	// one, it stops the pipeline); a record later than the watermark minus
	// the allowed lateness goes to the late output. Per-partition
	// watermarks and late-data counters commit with the offsets, so a
	// restart never moves a watermark back. Default nil: no event time.
	EventTime *EventTimeConfig
	// AtLeastOnce accepts a source that cannot be re-read (Resumable
	// false: stdin; a crash loses what was read and not committed, and the
	// archive keeps only what was) or a sink that cannot take outputs back
	// (AtLeastOnceSink: stdout; a crash repeats what was written and not
	// committed). Default false: New refuses such a pipeline with
	// ErrAtLeastOnce. Every other combination is exactly once.
	AtLeastOnce bool
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
	if c.Sink != nil {
		_, store := c.Sink.(StoreSink)
		_, ext := c.Sink.(TxnSink)
		if !store && !ext {
			errs = append(errs, fmt.Errorf("pipeline: sink %s implements neither StoreSink nor TxnSink", c.Sink.Identity()))
		}
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize < 0 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("pipeline: batch size %d out of range 1..1000000", c.BatchSize))
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.MaxRecordBytes < 0 {
		errs = append(errs, fmt.Errorf("pipeline: MaxRecordBytes %d is negative", c.MaxRecordBytes))
	}
	if c.Source != nil && c.Sink != nil && !c.AtLeastOnce {
		var why []string
		if !c.Source.Resumable() {
			why = append(why, c.Source.Identity()+" cannot be read again after a crash")
		}
		if _, alo := c.Sink.(AtLeastOnceSink); alo {
			why = append(why, c.Sink.Identity()+" cannot take back outputs written before a crash")
		}
		if len(why) > 0 {
			errs = append(errs, fmt.Errorf("pipeline: %w: %s; accept that explicitly (Config.AtLeastOnce), or use an input and output that keep exactly once (file:, log:, kafka:)",
				ErrAtLeastOnce, strings.Join(why, ", and ")))
		}
	}
	if c.Source != nil && c.Sink != nil && c.Source.Identity() == c.Sink.Identity() {
		errs = append(errs, fmt.Errorf("pipeline: input and output are both %s: the pipeline would read its own output forever; write to another output", c.Source.Identity()))
	}
	if c.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("pipeline: MaxBatchBytes %d is negative", c.MaxBatchBytes))
	}
	if c.KeepVersions == 0 {
		c.KeepVersions = DefaultKeepVersions
	}
	if c.KeepVersions < 2 {
		errs = append(errs, fmt.Errorf("pipeline: KeepVersions %d: at least 2 (the running version and the rollback target)", c.KeepVersions))
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	errs = append(errs, c.Flow.validate(c.BatchSize)...)
	for _, v := range []struct {
		name string
		v    *schema.Version
	}{{"Schema", c.Schema}, {"OutputSchema", c.OutputSchema}} {
		if v.v != nil && v.v.Avro() == nil {
			errs = append(errs, fmt.Errorf("pipeline: %s %s/%d was not read from a schema registry (use schema.Registry.Get or Latest)", v.name, v.v.Subject, v.v.Number))
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{{"KeepDecisions", int64(c.KeepDecisions)}, {"CheckpointEvery", c.CheckpointEvery},
		{"KeepCheckpoints", int64(c.KeepCheckpoints)}, {"DeadLetterMax", int64(c.DeadLetterMax)}, {"ArchiveMax", int64(c.ArchiveMax)}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("pipeline: %s %d is negative (0 takes the default)", n.name, n.v))
		}
	}
	if c.TxnTimeout < 0 {
		errs = append(errs, fmt.Errorf("pipeline: TxnTimeout %v is negative (0 takes the default)", c.TxnTimeout))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("pipeline: MaxRetries %d is negative", c.MaxRetries))
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.ArchiveMax == 0 {
		c.ArchiveMax = DefaultArchiveMax
	}
	if c.DeadLetterMax == 0 {
		c.DeadLetterMax = DefaultDeadLetterMax
	}
	if c.MaxBatchesPerTxn == 0 {
		c.MaxBatchesPerTxn = DefaultMaxBatchesPerTxn
		if _, ok := c.Sink.(*kafkaSink); ok {
			c.MaxBatchesPerTxn = kafkaMaxBatchesPerTxn
		}
	}
	if c.EventTime != nil {
		errs = append(errs, c.EventTime.validate(c)...)
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
	DeadLettered int64 // input records sent to the dead-letter queue
	Duplicates   int64 // input records skipped as duplicates
	Batches      int64
	Transactions uint64
	Elapsed      time.Duration
	Resumed      bool // the pipeline had committed before this run
	// Late counts records beyond the allowed lateness sent to the late
	// output (EventTime), dead-lettered ones included.
	Late int64
}

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
	cfg       Config
	coord     *coordinator
	parties   *parties
	offsets   *offsetManager
	state     *stateStore
	dlq       *DeadLetterQueue     // nil with DisableDeadLetter
	dedup     *deduplicator        // nil without Dedup
	inSchema  *inputSchema         // nil without Schema
	outSchema *outputSchema        // nil without OutputSchema
	extract   *eventtime.Extractor // nil without EventTime
	windows   *windowing           // nil without EventTime.Window
	clock     *eventClock          // committed event-time state; nil without EventTime
	clockNow  func() time.Time     // test hook: processing time (default time.Now)
	sizer     *flow.DynamicBatchSizer
	credits   *flow.CreditBasedFlowControl // bytes in flight between reading and commit
	depth     *flow.QueueDepthMonitor
	lag       *flow.ConsumerLagMonitor

	// commitMu serialises the commit loop's transactions with those of
	// dead-letter operations on the running pipeline (dlqlive.go); live
	// and failRun are set while Run can commit.
	commitMu sync.Mutex
	live     bool
	failRun  func(error)
	// handover is held (read) by a worker while it enqueues a batch's state
	// and hands the batch over; uncommitted counts batches handed over and
	// not yet through commit. A live retry waits for both (quiesce) so its
	// state writes commit after every batch that was visible to it.
	handover    sync.RWMutex
	uncommitted atomic.Int64
	// stateEpochs count, per partition, the live retries that wrote its
	// state (bumped under handover once the retry committed). A batch
	// processed across such a retry may have read state the retry
	// changed: handOver refuses it (errStaleState) and its worker
	// processes it again.
	stateEpochs []atomic.Uint64
	inflight    []atomic.Int64 // per partition: batches handed over, not yet through commit
	fleet       *fleet         // nil unless a consumer group shares the input (fleet.go)
	txnLinger   time.Duration  // how long the committer waits for more batches (commit.go)
	txnCap      txnCap         // how many batches it gathers (commit.go)

	stopOnce sync.Once
	stop     chan struct{}
	ended    atomic.Pointer[runEnd] // set when Run returns
	ready    chan struct{}          // closed once recovered and processing
	started  time.Time

	swapMu     sync.Mutex
	gen        atomic.Pointer[generation]
	lastGen    atomic.Pointer[generation] // the version Run ended with, for Status
	gensMu     sync.Mutex
	gens       []*generation        // superseded generations not retired yet
	pluginRefs map[*host.Plugin]int // generations using each plugin the pipeline owns
	retiring   sync.WaitGroup       // workers closing a swapped-out version's instance in the background
	swaps      atomic.Int64
	pause      pauser
	onBatch    func(part uint32, gen uint64, start, end time.Time) // test hook: every processed batch
	onSwitch   func(part uint32, at time.Time)                     // test hook: a worker switched versions
	in, out    atomic.Int64
	dead       atomic.Int64
	dups       atomic.Int64
	late       atomic.Int64
	batches    atomic.Int64
}

// New validates cfg (reporting every problem) and builds the pipeline.
func New(cfg Config) (*Pipeline, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, stop: make(chan struct{}), ready: make(chan struct{}), pluginRefs: map[*host.Plugin]int{}}
	p.state = newStateStore(cfg.DB, cfg.Name)
	if sink, ok := cfg.Sink.(*kafkaSink); ok {
		// The broker must not abort a transaction the pipeline still drives.
		sink.opts.Timeout = max(2*cmp.Or(cfg.TxnTimeout, DefaultTxnTimeout), 10*time.Second)
		// A Kafka transaction costs round trips whatever its size: fewer,
		// larger ones (RATIONALE.md, "Why linger before a Kafka commit?").
		p.txnLinger = kafkaTxnLinger
		if src, ok := cfg.Source.(*kafkaSource); ok {
			p.fleet = newFleet(p, src, sink)
		}
	}
	if !cfg.DisableDeadLetter {
		var err error
		if p.dlq, err = newDeadLetterQueue(cfg.DB, cfg.Name, dlqConfig{Max: cfg.DeadLetterMax}); err != nil {
			return nil, err
		}
	}
	if cfg.Dedup != nil {
		p.dedup = newDeduplicator(cfg.DB, cfg.Name, *cfg.Dedup)
	}
	// Run adds the offsets, the producer and the archive.
	p.parties = &parties{sink: cfg.Sink, state: p.state, dlq: p.dlq, dedup: p.dedup}
	if p.fleet != nil {
		p.parties.sink = fleetSink{p.fleet.sink}
	}
	p.coord = newCoordinator(cfg.DB, cfg.Name, coordinatorConfig{Timeout: cfg.TxnTimeout, KeepDecisions: cfg.KeepDecisions}, p.parties)
	p.txnCap = txnCap{n: cfg.MaxBatchesPerTxn, max: cfg.MaxBatchesPerTxn, timeout: p.coord.cfg.Timeout}
	if cfg.Schema != nil {
		var err error
		if p.inSchema, err = newInputSchema(schema.New(cfg.DB).WithEngine(cfg.Plugin.Engine()), cfg.Schema); err != nil {
			return nil, err
		}
	}
	if cfg.OutputSchema != nil {
		p.outSchema = &outputSchema{v: cfg.OutputSchema, header: versionHeader(cfg.OutputSchema)}
	}
	if cfg.EventTime != nil {
		p.extract, _ = eventtime.ParseExtractor(cfg.EventTime.Extract, cfg.EventTime.Format) // validated
		if cfg.EventTime.Window != "" {
			spec, _ := eventtime.ParseWindowSpec(cfg.EventTime.Window) // validated
			p.windows = &windowing{spec: spec, updates: cfg.EventTime.Emit == EmitUpdates}
		}
	}
	f := cfg.Flow
	p.sizer = flow.NewDynamicBatchSizer(cfg.BatchSize, f.BatchMin, f.BatchMax, f.BatchTarget)
	p.credits = flow.NewCreditBasedFlowControl(f.MaxInflightBytes, 0, nil)
	p.depth = flow.NewQueueDepthMonitor(f.MaxQueueDepth, time.Minute, nil)
	p.lag = flow.NewConsumerLagMonitor(time.Minute, nil)
	return p, nil
}

// FlowConfig bounds the work between reading and commit, so that a fast
// source and a slow operator never exhaust memory, and adapts batch sizes.
type FlowConfig struct {
	// MaxInflightBytes bounds the bytes (input values plus outputs) of
	// batches read but not yet committed. Default 64 MiB. A single batch
	// larger than that still passes, alone.
	MaxInflightBytes int64
	// MaxQueueDepth bounds the processed batches waiting for the committer.
	// Default 8. A kafka: output's queue holds at least MaxBatchesPerTxn
	// batches, so that processing goes on while a Kafka transaction
	// commits (the bytes in flight stay bounded by MaxInflightBytes).
	MaxQueueDepth int
	// BatchMin and BatchMax bound the dynamic batch size; BatchTarget is the
	// operator time a batch aims at. Default: BatchMin = BatchMax =
	// BatchSize (fixed batches), BatchTarget 100ms.
	BatchMin, BatchMax int
	BatchTarget        time.Duration
	// Disabled turns off credits, dynamic sizing, queue-depth and lag
	// tracking (the commit queue stays bounded). For measuring their cost.
	Disabled bool
}

func (f *FlowConfig) validate(batchSize int) []error {
	var errs []error
	if f.MaxInflightBytes == 0 {
		f.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if f.MaxQueueDepth == 0 {
		f.MaxQueueDepth = DefaultMaxQueueDepth
	}
	if f.BatchMin == 0 {
		f.BatchMin = batchSize
	}
	if f.BatchMax == 0 {
		f.BatchMax = max(batchSize, f.BatchMin)
	}
	if f.BatchTarget == 0 {
		f.BatchTarget = DefaultBatchTarget
	}
	if f.MaxInflightBytes < 0 || f.MaxQueueDepth < 0 || f.BatchMin < 0 || f.BatchMax < f.BatchMin || f.BatchTarget < 0 {
		errs = append(errs, fmt.Errorf("pipeline: flow settings out of range: %+v (need BatchMin <= BatchMax, nothing negative)", *f))
	}
	return errs
}

// Progress is a snapshot of a running pipeline.
type Progress struct {
	RecordsIn, RecordsOut int64
	// Committed is the committed position of each partition.
	Committed map[uint32]Position
}

// Progress reports how far the pipeline has come.
func (p *Pipeline) Progress() Progress {
	pr := Progress{RecordsIn: p.in.Load(), RecordsOut: p.out.Load(), Committed: map[uint32]Position{}}
	select {
	case <-p.ready: // offsets exist from here on
		for part := range p.cfg.Source.Partitions() {
			if pos, ok := p.offsets.Committed(part); ok {
				pr.Committed[part] = pos
			}
		}
	default:
	}
	return pr
}

// Ready is closed once Run has recovered the pipeline and started
// processing.
func (p *Pipeline) Ready() <-chan struct{} { return p.ready }

// DeadLetterQueue returns the pipeline's dead-letter queue (nil with
// DisableDeadLetter).
func (p *Pipeline) DeadLetterQueue() *DeadLetterQueue { return p.dlq }

// stopping reports whether Stop has been called.
func (p *Pipeline) stopping() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// Stop asks the pipeline to finish and commit the batches in flight, then
// return from Run without error. It is safe to call more than once.
func (p *Pipeline) Stop() { p.stopOnce.Do(func() { close(p.stop) }) }

// work is one processed batch on its way to the committer.
type work struct {
	part    uint32
	recs    []OutRecord
	arena   []byte
	pos     Position
	n       int
	ws      []*writeSet // one per successful operator call, in order
	dead    []DLQEntry
	ids     [][16]byte      // message ids to remember (dedup)
	dups    int             // records dropped as duplicates (dedup)
	marks   []eventMark     // event time seen (EventTime)
	late    []lateMark      // records behind the watermark (EventTime)
	lateOut int             // records sent to the late output
	input   []storage.Entry // input records to archive (non-resumable sources)
	retry   []retryRec      // records the operator failed as retryable
	bytes   int64           // flow credits held until commit
	gen     *generation     // the plugin version that processed the batch
	lines   []lineAt        // line-oriented sources: the records' lines, until the batch is processed
	// assignment is the fleet assignment of the partition the batch was
	// read under (assignedReader), 0 outside a fleet.
	assignment uint64
	// win is the window of the operator calls being made (window.go); nil
	// outside them.
	win *windowCall
}

// dlqFull reports a pause on a full dead-letter queue.
func (p *Pipeline) dlqFull(e *dlqFullError) {
	p.cfg.Metrics.DLQFull.WithLabelValues(p.cfg.Name).Set(1)
	p.cfg.Logger.Error("dead-letter queue full: pipeline paused until entries leave it (dlq retry or dlq purge work while it runs)",
		"pipeline", p.cfg.Name, "entries", e.Committed, "reserved", e.Reserved, "needed", e.Needed, "max", e.Max)
}

// retryRec is a record the operator failed as retryable, with its message.
type retryRec struct {
	rec *abi.Record
	msg string
}

// ArchiveTopic is the topic that keeps the recent input of a pipeline whose
// source cannot be re-read.
func ArchiveTopic(pipeline string) string { return "__archive." + pipeline }

// Run processes until the input ends (or forever with Follow), Stop is
// called, or an error occurs. A Pipeline runs once: build a new one to run
// again. Canceling ctx abandons the batches in flight
// (they were not committed and will be reprocessed on the next run).
func (p *Pipeline) Run(ctx context.Context) (Stats, error) {
	st, err := p.run(ctx)
	p.ended.Store(&runEnd{err: err})
	return st, err
}

// sizePartitions makes the per-partition counters for n partitions.
func (p *Pipeline) sizePartitions(n uint32) {
	p.inflight = make([]atomic.Int64, n)
	p.stateEpochs = make([]atomic.Uint64, n)
}

// runEnd is how Run ended.
type runEnd struct{ err error }

// Ended reports whether Run has returned, and its error: a process running
// several pipelines (serve) reports a failed one while the others go on.
func (p *Pipeline) Ended() (bool, error) {
	if e := p.ended.Load(); e != nil {
		return true, e.err
	}
	return false, nil
}

func (p *Pipeline) run(ctx context.Context) (Stats, error) {
	start := time.Now()
	cfg := &p.cfg
	var err error
	p.offsets, err = newOffsetManager(cfg.DB, cfg.Name, cfg.Source.Identity(), cfg.Source.Partitions(), offsetConfig{CheckpointEvery: cfg.CheckpointEvery, KeepCheckpoints: cfg.KeepCheckpoints})
	if err != nil {
		return Stats{}, err
	}
	p.parties.offsets = p.offsets
	p.sizePartitions(cfg.Source.Partitions())
	if p.fleet != nil {
		if err := p.fleet.prepare(ctx); err != nil {
			return Stats{}, err
		}
	}
	if _, ok := cfg.Sink.(StoreSink); ok {
		// Each run is a new epoch: an older instance of this pipeline that
		// is still around (paused, or in another goroutine) is fenced.
		if p.parties.producer, err = newIdempotentProducer(cfg.DB, "pipeline:"+cfg.Name); err != nil {
			return Stats{}, err
		}
	}
	if p.archiving() {
		p.parties.archiveMax = cfg.ArchiveMax
	}
	last, err := p.coord.Recover(ctx)
	if err != nil {
		return Stats{}, err
	}
	if cfg.EventTime != nil {
		// After recovery: the snapshots are those of the last commit.
		if p.clock, err = newEventClock(cfg.DB, cfg.Name, cfg.Source.Partitions(), cfg.EventTime); err != nil {
			return Stats{}, err
		}
		now := eventtime.FromStd(p.now())
		for part := range cfg.Source.Partitions() {
			p.clock.marks.Register(part, now) // an empty partition holds the watermark back until idle
		}
		p.parties.clock = p.clock
		p.clock.updateMetrics(cfg.Metrics, cfg.Name, cfg.Source.Partitions(), p.now())
	}
	if p.archiving() {
		if err := cfg.DB.CreateTopic(ArchiveTopic(cfg.Name), 1); err != nil {
			return Stats{}, err
		}
	}
	stats := Stats{Resumed: last.TxnID > 0}
	if _, alo := cfg.Sink.(AtLeastOnceSink); alo || !cfg.Source.Resumable() {
		cfg.Logger.Warn("this pipeline is at-least-once: stdin cannot be re-read and stdout cannot be taken back",
			"pipeline", cfg.Name, "source", cfg.Source.Identity(), "sink", cfg.Sink.Identity())
	}

	// Instances are created up front so that a refused configuration fails
	// before anything is read.
	parts := cfg.Source.Partitions()
	ictx, cancelInit := p.untilStop(ctx)
	insts, err := p.instantiate(ictx, cfg.Plugin, cfg.PluginConfig)
	cancelInit()
	if err != nil && errors.Is(err, host.ErrCanceled) && p.stopping() {
		return stats, nil // stopped before anything was read
	}
	if err != nil {
		return stats, err
	}
	seq, err := p.startVersion()
	if err != nil {
		closeAll(insts)
		return stats, err
	}
	p.gen.Store(newGeneration(seq, cfg.Plugin, cfg.PluginConfig, insts, false))
	defer func() {
		p.swapMu.Lock()
		defer p.swapMu.Unlock()
		// Workers close retired instances in the background; an Instance
		// is not safe for concurrent use, so wait for them first.
		p.retiring.Wait()
		// Cleared first: a live retry can no longer take a use of the
		// version being closed (useGeneration).
		last := p.gen.Swap(nil)
		p.lastGen.Store(last)
		p.closeGenerations(last)
		if p.inSchema != nil {
			p.inSchema.close() // its migrator modules
		}
	}()
	p.started = time.Now()

	// From Ready on, dead-letter operations may run (dlqlive.go).
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
	p.commitMu.Lock()
	p.live, p.failRun = true, fail
	p.commitMu.Unlock()
	defer func() {
		p.commitMu.Lock()
		p.live = false
		p.commitMu.Unlock()
	}()
	close(p.ready)
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

	var bg sync.WaitGroup
	defer func() { cancel(); bg.Wait() }()
	if p.dedup != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			p.dedup.runCleanup(runCtx, func(err error) { cfg.Logger.Error("dedup cleanup", "pipeline", cfg.Name, "error", err) })
		}()
	}
	depth := cfg.Flow.MaxQueueDepth
	if p.txnLinger > 0 {
		depth = max(depth, cfg.MaxBatchesPerTxn) // workers go on while a transaction commits
	}
	ch := make(chan *work, depth)
	cfg.Metrics.QueueDepthMax.WithLabelValues(cfg.Name).Set(float64(depth))
	cfg.Metrics.QueueDepth.WithLabelValues(cfg.Name).Set(0)
	if p.fleet != nil {
		// The consumer group says which partitions this instance works on.
		defer p.fleet.close() // after the last commit: it carries the group's generation
		go func() {
			defer close(ch)
			if err := p.fleet.run(runCtx, readCtx, ch, fail); err != nil {
				fail(err)
			}
		}()
	} else {
		var wg sync.WaitGroup
		for part := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.work(runCtx, readCtx, part, ch); err != nil {
					fail(err)
				}
			}()
		}
		go func() { wg.Wait(); close(ch) }()
	}

	if err := p.commitLoop(runCtx, ch); err != nil {
		fail(err)
		cancel() // abandon workers; nothing more will be committed
		for w := range ch {
			p.handed(w.part, -1)
		}
	}
	errMu.Lock()
	ended := firstErr == nil && !p.stopping() && !cfg.Follow && ctx.Err() == nil
	errMu.Unlock()
	if ended && p.clock != nil {
		// The bounded input is fully read and committed: every record has
		// been seen. Not committed, so that a later run over a grown input
		// resumes from the real watermarks (RATIONALE.md).
		p.clock.marks.AdvanceToEnd()
		p.clock.updateMetrics(cfg.Metrics, cfg.Name, parts, p.now())
	}
	stats.RecordsIn, stats.RecordsOut, stats.Batches = p.in.Load(), p.out.Load(), p.batches.Load()
	stats.DeadLettered, stats.Duplicates, stats.Late = p.dead.Load(), p.dups.Load(), p.late.Load()
	stats.Transactions = p.coord.Metrics().Committed
	stats.Elapsed = time.Since(start)
	errMu.Lock() // a dead-letter operation may still fail the run
	defer errMu.Unlock()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return stats, firstErr
}

// handed counts batches of part handed over to the committer (d = 1) and
// through commit (d = -1).
func (p *Pipeline) handed(part uint32, d int64) {
	p.uncommitted.Add(d)
	p.inflight[part].Add(d)
}

// warnUnterminated reports an unterminated last line a bounded run left
// unread: a writer may still be writing it.
func (p *Pipeline) warnUnterminated(r Reader) {
	if u, ok := r.(unterminatedReader); ok && u.unterminated() > 0 {
		p.cfg.Logger.Warn("the input ends with a line without newline: left uncommitted, as a writer may be in the middle of it; "+
			"it is read once its newline is written, or, if the input is complete, rerun with the final-line option to take it as a record",
			"pipeline", p.cfg.Name, "source", p.cfg.Source.Identity(), "bytes", u.unterminated())
	}
}

// takeGeneration returns the current generation and its instance for part.
func (p *Pipeline) takeGeneration(part uint32) (*generation, *host.Instance) {
	for {
		g := p.gen.Load()
		if inst := g.take(part); inst != nil {
			return g, inst
		}
		// Superseded between the load and the take: the next load sees its successor.
	}
}

// work reads, processes and hands over the batches of one partition.
func (p *Pipeline) work(ctx, readCtx context.Context, part uint32, ch chan<- *work) error {
	cfg := &p.cfg
	cur, inst := p.takeGeneration(part)
	from, resumed := p.offsets.Committed(part)
	r, err := cfg.Source.Open(ctx, part, from, cfg.Follow)
	if errors.Is(err, ErrInputReplaced) && cfg.FromStart {
		cfg.Logger.Warn("the input is not the file the committed position refers to: reading it from its start", "pipeline", cfg.Name, "error", err)
		r, err = cfg.Source.Open(ctx, part, Position{Generation: from.Generation + 1}, cfg.Follow)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	if rc, ok := r.(configurableReader); ok {
		rc.configure(readerConfig{maxRecordBytes: cfg.MaxRecordBytes, finalLine: cfg.FinalLine, resumed: resumed,
			logger: cfg.Logger.With("pipeline", cfg.Name)})
	}
	var assignment uint64
	if ar, ok := r.(assignedReader); ok {
		assignment = ar.assignment()
	}
	lr, _ := r.(BadRecordReader)
	if lr != nil && p.dlq != nil {
		lr.KeepBadRecords()
	}
	var recs []abi.Record
	last := from                                     // the partition's position as handed over
	firedTo := eventtime.Time(eventtime.NoWatermark) // windows ending at or before it are closed
	// fire closes the windows due by bound; done reports the pipeline
	// stopped while handing over.
	fire := func(bound eventtime.Time) (done bool, err error) {
		if p.windows == nil || bound <= firedTo {
			return false, nil
		}
		stopped, err := p.fireWindows(ctx, readCtx, part, cur, inst, last, assignment, bound, ch)
		if errors.Is(err, errStopped) {
			return true, nil // stopped during a close's retry backoff: the window is closed by the next run
		}
		if err == nil && !stopped {
			firedTo = bound
		}
		return stopped, err
	}
	// atEnd closes every window once a bounded input is read to its end.
	atEnd := func() error {
		if p.windows == nil || cfg.Follow || p.stopping() {
			return nil
		}
		_, err := fire(eventtime.EndOfTime)
		return err
	}
	draining := false // stopped: processing what was read of a non-resumable source
	for {
		p.waitIfPaused(readCtx)
		select {
		case <-p.stop:
			if !draining {
				d, ok := r.(drainableReader)
				if !ok || cfg.Source.Resumable() {
					return nil // the next run reads the rest again
				}
				// Lines read ahead from stdin exist nowhere else.
				d.drain()
				draining = true
			}
		default:
		}
		// A swap takes effect here, between two batches of this partition.
		if g := p.gen.Load(); g != cur {
			old := cur
			p.retiring.Add(1)
			go func() { // closing a module takes milliseconds: not on the processing path
				defer p.retiring.Done()
				p.releaseInstance(old, int(part), false)
			}()
			cur, inst = p.takeGeneration(part)
			if p.onSwitch != nil {
				p.onSwitch(part, time.Now())
			}
		}
		if p.windows != nil {
			if bound, ok := p.windowBound(part); ok {
				if done, err := fire(bound); done || err != nil {
					return err
				}
			}
		}
		var pos Position
		size := cfg.BatchSize
		if !cfg.Flow.Disabled {
			size = p.sizer.BatchSize(partName(part))
		}
		cfg.Metrics.BatchSize.WithLabelValues(cfg.Name, partName(part)).Set(float64(size))
		rctx, cancelTick := readCtx, context.CancelFunc(func() {})
		if p.windows != nil && cfg.Follow {
			// An idle partition wakes up to close the windows that other
			// partitions' records moved the watermark past.
			rctx, cancelTick = context.WithTimeout(readCtx, windowIdleTick)
		}
		recs, pos, err = r.Read(rctx, recs[:0], size, cfg.MaxBatchBytes)
		if rctx.Err() != nil && readCtx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = nil // the tick, not a stop: nothing was read
		}
		cancelTick()
		var lines []lineAt // for dead-letter entries
		if ln, ok := r.(lineNumberer); ok && p.dlq != nil {
			lines = ln.lineNumbers()
		}
		var bad []DLQEntry
		if lr != nil {
			bad = p.badLines(part, cur.plugin, lr.TakeBadRecords())
		}
		if err == io.EOF {
			p.warnUnterminated(r)
		}
		// A read that moved the position without records (it passed only
		// Kafka transaction markers) is handed over like a batch: the
		// partition's committed offset must reach its end.
		moved := pos.Offset != last.Offset && (err == nil || err == io.EOF)
		if len(recs) == 0 && len(bad) == 0 && !moved {
			switch {
			case err == io.EOF:
				return atEnd()
			case readCtx.Err() != nil && ctx.Err() == nil, errors.Is(err, errDrained):
				return nil // stopped while waiting for input, or all read is processed
			case err != nil:
				return err
			}
			continue
		}
		for i := range recs {
			recs[i].Partition = part
		}
		read := len(recs)
		var ids [][16]byte
		dups := 0
		if p.dedup != nil {
			p.dedup.AssignIDs(recs)
			if recs, ids, err = p.dedup.Filter(recs); err != nil {
				return err
			}
			dups = read - len(recs)
			p.dups.Add(int64(dups))
		}
		var input []storage.Entry // archived as read, before migration
		if p.archiving() {
			input = archiveEntries(recs)
		}
		var unreadable []DLQEntry // records that do not match their schema
		if p.inSchema != nil && len(recs) > 0 {
			var serr error
			if recs, unreadable, serr = p.migrateInputs(part, cur, recs); serr != nil {
				p.releaseIDs(part, ids)
				return serr
			}
		}
		var ev eventStep // records routed by event time
		if p.clock != nil && len(recs) > 0 {
			var eerr error
			if ev, eerr = p.eventTimes(part, cur, recs, lines); eerr != nil {
				p.releaseIDs(part, ids)
				return eerr
			}
			recs = ev.kept
		}
	process: // again when a live retry changed state meanwhile (errStaleState)
		epoch := p.stateEpochs[part].Load()
		w := &work{part: part, gen: cur}
		inBytes := 0
		if len(recs) > 0 {
			for i := range recs {
				inBytes += len(recs[i].Value) + len(recs[i].Key)
			}
			start := time.Now()
			var perr error
			if p.windows != nil {
				w, perr = p.processWindows(ctx, part, cur, inst, recs, ev.times, lines)
			} else {
				w, perr = p.process(ctx, part, cur, inst, recs, lines)
			}
			if perr != nil {
				p.releaseIDs(part, ids)
				if errors.Is(perr, errStopped) {
					return nil // stopped during a retry backoff: the batch is reprocessed next run
				}
				return perr
			}
			if !cfg.Flow.Disabled {
				p.sizer.RecordProcessingTime(partName(part), len(recs), time.Since(start))
			}
			if p.onBatch != nil {
				p.onBatch(part, cur.seq, start, time.Now())
			}
		}
		if err := p.retryRecords(ctx, inst, w); err != nil {
			p.releaseIDs(part, ids)
			if errors.Is(err, errStopped) {
				return nil // stopped during a backoff: the batch is reprocessed next run
			}
			return err
		}
		w.lines = nil // the reader reuses it
		w.pos, w.n, w.ids, w.dups, w.assignment = pos, read+len(bad), ids, dups, assignment
		w.input = input
		w.dead = append(append(append(bad, unreadable...), ev.dead...), w.dead...)
		w.marks, w.late, w.lateOut = ev.marks, ev.late, ev.lateOut
		stopped, herr := p.handOver(ctx, readCtx, w, inBytes, ch, epoch)
		if errors.Is(herr, errStaleState) {
			goto process
		}
		if stopped || herr != nil {
			// Not handed over: read again (by the next run, or by the
			// partition's next owner in this process), its records are
			// not duplicates of themselves.
			p.releaseIDs(part, ids)
			return herr
		}
		last = pos
		if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) {
			return err
		}
		if err == io.EOF {
			return atEnd()
		}
	}
}

// handOver reserves dead-letter room and flow credits for w (inBytes: its
// input's bytes), makes its state writes visible to the partition's later
// batches and sends it to the committer. stopped reports that the pipeline
// stopped while waiting: w was not handed over, and is processed again by
// the next run. epoch is w's partition's p.stateEpochs as it was before w
// was processed; if a live retry has written the partition's state since,
// w is not handed over (errStaleState).
func (p *Pipeline) handOver(ctx, readCtx context.Context, w *work, inBytes int, ch chan<- *work, epoch uint64) (stopped bool, err error) {
	cfg := &p.cfg
	reserved := 0 // dead-letter room held for this batch
	if p.dlq != nil {
		if err := p.dlq.Reserve(readCtx, len(w.dead), cfg.Follow, p.dlqFull); err != nil {
			if readCtx.Err() != nil && ctx.Err() == nil {
				if !cfg.Source.Resumable() {
					return false, fmt.Errorf("%s: stopped while the dead-letter queue was full: a batch of %d records read from it, which cannot be read again, "+
						"was not committed: %w", cfg.Source.Identity(), w.n, err)
				}
				return true, nil // stopped while paused
			}
			return false, err
		}
		reserved = len(w.dead)
		cfg.Metrics.DLQFull.WithLabelValues(cfg.Name).Set(0)
	}
	// Hold credits for the batch's bytes until it commits: reading
	// waits here when too much is in flight.
	if !cfg.Flow.Disabled {
		w.bytes = int64(inBytes + cap(w.arena))
	}
	// A batch of a source that cannot be read again is committed even
	// when the pipeline stops: the committer goes on until the workers
	// end, and gives the credits back.
	waitCtx := readCtx
	if !cfg.Source.Resumable() {
		waitCtx = ctx
	}
	if err := p.credits.Consume(waitCtx, "inflight", w.bytes); err != nil {
		p.dlq.Release(reserved)
		if readCtx.Err() != nil && ctx.Err() == nil {
			return true, nil // stopped while waiting
		}
		return false, err
	}
	cfg.Metrics.Credits.WithLabelValues(cfg.Name).Set(float64(p.credits.Available("inflight")))
	p.handover.RLock()
	if p.stateEpochs[w.part].Load() != epoch {
		p.handover.RUnlock()
		p.credits.ReturnCredits("inflight", w.bytes)
		p.dlq.Release(reserved)
		return false, errStaleState
	}
	for _, ws := range w.ws {
		p.state.Enqueue(ws)
	}
	p.handed(w.part, 1)
	select {
	case ch <- w:
		p.handover.RUnlock()
	case <-ctx.Done():
		p.handover.RUnlock()
		p.handed(w.part, -1) // never handed over
		p.dlq.Release(reserved)
		return false, ctx.Err()
	}
	if !cfg.Flow.Disabled {
		p.depth.RecordDepth("commit", len(ch))
	}
	cfg.Metrics.QueueDepth.WithLabelValues(cfg.Name).Set(float64(len(ch)))
	return false, nil
}
