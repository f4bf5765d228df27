package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
)

// KafkaConfig is how to reach a Kafka cluster (brokers, TLS, SASL).
type KafkaConfig = kafka.Config

// kafkaSource reads every partition of a Kafka topic with read_committed
// isolation: records of aborted transactions are never seen. Its positions
// are Kafka offsets, committed in the pipeline's own transaction, so a
// restart resumes exactly after the last committed record.
type kafkaSource struct {
	cfg   KafkaConfig
	topic string
	parts uint32
	ends  []atomic.Int64 // per partition: last stable offset seen by its reader, -1 unknown

	group groupCommitter
	fleet *fleet // set when the pipeline shares the input through a consumer group
}

// newKafkaSource connects to the cluster and checks that topic exists.
func newKafkaSource(ctx context.Context, cfg KafkaConfig, topic string) (*kafkaSource, error) {
	cl, err := kafka.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	n, err := kafka.EnsureTopic(ctx, cl, topic, kafka.TopicOptions{})
	if err != nil {
		return nil, err
	}
	s := &kafkaSource{cfg: cfg, topic: topic, parts: uint32(n), ends: make([]atomic.Int64, n)}
	for i := range s.ends {
		s.ends[i].Store(-1)
	}
	return s, nil
}

// EndOffset implements EndOffsetSource: the last stable offset of part as
// of its reader's latest fetch.
func (s *kafkaSource) EndOffset(part uint32) (int64, bool) {
	if int(part) >= len(s.ends) {
		return 0, false
	}
	end := s.ends[part].Load()
	return end, end >= 0
}

// Committed implements CommitListener: the committed offsets are reported
// to the consumer group in the background (at most once a second).
func (s *kafkaSource) Committed(pipeline string, positions map[uint32]Position) {
	if s.fleet != nil {
		return // the offsets committed in the Kafka transaction
	}
	s.group.update(s, pipeline, positions)
}

// Close reports the last committed offsets to the consumer group and
// releases the source's connection.
func (s *kafkaSource) Close() error { return s.group.close() }

func (s *kafkaSource) Identity() string   { return "kafka:" + s.topic }
func (s *kafkaSource) Partitions() uint32 { return s.parts }
func (s *kafkaSource) Resumable() bool    { return true }

// Open implements Source. Without follow the reader ends at the partition's
// last stable offset as of Open.
func (s *kafkaSource) Open(ctx context.Context, part uint32, from Position, follow bool) (Reader, error) {
	if s.fleet != nil {
		return s.fleet.open(part, follow)
	}
	p := int32(part)
	cl, err := kafka.Connect(ctx, s.cfg,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {p: kgo.NewOffset().At(from.Offset)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) take offsets too: seeing
		// them lets the reader know it reached an end that lies past an
		// aborted transaction.
		kgo.KeepControlRecords(),
		// Records below the log start were deleted by retention: start at
		// the oldest that is left.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, err
	}
	r := &kafkaReader{cl: cl, topic: s.topic, part: p, lso: &s.ends[part],
		kafkaCursor: kafkaCursor{pos: from, end: -1, src: sourceHash(fmt.Sprintf("%s/%d", s.Identity(), part))}}
	adm := kadm.NewClient(cl)
	hw, err := partitionEnd(ctx, adm.ListEndOffsets, s.topic, p)
	if err == nil && hw < from.Offset {
		err = fmt.Errorf("%w: %s partition %d ends at offset %d, but offsets up to %d are committed; "+
			"if the topic was recreated, process it under a new pipeline name", ErrKafkaOffsetsBehind, s.topic, p, hw, from.Offset)
	}
	if err == nil && !follow {
		r.end, err = partitionEnd(ctx, adm.ListCommittedOffsets, s.topic, p)
	}
	var start int64
	if err == nil {
		start, err = partitionEnd(ctx, adm.ListStartOffsets, s.topic, p)
	}
	if err != nil {
		cl.Close()
		return nil, err
	}
	if start > from.Offset {
		// Retention deleted records this pipeline had not read: they are
		// gone. Start at the oldest left (a bounded read whose every
		// remaining record was deleted ends at once instead of waiting).
		r.pos.Offset, r.deleted = start, start-from.Offset
	}
	return r, nil
}

