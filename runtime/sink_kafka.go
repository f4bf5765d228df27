package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
	"github.com/heliosdb/helios-wasm/storage"
)

// kafkaSink writes a pipeline's outputs to a Kafka topic, exactly once.
//
// The decision record in the data directory stays the commit point. Each
// transaction's outputs also go into the pipeline's outbox, a topic of the
// embedded log (OutboxTopic), in the transaction's own batch (StoreSink),
// which keeps only the last transaction's outputs. Prepare produces them in
// a Kafka transaction together with a marker "transaction N committed"
// (kafka.TxnWriter); phase 2 commits it. When the process dies between the
// decision and the Kafka commit, the broker aborts the open Kafka
// transaction as soon as the next writer opens, and Recover, finding the
// last committed marker behind the decision, produces the outbox again as
// transaction N. Phase 2 is idempotent the same way: a failed Kafka commit
// reopens the writer and either finds the marker or produces the outbox
// again.
type kafkaSink struct {
	cfg   kafka.Config
	db    *storage.DB
	topic string
	parts uint32 // outbox partitions: the input's
	opts  kafka.TxnOptions

	w        *kafka.TxnWriter // opened by Recover
	produced bool             // the prepared transaction has outputs (a Kafka transaction)
	pipeline string
	outbox   string
	storeEntries
	recs []kafka.Record // scratch

	fleet    *fleet // set when a kafka: input shares its partitions through a consumer group
	instance string // the fleet instance's id
}

// A kafka: output's transactions: up to kafkaMaxBatchesPerTxn batches,
// gathered for up to kafkaTxnLinger (Config.MaxBatchesPerTxn).
const (
	kafkaMaxBatchesPerTxn = 64
	kafkaTxnLinger        = 20 * time.Millisecond
)

// kafkaSinkData is the sink's recovery data in the decision record: the
// last transaction that wrote (and so produced) to Topic.
type kafkaSinkData struct {
	Topic string `json:"topic"`
	Txn   uint64 `json:"txn"`
	// Instance is the id of this data directory's instance in a fleet
	// (fleet.go), which names its transactional id.
	Instance string `json:"instance,omitempty"`
}

// OutboxTopic is the topic of the embedded log that keeps the last
// transaction's outputs of a pipeline writing to Kafka.
func outboxTopic(pipeline string) string { return "__outbox." + pipeline }

// newKafkaSink checks the cluster and the topic now, so that a bad
// configuration fails before anything is read; the transactional writer
// opens in Recover, once the pipeline's name is known.
func newKafkaSink(ctx context.Context, cfg kafka.Config, db *storage.DB, topic string, inputPartitions uint32) (*kafkaSink, error) {
	s := &kafkaSink{cfg: cfg, db: db, topic: topic, parts: max(inputPartitions, 1),
		opts: kafka.TxnOptions{Topic: kafka.TopicOptions{Create: cfg.CreateTopics, Partitions: cfg.Partitions}}}
	if s.opts.Topic.Partitions == 0 {
		s.opts.Topic.Partitions = int32(s.parts)
	}
	cl, err := kafka.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, err := kafka.EnsureTopic(ctx, cl, topic, s.opts.Topic); err != nil {
		return nil, fmt.Errorf("output kafka:%s: %w", topic, err)
	}
	return s, nil
}

func (s *kafkaSink) Identity() string { return "kafka:" + s.topic }

func (s *kafkaSink) Close() error {
	if s.w == nil {
		return nil
	}
	return s.w.Close()
}

