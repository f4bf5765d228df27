package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors of a TxnWriter. Both leave the writer unusable: close it. The
// pipeline learns what became of its last transaction from LastCommitted
// on a new writer.
var (
	// ErrFenced means another TxnWriter with the same transactional id (a
	// newer instance of this pipeline) has started: this one must stop.
	ErrFenced = errors.New("kafka: a newer instance of this pipeline has started")
	// ErrTxnTimedOut means the broker aborted the transaction because it
	// stayed open longer than TxnOptions.Timeout.
	ErrTxnTimedOut = errors.New("kafka: the broker aborted the transaction after its timeout")
)

// DefaultTxnTimeout is TxnOptions.Timeout's default.
const DefaultTxnTimeout = 60 * time.Second

// MarkerTopicSuffix names the topic of a pipeline's commit markers:
// PIPELINE + MarkerTopicSuffix.
const MarkerTopicSuffix = "-helios-txn"

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one output record.
type Record struct {
	// Key nil makes the record key-less (an empty, non-nil key is a key,
	// as in Kafka's Java client).
	Key   []byte
	Value []byte
	// Headers keep their order.
	Headers []Header
	// Timestamp is in Unix milliseconds; 0 stamps the record when produced.
	Timestamp int64
	// Partition is the source partition the record came from: a key-less
	// record goes to Partition modulo the topic's partition count.
	Partition uint32
}

// TxnOptions configure a TxnWriter.
type TxnOptions struct {
	// Topic says what to do when the output topic is missing (see
	// EnsureTopic): ErrTopicMissing, or create it.
	Topic TopicOptions
	// Timeout is the transaction timeout the broker enforces (Kafka's
	// transaction.timeout.ms): a transaction still open that long after
	// Prepare began is aborted by the broker, and Decide then fails with
	// ErrTxnTimedOut. Keep it above the pipeline's own transaction timeout
	// (30 s by default), so that the pipeline aborts a slow transaction
	// itself first. The broker refuses a timeout above its
	// transaction.max.timeout.ms (15 minutes by default) at open. Default
	// DefaultTxnTimeout (60 s).
	Timeout time.Duration
	// Instance, when set, makes the transactional id
	// "helios-wasm:PIPELINE:INSTANCE" instead of one per output topic, and
	// keys the markers by it: one writer per instance of a pipeline whose
	// instances share the input through a consumer group (KIP-447: the
	// group's generation, not the transactional id, fences a zombie).
	Instance string
}

// TxnWriter writes a pipeline's outputs to one Kafka topic, one Kafka
// transaction per pipeline transaction. Each transaction also writes a
// marker record, "transaction N committed", to the pipeline's marker topic,
// atomically with the outputs, which LastCommitted reads back after a
// crash: the pipeline learns whether Kafka has transaction N (and, if not,
// produces it again from its outbox).
//
// Per transaction N: Prepare(N) produces the outputs and the marker and
// waits until the broker has them (nothing is visible to read_committed
// readers yet); Decide(N) commits, or Abort(N) aborts. Transaction ids must
// increase. A TxnWriter is not safe for concurrent use.
//
// Names, derived from the pipeline's (whose characters are those of a
// Kafka topic, so ':' separates without ambiguity):
//   - transactional.id "helios-wasm:PIPELINE:TOPIC": stable across restarts,
//     so a new writer fences the previous one;
//   - marker topic PIPELINE-helios-txn: compacted, one partition, created
//     when missing; its records are keyed by the output topic, with the
//     transaction id in decimal as value.
//
// Partitioning: a record with a key goes to the partition Kafka's Java
// client picks for that key (murmur2 of the key, positive, modulo the
// partition count), so Java producers and Kafka's tools agree with it; a
// key-less record keeps its source partition, modulo the partition count.
// The partition count is read at open: partitions added while the writer
// runs are used by the next writer.
type TxnWriter struct {
	cfg         Config
	cl          *kgo.Client
	topic       string
	markers     string
	txnID       string
	markerKey   string // the markers' key: the output topic, or the transactional id
	parts       int32
	timeout     time.Duration
	keyed       kgo.TopicPartitioner
	prepared    uint64 // the transaction in progress, if inTxn
	inTxn       bool
	began       time.Time
	last        uint64 // the last transaction prepared
	lastAborted bool   // ... and aborted since: it may be prepared again
	failed      string // the topic of the record whose produce failed in the last Prepare
	broken      error  // set by an error that leaves the writer unusable
}