// partitionEnd returns one partition's offset from a kadm listing (the
// high-water mark, or the last stable offset).
func partitionEnd(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string, part int32) (int64, error) {
	var ends kadm.ListedOffsets
	err := kafka.RetryTransient(ctx, func() (err error) { // a broker down or a leader moving: wait for the cluster
		if ends, err = list(ctx, topic); err == nil {
			err = ends.Error()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("kafka: end offsets of %s: %w", topic, err)
	}
	o, ok := ends.Lookup(topic, part)
	if !ok {
		return 0, fmt.Errorf("kafka: no end offset for %s partition %d", topic, part)
	}
	return o.Offset, nil
}

type kafkaReader struct {
	kafkaCursor // end: without follow, the last stable offset at Open
	cl          *kgo.Client
	topic       string
	part        int32
	lso         *atomic.Int64
	deleted     int64 // offsets deleted by retention between the committed position and the log start
}

// configure implements configurableReader: it reports a gap retention
// left after the committed position (those records were never processed).
func (r *kafkaReader) configure(c readerConfig) {
	if r.deleted > 0 && c.resumed && c.logger != nil {
		warnDeleted(c.logger, r.topic, r.part, r.pos.Offset-r.deleted, r.pos.Offset)
	}
}

// warnDeleted reports that retention deleted a partition's records from
// offset committed up to start before the pipeline processed them.
func warnDeleted(l *slog.Logger, topic string, part int32, committed, start int64) {
	l.Warn("kafka: records were deleted by the topic's retention before they were processed: they are skipped; "+
		"raise retention.ms/retention.bytes or keep the pipeline running", "topic", topic, "partition", part,
		"committed_offset", committed, "log_start_offset", start, "skipped_offsets", start-committed)
}

// kafkaCursor is a kafka: reader's place in its partition.
type kafkaCursor struct {
	buf []*kgo.Record // fetched, not yet returned
	pos Position      // just after the last record returned
	end int64         // without follow: where the read ends; else -1
	src uint64        // the source's hash, for record ids
}

func (c *kafkaCursor) done() bool { return c.end >= 0 && c.pos.Offset >= c.end }

// take moves up to max fetched records (about maxBytes) into dst and
// returns how many. A record before pos goes to behind, which skips it
// (nil) or ends the read with an error.
func (c *kafkaCursor) take(dst []abi.Record, max, maxBytes int, behind func(*kgo.Record) error) ([]abi.Record, int, error) {
	n, bytes := 0, 0
	for len(c.buf) > 0 && n < max && (bytes < maxBytes || n == 0) && !c.done() {
		k := c.buf[0]
		c.buf = c.buf[1:]
		if k.Offset < c.pos.Offset {
			if err := behind(k); err != nil {
				return dst, n, err
			}
			continue
		}
		var ok bool
		if dst, ok = appendKafkaRecord(dst, k, &c.pos, c.src); ok {
			n++
			bytes += len(k.Value) + len(k.Key)
		}
	}
	return dst, n, nil
}

func (r *kafkaReader) Read(ctx context.Context, dst []abi.Record, max, maxBytes int) ([]abi.Record, Position, error) {
	from := r.pos.Offset // a read past transaction markers alone returns, to hand the position over
	for {
		if r.done() {
			return dst, r.pos, io.EOF
		}
		if len(r.buf) == 0 {
			fs := r.cl.PollRecords(ctx, max)
			var ferr error
			fs.EachError(func(t string, p int32, err error) {
				if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					ferr = fmt.Errorf("kafka: fetch %s partition %d: %w", t, p, err)
				}
			})
			if ferr != nil {
				return dst, r.pos, ferr
			}
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				if p.LastStableOffset >= 0 {
					r.lso.Store(p.LastStableOffset)
				}
			})
			// Records polled as ctx ended are kept: the client has moved
			// past them, so dropping them would skip them.
			if r.buf = fs.Records(); len(r.buf) == 0 {
				if err := ctx.Err(); err != nil {
					return dst, r.pos, err
				}
			}
			continue
		}
		var n int
		var err error
		dst, n, err = r.take(dst, max, maxBytes, func(k *kgo.Record) error {
			// The broker's log is behind what this pipeline committed: the
			// topic was deleted and created again (or truncated). Skipping
			// up to the old position would lose records.
			return fmt.Errorf("%w: %s partition %d returned offset %d, but offsets up to %d are committed; "+
				"if the topic was recreated, process it under a new pipeline name", ErrKafkaOffsetsBehind, r.topic, r.part, k.Offset, r.pos.Offset)
		})
		if err != nil {
			return dst, r.pos, err
		}
		if n > 0 || r.done() || r.pos.Offset != from {
			return dst, r.pos, nil
		}
	}
}

// appendKafkaRecord moves pos past k and, unless k is a control record
// (a transaction marker), appends it to dst as a record of source src.
func appendKafkaRecord(dst []abi.Record, k *kgo.Record, pos *Position, src uint64) ([]abi.Record, bool) {
	pos.Offset = k.Offset + 1
	if k.Attrs.IsControl() {
		return dst, false
	}
	pos.Ordinal++
	return append(dst, abi.Record{Key: k.Key, Value: k.Value, Headers: kafkaHeaders(k.Headers), Partition: uint32(k.Partition),
		Offset: k.Offset, Timestamp: k.Timestamp.UnixMilli(), ID: positionID(src, k.Offset)}), true
}

func kafkaHeaders(hs []kgo.RecordHeader) []abi.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]abi.Header, len(hs))
	for i, h := range hs {
		out[i] = abi.Header{Key: []byte(h.Key), Value: h.Value}
	}
	return out
}

func (r *kafkaReader) Close() error {
	r.cl.Close()
	return nil
}
