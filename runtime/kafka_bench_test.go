package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// kafkaBenchRecords is the input of the Kafka benchmarks: 100-byte values
// over 4 partitions.
const kafkaBenchRecords, kafkaBenchParts = 200_000, 4

// BenchmarkKafkaToKafka copies a topic to another exactly once, on the
// tests' real broker, in the same run: "pipeline" is a kafka: -> kafka:
// pipeline with the WAT pass-through operator (one Kafka transaction per
// commit, plus the outbox and the marker); "franz-go" is a bare franz-go
// loop that reads with read_committed and writes in transactions of the
// same size, without WASM, outbox or marker. Both report records/s.
func BenchmarkKafkaToKafka(b *testing.B) {
	c := kafkatest.Shared(b)
	in := c.Topic(b, kafkaBenchParts)
	fillKafka(b, c, in, kafkaBenchRecords)
	b.Run("pipeline", func(b *testing.B) {
		plugin := benchPlugin(b, "wat-passthrough", host.Config{})
		for range b.N {
			db := diskDB(b, filepath.Join(b.TempDir(), "data"))
			ctx := context.Background()
			ep := Endpoints{DB: db, Kafka: &KafkaConfig{Brokers: c.Addrs(), CreateTopics: true}}
			src, err := ParseSource(ctx, "kafka:"+in, ep)
			if err != nil {
				b.Fatal(err)
			}
			sink, err := ParseSink(ctx, "kafka:"+in+fmt.Sprintf("-copy-%d", time.Now().UnixNano()), ep, src.Partitions())
			if err != nil {
				b.Fatal(err)
			}
			p, err := New(Config{Name: "bench", DB: db, Plugin: plugin, Source: src, Sink: sink, BatchSize: 1000, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			st, err := p.Run(ctx)
			elapsed := time.Since(start)
			sink.Close()
			if c, ok := src.(interface{ Close() error }); ok {
				c.Close()
			}
			db.Close()
			if err != nil || st.RecordsOut != kafkaBenchRecords {
				b.Fatalf("run: %+v %v", st, err)
			}
			b.ReportMetric(float64(kafkaBenchRecords)/elapsed.Seconds(), "records/s")
		}
	})
	b.Run("franz-go", func(b *testing.B) {
		for range b.N {
			out := in + fmt.Sprintf("-plain-%d", time.Now().UnixNano())
			c.CreateTopic(b, out, kafkaBenchParts)
			start := time.Now()
			copyTransactionally(b, c, in, out, 16*1000)
			b.ReportMetric(float64(kafkaBenchRecords)/time.Since(start).Seconds(), "records/s")
		}
	})
}

// fillKafka writes n 100-byte values to topic, round robin over its
// partitions.
func fillKafka(b *testing.B, c *kafkatest.Cluster, topic string, n int) {
	b.Helper()
	cl := c.Client(b, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	val := []byte(`"` + strings.Repeat("a", benchValueSize-2) + `"`)
	ctx := context.Background()
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// copyTransactionally copies every record of in to the same partition of
// out, reading with read_committed and committing a transaction every txn
// records: what exactly-once copying costs Kafka and franz-go alone.
func copyTransactionally(b *testing.B, c *kafkatest.Cluster, in, out string, txn int) {
	b.Helper()
	ctx := context.Background()
	src := c.Client(b, kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	dst := c.Client(b, kgo.TransactionalID(out), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	copied, open := 0, 0
	for copied < kafkaBenchRecords {
		fs := src.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			b.Fatal(err)
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if open == 0 {
				if err := dst.BeginTransaction(); err != nil {
					b.Fatal(err)
				}
			}
			dst.Produce(ctx, &kgo.Record{Topic: out, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}, nil)
			copied++
			if open++; open == txn || copied == kafkaBenchRecords {
				if err := dst.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				if err := dst.EndTransaction(ctx, kgo.TryCommit); err != nil {
					b.Fatal(err)
				}
				open = 0
			}
		}
	}
}