// OpenTxnWriter connects to the cluster (Connect's errors), checks (or
// creates) the output topic and the marker topic, and registers the
// transactional id with the broker, which fences any previous writer of
// the same pipeline and topic and aborts its open transaction. After it
// returns, LastCommitted is final for transactions of earlier writers.
func OpenTxnWriter(ctx context.Context, cfg Config, topic, pipeline string, opts TxnOptions) (*TxnWriter, error) {
	if topic == "" || pipeline == "" {
		return nil, fmt.Errorf("kafka: transactional output needs a topic and a pipeline name (got %q, %q)", topic, pipeline)
	}
	for _, n := range []struct{ what, name string }{{"topic", topic}, {"pipeline name", pipeline}} {
		if i := strings.IndexFunc(n.name, notTopicChar); i >= 0 {
			return nil, fmt.Errorf("kafka: %s %q: %q at byte %d; Kafka topic names take letters, digits, '.', '_' and '-'", n.what, n.name, n.name[i], i)
		}
	}
	markers := pipeline + MarkerTopicSuffix
	if len(markers) > 249 {
		return nil, fmt.Errorf("kafka: marker topic %s: longer than Kafka's 249 characters; use a shorter pipeline name", markers)
	}
	if topic == markers {
		return nil, fmt.Errorf("kafka: output topic %s is the pipeline's marker topic; choose another output topic", topic)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTxnTimeout
	}
	if opts.Timeout < time.Second {
		return nil, fmt.Errorf("kafka: transaction timeout %s: want at least 1s", opts.Timeout)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &TxnWriter{cfg: cfg, topic: topic, markers: markers, txnID: "helios-wasm:" + pipeline + ":" + topic, markerKey: topic,
		timeout: opts.Timeout, keyed: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
	if opts.Instance != "" {
		w.txnID = "helios-wasm:" + pipeline + ":" + opts.Instance
		w.markerKey = w.txnID
	}
	cl, err := Connect(ctx, cfg,
		kgo.TransactionalID(w.txnID),
		kgo.TransactionTimeout(opts.Timeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		return nil, err
	}
	w.cl = cl
	if w.parts, err = EnsureTopic(ctx, cl, topic, opts.Topic); err != nil {
		cl.Close()
		return nil, err
	}
	compact := "compact"
	if _, err := EnsureTopic(ctx, cl, markers, TopicOptions{Create: true, Partitions: 1,
		Config: map[string]*string{"cleanup.policy": &compact}}); err != nil {
		cl.Close()
		if errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) {
			return nil, fmt.Errorf("%w: marker topic %s of pipeline %s: %v; let the user create it, or create it (compacted, one partition)",
				ErrAuth, markers, pipeline, err)
		}
		return nil, fmt.Errorf("kafka: marker topic %s of pipeline %s: %w", markers, pipeline, err)
	}
	// InitProducerId: fences the previous writer and waits (the client
	// retries CONCURRENT_TRANSACTIONS) until the broker has aborted its
	// open transaction.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		if errors.Is(err, kerr.InvalidTransactionTimeout) {
			return nil, fmt.Errorf("kafka: transactional id %s: the brokers refuse a transaction timeout of %s (above their transaction.max.timeout.ms): %w",
				w.txnID, opts.Timeout, err)
		}
		return nil, w.explain("open", err)
	}
	return w, nil
}

// notTopicChar is true for a rune Kafka does not allow in a topic name.
func notTopicChar(c rune) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
}

// Partitions is the output topic's partition count, as of open.
func (w *TxnWriter) Partitions() int32 { return w.parts }

// TransactionalID is the writer's Kafka transactional id.
func (w *TxnWriter) TransactionalID() string { return w.txnID }

// MarkerTopic is the topic of the pipeline's commit markers.
func (w *TxnWriter) MarkerTopic() string { return w.markers }

// partition places r (see TxnWriter).
func (w *TxnWriter) partition(r *Record) int32 {
	if r.Key != nil {
		return int32(w.keyed.Partition(&kgo.Record{Key: r.Key}, int(w.parts)))
	}
	return int32(r.Partition % uint32(w.parts))
}

