package runtime

import (
	"github.com/heliosdb/helios-wasm/storage"
)

// logSink appends outputs to a topic of the embedded log. Outputs read from
// input partition p go to partition p mod N, so per-partition order holds
// end to end. The appends ride in the decision batch: they become durable
// and readable exactly when the transaction commits.
type logSink struct {
	db    *storage.DB
	topic string
	parts uint32
	storeEntries
}

// newLogSink opens topic, creating it with partitions partitions if absent.
func newLogSink(db *storage.DB, topic string, partitions uint32) (*logSink, error) {
	if _, err := db.Topic(topic); err != nil {
		if err := db.CreateTopic(topic, max(partitions, 1)); err != nil {
			return nil, err
		}
	}
	ti, err := db.Topic(topic)
	if err != nil {
		return nil, err
	}
	return &logSink{db: db, topic: topic, parts: ti.Partitions}, nil
}

func (s *logSink) Identity() string { return "log:" + s.topic }
func (s *logSink) Close() error     { return nil }

// Stage implements StoreSink. The pipeline numbers and fences the appends
// (the batch's producer).
func (s *logSink) Stage(b *storage.Batch, outs []Output) error {
	for _, o := range outs {
		if err := b.AppendN(s.topic, o.Part%s.parts, len(o.Records), s.entries(o.Records)); err != nil {
			return err
		}
	}
	return nil
}
