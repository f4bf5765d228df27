package runtime

import (
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

// Sink is where a pipeline writes outputs. It is a transaction Participant:
// outputs staged in a transaction become visible only if it commits.
type Sink interface {
	Participant
	// Identity names the sink ("file:/abs/path", "log:topic", "stdout").
	Identity() string
	// Stage adds the outputs of one batch read from partition part.
	Stage(txn *Txn, part uint32, recs []OutRecord) error
	// ExactlyOnce is false for sinks that can only be at-least-once (stdout).
	ExactlyOnce() bool
	Close() error
}

// ParseSink interprets a sink spec: "file:PATH", "log:TOPIC" or "-".
// inputPartitions sizes a log topic the sink creates.
func ParseSink(spec string, db *storage.DB, inputPartitions uint32) (Sink, error) {
	switch {
	case spec == "-":
		return NewStdoutSink(), nil
	case strings.HasPrefix(spec, "file:"):
		p := strings.TrimPrefix(spec, "file:")
		if p == "" {
			return nil, fmt.Errorf("output %q: missing path after file:", spec)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		return NewFileSink(abs)
	case strings.HasPrefix(spec, "log:"):
		return NewLogSink(db, strings.TrimPrefix(spec, "log:"), inputPartitions)
	default:
		return nil, fmt.Errorf("output %q: want file:PATH, log:TOPIC or - (stdout)", spec)
	}
}