// Prepare begins Kafka transaction txn, produces recs and the marker "txn
// committed" in it, and returns once the broker has acknowledged all of
// them: nothing of it is visible to read_committed readers until Decide.
// On error the transaction is aborted (or, when the writer is fenced, left
// to the broker to abort).
func (w *TxnWriter) Prepare(ctx context.Context, txn uint64, recs []Record) error {
	_, err := w.PrepareTxn(ctx, txn, Txn{Outputs: recs})
	return err
}

// Txn is what one Kafka transaction holds besides its marker.
type Txn struct {
	// Outputs go to the writer's topic, placed as TxnWriter says.
	Outputs []Record
	// Placed are records for other topics (a state changelog, a
	// dead-letter topic) at the partition each names.
	Placed []PlacedRecord
	// Offsets, when set, are a consumer group's input offsets committed in
	// the transaction (KIP-447).
	Offsets *GroupOffsets
	// OffsetMetadata, when set, gives the offsets' metadata per partition
	// once the offsets of Placed are known.
	OffsetMetadata func(placed []int64) map[int32]string
}

// PlacedRecord is a record for a given topic and partition. Value nil is a
// tombstone (a deletion, in a compacted topic).
type PlacedRecord struct {
	Topic     string
	Partition int32
	Key       []byte
	Value     []byte
	Headers   []Header
}

// GroupOffsets are a consumer group member's input offsets: the broker
// accepts them only from the member of the group's current generation, so
// an instance that lost its partitions in a rebalance (a zombie) cannot
// commit them, and its transaction aborts.
type GroupOffsets struct {
	Group      string
	MemberID   string
	Generation int32
	InstanceID *string // static membership
	Topic      string
	TopicID    [16]byte
	// Next maps a partition to the offset of the next record to read.
	Next map[int32]int64
	// Metadata is committed with a partition's offset (optional).
	Metadata map[int32]string
}

// PrepareTxn is Prepare with more in the transaction: it returns the
// offset the broker gave each of t.Placed, in order.
func (w *TxnWriter) PrepareTxn(ctx context.Context, txn uint64, t Txn) ([]int64, error) {
	if w.broken != nil {
		return nil, w.broken
	}
	if w.inTxn {
		return nil, fmt.Errorf("kafka: prepare of transaction %d: transaction %d is prepared and not decided", txn, w.prepared)
	}
	if txn < w.last || txn == w.last && !w.lastAborted {
		return nil, fmt.Errorf("kafka: prepare of transaction %d: transaction ids must increase, and %d was prepared before", txn, w.last)
	}
	if err := w.cl.BeginTransaction(); err != nil {
		return nil, w.fail("prepare", txn, err)
	}
	w.inTxn, w.prepared, w.last, w.lastAborted, w.began = true, txn, txn, false, time.Now()

	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr, w.failed = err, r.Topic
			}
			mu.Unlock()
		}
	}
	w.failed = ""
	w.produceOutputs(ctx, t.Outputs, promise)
	placed := make([]int64, len(t.Placed))
	for i := range t.Placed {
		r := &t.Placed[i]
		w.cl.Produce(ctx, &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: kafkaHeaders(r.Headers)},
			func(kr *kgo.Record, err error) {
				placed[i] = kr.Offset
				promise(kr, err)
			})
	}
	w.cl.Produce(ctx, &kgo.Record{Topic: w.markers, Partition: 0, Key: []byte(w.markerKey),
		Value: strconv.AppendUint(nil, txn, 10)}, promise)
	err := w.cl.Flush(ctx)
	mu.Lock()
	if firstErr != nil {
		err = firstErr
	}
	mu.Unlock()
	if err == nil && t.Offsets != nil {
		if t.OffsetMetadata != nil {
			t.Offsets.Metadata = t.OffsetMetadata(placed)
		}
		err = w.commitOffsets(ctx, t.Offsets)
	}
	if err != nil {
		err = w.explain(fmt.Sprintf("prepare of transaction %d", txn), err)
		if !errors.Is(err, ErrFenced) && !errors.Is(err, ErrTxnTimedOut) {
			actx, cancel := context.WithTimeout(context.Background(), w.cfg.ConnectTimeout)
			aerr := w.abort(actx)
			cancel()
			if aerr == nil {
				return nil, err
			}
			err = errors.Join(err, aerr)
		}
		w.broken = err
		return nil, err
	}
	return placed, nil
}

