package runtime

import (
	"context"

	"github.com/heliosdb/helios-wasm/storage"
)

// LogSink appends outputs to a topic of the embedded log. Outputs read from
// input partition p go to partition p mod N, so per-partition order holds
// end to end. The appends ride in the decision batch: they become durable
// and readable exactly when the transaction commits.
type LogSink struct {
	db       *storage.DB
	topic    string
	parts    uint32
	entry    storage.Entry
	producer *IdempotentProducer          // nil: unsequenced appends
	firstSeq map[uint64]map[uint32]uint64 // txn -> partition -> first sequence staged
}

// SetProducer makes the sink's appends sequenced and fenced by p.
func (s *LogSink) SetProducer(p *IdempotentProducer) {
	s.producer, s.firstSeq = p, map[uint64]map[uint32]uint64{}
}

// NewLogSink opens topic, creating it with partitions partitions if absent.
func NewLogSink(db *storage.DB, topic string, partitions uint32) (*LogSink, error) {
	if _, err := db.Topic(topic); err != nil {
		if err := db.CreateTopic(topic, max(partitions, 1)); err != nil {
			return nil, err
		}
	}
	ti, err := db.Topic(topic)
	if err != nil {
		return nil, err
	}
	return &LogSink{db: db, topic: topic, parts: ti.Partitions}, nil
}

func (s *LogSink) Identity() string  { return "log:" + s.topic }
func (s *LogSink) Name() string      { return "sink" }
func (s *LogSink) ExactlyOnce() bool { return true }
func (s *LogSink) Close() error      { return nil }

// Stage implements Sink.
func (s *LogSink) Stage(txn *Txn, part uint32, recs []OutRecord) error {
	out := part % s.parts
	b := txn.Batch()
	if s.producer != nil {
		b.SetProducer(s.producer.ID(), s.producer.Epoch())
	}
	for i := range recs {
		r := &recs[i]
		s.entry = storage.Entry{Timestamp: r.Timestamp, ID: r.ID, Key: r.Key, Headers: r.Headers, Value: r.Value}
		var err error
		if s.producer == nil {
			err = b.Append(s.topic, out, &s.entry)
		} else {
			seq := s.producer.NextSequence(s.topic, out)
			if s.firstSeq[txn.ID()] == nil {
				s.firstSeq[txn.ID()] = map[uint32]uint64{}
			}
			if _, ok := s.firstSeq[txn.ID()][out]; !ok {
				s.firstSeq[txn.ID()][out] = seq
			}
			err = b.AppendSeq(s.topic, out, seq, &s.entry)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Prepare implements Participant: the appends are already in the decision
// batch, which the coordinator commits or discards.
func (s *LogSink) Prepare(context.Context, *Txn) error { return nil }

// Commit implements Participant.
func (s *LogSink) Commit(_ context.Context, txn *Txn) error {
	if s.firstSeq != nil {
		delete(s.firstSeq, txn.ID())
	}
	return nil
}

// Abort implements Participant: sequence numbers the transaction used are
// handed out again.
func (s *LogSink) Abort(_ context.Context, txn *Txn) error {
	if s.firstSeq == nil {
		return nil
	}
	for part, seq := range s.firstSeq[txn.ID()] {
		s.producer.Rewind(s.topic, part, seq)
	}
	delete(s.firstSeq, txn.ID())
	return nil
}
