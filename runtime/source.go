package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// Source is where a pipeline reads records: a JSON Lines file, a topic of the
// embedded log, or standard input.
type Source interface {
	// Identity names the source in offsets and ids ("file:/abs/path",
	// "log:topic", "stdin"). It must stay stable across runs.
	Identity() string
	Partitions() uint32
	// Open returns a reader of partition part positioned at from. Without
	// follow the reader ends (io.EOF) at the end of the input as of Open.
	Open(ctx context.Context, part uint32, from Position, follow bool) (Reader, error)
	// Resumable is false for inputs that cannot be re-read (stdin): their
	// pipelines are at-least-once.
	Resumable() bool
}

// EndOffsetSource is implemented by sources that know where each
// partition ends, so that the pipeline reports consumer lag
// (helios_consumer_lag) as the distance from its committed position.
type EndOffsetSource interface {
	// EndOffset returns the offset just after the last record of part (as
	// comparable with Position.Offset), or ok false when it is not known.
	EndOffset(part uint32) (end int64, ok bool)
}

// CommitListener is implemented by sources that want to know what a
// pipeline has committed, for example to report progress to the system
// they read from. Committed is called after each commit with the committed
// position of the partitions it covered; it must not block.
type CommitListener interface {
	Committed(pipeline string, positions map[uint32]Position)
}

// Reader reads one partition of a source.
type Reader interface {
	// Read appends up to max records (and roughly maxBytes) to dst and
	// returns the position just after the last one. The records' slices are
	// valid until the next Read. It returns io.EOF once the input has ended,
	// and blocks while following a source with nothing new.
	Read(ctx context.Context, dst []abi.Record, max, maxBytes int) ([]abi.Record, Position, error)
	Close() error
}

// inputError locates a bad input record.
type inputError struct {
	Source string
	Line   int64 // 1-based, 0 when not line-oriented
	Offset int64
	Err    error
}

func (e *inputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d (byte %d): %v", e.Source, e.Line, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s offset %d: %v", e.Source, e.Offset, e.Err)
}

func (e *inputError) Unwrap() []error { return []error{ErrBadInput, e.Err} }

// Endpoints are what source and sink specs refer to: the data directory's
// embedded log and, for kafka: specs, a Kafka cluster.
type Endpoints struct {
	DB *storage.DB
	// Kafka is the cluster of kafka:TOPIC specs; nil refuses them.
	Kafka *KafkaConfig
}

// ParseSource interprets a source spec: "file:PATH", "log:TOPIC",
// "kafka:TOPIC" or "-".
func ParseSource(ctx context.Context, spec string, ep Endpoints) (Source, error) {
	db := ep.DB
	switch {
	case spec == "-":
		return newStdinSource(), nil
	case strings.HasPrefix(spec, "file:"):
		p := strings.TrimPrefix(spec, "file:")
		if p == "" {
			return nil, fmt.Errorf("input %q: missing path after file:", spec)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		return newFileSource(abs)
	case strings.HasPrefix(spec, "log:"):
		return newLogSource(db, strings.TrimPrefix(spec, "log:"))
	case strings.HasPrefix(spec, "kafka:"):
		topic := strings.TrimPrefix(spec, "kafka:")
		if topic == "" {
			return nil, fmt.Errorf("input %q: missing topic after kafka:", spec)
		}
		if ep.Kafka == nil {
			return nil, fmt.Errorf("input %q: no Kafka brokers configured", spec)
		}
		return newKafkaSource(ctx, *ep.Kafka, topic)
	default:
		return nil, fmt.Errorf("input %q: want file:PATH, log:TOPIC, kafka:TOPIC or - (stdin)", spec)
	}
}