// Recover implements TxnSink: it opens the transactional writer (fencing
// any earlier writer of this pipeline and topic) and finishes the last
// transaction in Kafka if the process died before its Kafka commit.
func (s *kafkaSink) Recover(ctx context.Context, last Committed) error {
	s.pipeline, s.outbox = last.Pipeline, outboxTopic(last.Pipeline)
	if _, err := s.db.Topic(s.outbox); err != nil {
		if err := s.db.CreateTopic(s.outbox, s.parts); err != nil {
			return fmt.Errorf("outbox of kafka:%s: %w", s.topic, err)
		}
	}
	var d kafkaSinkData
	if last.Data != nil {
		if err := json.Unmarshal(last.Data, &d); err != nil {
			return fmt.Errorf("decision %d: sink data: %w", last.Txn, err)
		}
		if d.Topic != s.topic {
			was := "kafka:" + d.Topic
			if d.Topic == "" {
				was = "another output (not Kafka)"
			}
			return fmt.Errorf("this pipeline writes to %s, not kafka:%s: keep its output, or give a new pipeline its own name", was, s.topic)
		}
	}
	if s.fleet != nil {
		return s.recoverFleet(ctx, d)
	}
	if err := s.open(ctx); err != nil {
		return err
	}
	done, ok, err := s.w.LastCommitted(ctx)
	if err != nil {
		return err
	}
	switch {
	case last.Data == nil && ok:
		return fmt.Errorf("%w: kafka:%s holds commits of pipeline %s up to transaction %d that this data directory never made "+
			"(another data directory wrote them, or this one was replaced); give this pipeline another name", ErrOutputOwned, s.topic, s.pipeline, done)
	case done > d.Txn:
		return fmt.Errorf("%w: kafka:%s holds transaction %d of pipeline %s, but this data directory committed only up to %d "+
			"(restored from an older copy?); restore the newest copy, or give this pipeline another name", ErrOutputModified, s.topic, done, s.pipeline, d.Txn)
	case last.Data != nil && (!ok || done < d.Txn):
		return s.reproduce(ctx, d.Txn)
	}
	return nil
}

// open (re)opens the transactional writer.
func (s *kafkaSink) open(ctx context.Context) error {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	w, err := kafka.OpenTxnWriter(ctx, s.cfg, s.topic, s.pipeline, s.opts)
	if err != nil {
		return s.fenced(err)
	}
	s.w = w
	return nil
}

// reproduce produces the outbox (the outputs of transaction txn, which
// committed in the data directory) in a new Kafka transaction txn.
func (s *kafkaSink) reproduce(ctx context.Context, txn uint64) error {
	s.recs = s.recs[:0]
	for p := uint32(0); p < s.parts; p++ {
		var from uint64
		for {
			ents, _, err := s.db.ReadLog(s.outbox, p, from, 1000, 16<<20, nil, nil)
			if err != nil {
				return fmt.Errorf("outbox of kafka:%s: %w", s.topic, err)
			}
			if len(ents) == 0 {
				break
			}
			for i := range ents {
				e := &ents[i]
				rec, err := kafkaRecord(p, clone(e.Key), clone(e.Value), clone(e.Headers), e.Timestamp)
				if err != nil {
					return fmt.Errorf("outbox of kafka:%s, partition %d offset %d: %w", s.topic, p, e.Offset, err)
				}
				s.recs = append(s.recs, rec)
			}
			from = ents[len(ents)-1].Offset + 1
		}
	}
	if err := s.w.Prepare(ctx, txn, s.recs); err != nil {
		return s.fenced(err)
	}
	return s.fenced(s.w.Decide(ctx, txn))
}

// Stage implements StoreSink: the outputs replace the outbox's content in
// the transaction's batch. A transaction without outputs leaves the outbox
// alone, as it makes no Kafka transaction: the outbox holds the outputs of
// the last transaction that had some, the one the decision's sink data
// names.
func (s *kafkaSink) Stage(b *storage.Batch, outs []Output) error {
	if s.fleet != nil {
		return nil // the Kafka transaction decides: nothing to produce again
	}
	if s.outbox == "" {
		return errors.New("kafka sink: Stage before Recover")
	}
	if !hasRecords(outs) {
		return nil
	}
	kept := make([]uint64, s.parts)
	for _, o := range outs {
		part := o.Part % s.parts
		if err := b.AppendN(s.outbox, part, len(o.Records), s.entries(o.Records)); err != nil {
			return err
		}
		kept[part] += uint64(len(o.Records))
	}
	for p, n := range kept {
		b.RetainLog(s.outbox, uint32(p), n)
	}
	return nil
}