// produceOutputs produces recs, in order per partition. Producing costs
// about a microsecond per record on the caller's goroutine; large
// transactions spread it over producers, one per output partition residue,
// which keeps each partition's order.
func (w *TxnWriter) produceOutputs(ctx context.Context, recs []Record, promise func(*kgo.Record, error)) {
	n := min(runtime.GOMAXPROCS(0), int(w.parts))
	if len(recs) < 4096 || n < 2 {
		n = 1
	}
	parts := make([]int32, len(recs))
	for i := range recs {
		parts[i] = w.partition(&recs[i])
	}
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range recs {
				r, p := &recs[i], parts[i]
				if int(p)%n != g {
					continue
				}
				kr := &kgo.Record{Topic: w.topic, Partition: p, Key: r.Key, Value: r.Value, Headers: kafkaHeaders(r.Headers)}
				if r.Timestamp != 0 {
					kr.Timestamp = time.UnixMilli(r.Timestamp)
				}
				w.cl.Produce(ctx, kr, promise)
			}
		}()
	}
	wg.Wait()
}

func kafkaHeaders(hs []Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}

// Decide commits transaction txn: its outputs and its marker become
// visible together. When Decide fails
// the outcome may be unknown (a lost reply): the writer is then unusable,
// and LastCommitted on a new writer says whether txn committed.
func (w *TxnWriter) Decide(ctx context.Context, txn uint64) error {
	if w.broken != nil {
		return w.broken
	}
	if !w.inTxn || w.prepared != txn {
		return w.notPrepared("decide", txn)
	}
	w.inTxn = false
	if err := w.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return w.fail(fmt.Sprintf("commit of transaction %d", txn), txn, err)
	}
	return nil
}

// Abort aborts transaction txn; nothing of it becomes visible. Aborting
// when no transaction is prepared does nothing.
func (w *TxnWriter) Abort(ctx context.Context, txn uint64) error {
	if w.broken != nil {
		return w.broken
	}
	if !w.inTxn {
		return nil
	}
	if w.prepared != txn {
		return w.notPrepared("abort", txn)
	}
	if err := w.abort(ctx); err != nil {
		err = w.explain(fmt.Sprintf("abort of transaction %d", txn), err)
		w.broken = err
		return err
	}
	return nil
}

func (w *TxnWriter) abort(ctx context.Context) error {
	w.inTxn = false
	if err := w.cl.AbortBufferedRecords(ctx); err != nil {
		return err
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return err
	}
	w.lastAborted = true
	return nil
}

func (w *TxnWriter) notPrepared(op string, txn uint64) error {
	if !w.inTxn {
		return fmt.Errorf("kafka: %s of transaction %d: no transaction is prepared", op, txn)
	}
	return fmt.Errorf("kafka: %s of transaction %d: transaction %d is the one prepared", op, txn, w.prepared)
}

// fail makes err the writer's last word.
func (w *TxnWriter) fail(op string, txn uint64, err error) error {
	w.inTxn = false
	w.broken = w.explain(op, err)
	return w.broken
}

// explain turns a producer error into one of the package's sentinels where
// one applies, naming the transactional id and the topic.
func (w *TxnWriter) explain(op string, err error) error {
	topic := w.topic
	if w.failed != "" {
		topic = w.failed // a changelog, dead-letter or marker record failed
	}
	who := fmt.Sprintf("transactional id %s, topic %s", w.txnID, topic)
	switch {
	case w.inTxnFor() >= w.timeout && (errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidTxnState) || errors.Is(err, kerr.TransactionAbortable)):
		// A broker that aborts a transaction on timeout bumps the
		// producer's epoch, as a new writer does, and then answers the
		// commit with INVALID_TXN_STATE (Kafka 4 with transaction
		// version 2) or an epoch error: the time since Prepare tells a
		// timeout from a takeover.
		return fmt.Errorf("%w: %s (%s: open %s, timeout %s: %v); raise the transaction timeout, or commit smaller batches",
			ErrTxnTimedOut, op, who, w.inTxnFor().Round(time.Millisecond), w.timeout, err)
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		return fmt.Errorf("%w: %s (%s: %v); stop this instance", ErrFenced, op, who, err)
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("%w: %s (%s: %v); grant the user Write on the transactional id and on the topics %s and %s",
			ErrAuth, op, who, err, topic, w.markers)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("%w: %s (%s: %v); was it deleted?", ErrTopicMissing, op, who, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("kafka: %s (%s): a record is larger than the topic accepts (its max.message.bytes): %w", op, who, err)
	}
	return fmt.Errorf("kafka: %s (%s): %w", op, who, err)
}

