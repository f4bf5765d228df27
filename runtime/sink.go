package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/heliosdb/helios-wasm/storage"
)

// OutRecord is one operator output on its way to a sink.
type OutRecord struct {
	Key       []byte
	Value     []byte
	Headers   []byte // encoded headers block
	Timestamp int64
	ID        [16]byte
}

// storeEntries hands out OutRecords as storage entries to Batch.AppendN,
// for sinks that write into the data directory, one reused Entry at a time.
type storeEntries struct{ e storage.Entry }

func (s *storeEntries) entries(recs []OutRecord) func(int) *storage.Entry {
	return func(i int) *storage.Entry {
		r := &recs[i]
		s.e = storage.Entry{Timestamp: r.Timestamp, ID: r.ID, Key: r.Key, Headers: r.Headers, Value: r.Value}
		return &s.e
	}
}

// Sink is where a pipeline writes outputs, in its transactions. A sink
// implements StoreSink (its outputs live in the data directory) or TxnSink
// (they live elsewhere), and may implement RecordAcceptor and
// AtLeastOnceSink.
type Sink interface {
	// Identity names the sink ("file:/abs/path", "log:topic", "stdout").
	Identity() string
	Close() error
}

// StoreSink is a sink that writes into the data directory: Stage adds a
// transaction's outputs to the transaction's own batch, which commits
// atomically with the decision record, so there is nothing to prepare and
// nothing to recover.
type StoreSink interface {
	Sink
	Stage(b *storage.Batch, outs []Output) error
}

// TxnSink is a sink outside the data directory. It takes part in the
// pipeline's transactions by two-phase commit; the decision record in the
// data directory is the commit point.
//
// Prepare writes transaction txn's outputs durably, visible to nobody yet
// where the target allows it, and returns what Recover needs to roll them
// forward or back (JSON, kept in the decision record; nil keeps the last).
// Commit makes them visible and Abort discards them; both are idempotent,
// and Commit is retried until it succeeds once the decision is durable,
// unless it returns an error wrapping storage.ErrFenced (a newer instance
// of the pipeline has taken the target over: this one stops). A sink may
// also implement StoreSink, to keep what it needs in the transaction's
// batch (the kafka: sink keeps its outputs there, to produce them again).
// Recover runs before the first transaction and reconciles the target with
// the last committed transaction: it discards whatever a transaction that
// never reached its decision left behind.
type TxnSink interface {
	Sink
	Prepare(ctx context.Context, txn uint64, outs []Output) (json.RawMessage, error)
	Commit(ctx context.Context, txn uint64) error
	Abort(ctx context.Context, txn uint64) error
	Recover(ctx context.Context, last Committed) error
}

// Committed is what a TxnSink's Recover learns about the pipeline's last
// committed transaction.
type Committed struct {
	Pipeline string // the pipeline's name
	DataDir  string // its data directory, absolute
	// Txn is the last committed transaction, and Data what the sink's
	// Prepare returned for it (or for an earlier one, when later ones
	// returned nil). Data is nil when the sink never prepared a committed
	// transaction.
	Txn  uint64
	Data json.RawMessage
}

// AtLeastOnceSink is implemented by sinks that cannot take outputs back
// (stdout): a pipeline writing to one warns that it is at-least-once.
type AtLeastOnceSink interface {
	Sink
	AtLeastOnce()
}

// ParseSink interprets a sink spec: "file:PATH", "log:TOPIC",
// "kafka:TOPIC" or "-". inputPartitions sizes a topic the sink creates.
func ParseSink(ctx context.Context, spec string, ep Endpoints, inputPartitions uint32) (Sink, error) {
	db := ep.DB
	switch {
	case spec == "-":
		return newStdoutSink(), nil
	case strings.HasPrefix(spec, "file:"):
		p := strings.TrimPrefix(spec, "file:")
		if p == "" {
			return nil, fmt.Errorf("output %q: missing path after file:", spec)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		return newFileSink(abs)
	case strings.HasPrefix(spec, "log:"):
		return newLogSink(db, strings.TrimPrefix(spec, "log:"), inputPartitions)
	case strings.HasPrefix(spec, "kafka:"):
		topic := strings.TrimPrefix(spec, "kafka:")
		if topic == "" {
			return nil, fmt.Errorf("output %q: missing topic after kafka:", spec)
		}
		if ep.Kafka == nil {
			return nil, fmt.Errorf("output %q: no Kafka brokers configured", spec)
		}
		return newKafkaSink(ctx, *ep.Kafka, db, topic, inputPartitions)
	default:
		return nil, fmt.Errorf("output %q: want file:PATH, log:TOPIC, kafka:TOPIC or - (stdout)", spec)
	}
}