// Prepare implements TxnSink: the outputs and the marker of txn are
// produced in an open Kafka transaction. A transaction without outputs
// makes none (and keeps the last sink data).
func (s *kafkaSink) Prepare(ctx context.Context, txn uint64, outs []Output) (json.RawMessage, error) {
	if s.w == nil {
		return nil, errors.New("kafka sink: Prepare before Recover")
	}
	if s.produced = hasRecords(outs); !s.produced {
		return nil, nil
	}
	if err := s.convert(outs); err != nil {
		return nil, err
	}
	if err := s.w.Prepare(ctx, txn, s.recs); err != nil {
		return nil, s.fenced(err)
	}
	return json.Marshal(kafkaSinkData{Topic: s.topic, Txn: txn})
}

// Commit implements TxnSink: it commits the Kafka transaction. When that
// fails (a lost reply, a broker restart) the writer is reopened, and txn is
// produced again from the outbox unless its marker shows it committed.
func (s *kafkaSink) Commit(ctx context.Context, txn uint64) error {
	if !s.produced {
		return nil
	}
	if s.fleet != nil {
		return s.fenced(s.w.Decide(ctx, txn)) // the decision: no second chance
	}
	if s.w != nil {
		err := s.w.Decide(ctx, txn)
		if err == nil || errors.Is(err, kafka.ErrFenced) {
			return s.fenced(err)
		}
	}
	if err := s.open(ctx); err != nil {
		return err
	}
	done, ok, err := s.w.LastCommitted(ctx)
	if err != nil || ok && done >= txn {
		return err
	}
	return s.reproduce(ctx, txn)
}

// Abort implements TxnSink.
func (s *kafkaSink) Abort(ctx context.Context, txn uint64) error {
	if s.w == nil || !s.produced {
		return nil
	}
	return s.w.Abort(ctx, txn)
}

// fenced makes a fenced writer's error a storage.ErrFenced: a newer
// instance of the pipeline has started, and this one must stop.
func (s *kafkaSink) fenced(err error) error {
	if errors.Is(err, kafka.ErrFenced) {
		return fmt.Errorf("%w: %w", storage.ErrFenced, err)
	}
	return err
}

// convert turns outs into s.recs.
func (s *kafkaSink) convert(outs []Output) error {
	s.recs = s.recs[:0]
	for _, o := range outs {
		for i := range o.Records {
			r := &o.Records[i]
			rec, err := kafkaRecord(o.Part, r.Key, r.Value, r.Headers, r.Timestamp)
			if err != nil {
				return err
			}
			s.recs = append(s.recs, rec)
		}
	}
	return nil
}

func hasRecords(outs []Output) bool {
	for _, o := range outs {
		if len(o.Records) > 0 {
			return true
		}
	}
	return false
}

// kafkaRecord converts an output; an empty key makes a key-less record,
// which keeps its input partition.
func kafkaRecord(part uint32, key, value, headers []byte, ts int64) (kafka.Record, error) {
	rec := kafka.Record{Value: value, Timestamp: ts, Partition: part}
	if len(key) > 0 {
		rec.Key = key
	}
	var err error
	if rec.Headers, err = blockHeaders(headers); err != nil {
		return rec, fmt.Errorf("output headers: %w", err)
	}
	return rec, nil
}

// blockHeaders decodes an encoded headers block into Kafka headers.
func blockHeaders(block []byte) ([]kafka.Header, error) {
	if len(block) == 0 {
		return nil, nil
	}
	hs, err := abi.DecodeKVBlock(block)
	if err != nil {
		return nil, err
	}
	out := make([]kafka.Header, len(hs))
	for i, h := range hs {
		out[i] = kafka.Header{Key: string(h.Key), Value: h.Value}
	}
	return out, nil
}