func (w *TxnWriter) inTxnFor() time.Duration {
	if w.began.IsZero() {
		return 0
	}
	return time.Since(w.began)
}

// LastCommitted returns the id of the newest transaction whose commit is
// recorded in the marker topic for this writer's output topic, and false
// when there is none. It reads the marker topic with read_committed from
// its end backwards, so a transaction prepared but not committed (by this
// writer, or by an earlier one the open fenced) never counts. It is meant
// for recovery, right after OpenTxnWriter, which waits until the previous
// writer's last transaction is complete: Kafka writes a commit's records
// to the partitions just after Decide returns, so this writer's own latest
// Decide may not show yet.
func (w *TxnWriter) LastCommitted(ctx context.Context) (uint64, bool, error) {
	adm := kadm.NewClient(w.cl)
	end, err := w.markerOffset(ctx, adm.ListCommittedOffsets)
	if err != nil {
		return 0, false, err
	}
	start, err := w.markerOffset(ctx, adm.ListStartOffsets)
	if err != nil {
		return 0, false, err
	}
	// Each transaction takes two offsets (its marker and Kafka's commit
	// or abort record): the newest marker is normally among the last
	// few. Older windows are read only when it is not.
	for window := int64(64); end > start; window *= 8 {
		from := max(start, end-window)
		txn, ok, err := w.scanMarkers(ctx, from, end)
		if err != nil || ok {
			return txn, ok, err
		}
		end = from
	}
	return 0, false, nil
}

func (w *TxnWriter) markerOffset(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (int64, error) {
	offs, err := list(ctx, w.markers)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("kafka: offsets of marker topic %s: %w", w.markers, err)
	}
	o, ok := offs.Lookup(w.markers, 0)
	if !ok {
		return 0, fmt.Errorf("kafka: marker topic %s: %w", w.markers, ErrTopicMissing)
	}
	return o.Offset, nil
}

// scanMarkers reads the marker partition's committed records in [from,
// end) and returns the last marker for w.topic. Every offset below end
// exists or existed and the last one (Kafka's commit or abort record at
// end-1, kept because the consumer keeps control records) is in the active
// segment, which compaction never touches: reading up to it ends the scan.
func (w *TxnWriter) scanMarkers(ctx context.Context, from, end int64) (uint64, bool, error) {
	opts, err := w.cfg.clientOpts()
	if err != nil {
		return 0, false, err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.markers: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return 0, false, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	var (
		txn   uint64
		found bool
	)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, false, fmt.Errorf("kafka: reading marker topic %s from offset %d to %d: %w", w.markers, from, end, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return 0, false, fmt.Errorf("kafka: reading marker topic %s: %w", w.markers, ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if done || r.Offset >= end {
				done = true
				return
			}
			if r.Attrs.IsControl() || string(r.Key) != w.markerKey {
				done = r.Offset == end-1
				return
			}
			n, err := strconv.ParseUint(string(r.Value), 10, 64)
			if err != nil {
				ferr = fmt.Errorf("kafka: marker topic %s offset %d: value %q is not a transaction id; the topic belongs to helios-wasm, do not write to it",
					w.markers, r.Offset, r.Value)
				done = true
				return
			}
			txn, found = n, true
			done = r.Offset == end-1
		})
		if ferr != nil {
			return 0, false, ferr
		}
		if done {
			return txn, found, nil
		}
	}
}

// Close releases the writer's connections. A transaction still prepared
// is left to the broker, which aborts it when the next writer opens or
// when its timeout expires.
func (w *TxnWriter) Close() error {
	w.cl.Close()
	return nil
}

// Transient reports whether err is a broker being unreachable or moving
// (a refused or reset connection, a timeout, a retriable Kafka error such
// as NOT_COORDINATOR or NOT_LEADER_OR_FOLLOWER): a transaction that failed
// with it, once aborted or fenced, can be made again once the cluster has
// moved the broker's work elsewhere. Errors this package has classified
// (ErrFenced, ErrTxnTimedOut, ErrTopicMissing, ErrAuth) are not transient,
// whatever Kafka error they wrap.
func Transient(err error) bool {
	if errors.Is(err, ErrFenced) || errors.Is(err, ErrTxnTimedOut) || errors.Is(err, ErrTopicMissing) || errors.Is(err, ErrAuth) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || kerr.IsRetriable(err)
}
