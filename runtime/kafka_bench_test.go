package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// kafkaBenchRecords is the input of the Kafka benchmarks: 100-byte values
// over 4 partitions.
const kafkaBenchRecords, kafkaBenchParts = 200_000, 4

// BenchmarkKafkaToKafka copies a topic to another exactly once, on the
// tests' real broker, in the same run: "pipeline" is a kafka: -> kafka:
// pipeline with the WAT pass-through operator, one instance of a fleet
// (one Kafka transaction per commit with the outputs, the marker and the
// group's offsets); "franz-go" is a bare franz-go loop that reads with
// read_committed and writes in transactions of the same size, without
// WASM or offsets. The two alternate, run by run, so that both see the
// same machine (a disk still writing back an earlier benchmark's data, a
// broker whose log has grown); it reports each side's median records/s and
// their ratio.
func BenchmarkKafkaToKafka(b *testing.B) {
	c := kafkatest.Shared(b)
	in := c.Topic(b, kafkaBenchParts)
	fillKafka(b, c, in, kafkaBenchRecords)
	plugin := benchPlugin(b, "wat-passthrough", host.Config{})
	var pipeline, plain []float64
	for run := range kafkaBenchRuns(b) {
		rp := pipelineCopy(b, c, plugin, in)
		out := in + fmt.Sprintf("-plain-%d", time.Now().UnixNano())
		c.CreateTopic(b, out, kafkaBenchParts)
		start := copyTransactionally(b, c, in, out, 16*1000)
		rf := float64(kafkaBenchRecords) / time.Since(start).Seconds()
		if run > 0 { // run 0 warms the broker's caches and the JIT up
			pipeline, plain = append(pipeline, rp), append(plain, rf)
		}
	}
	b.ReportMetric(median(pipeline), "pipeline-records/s")
	b.ReportMetric(median(plain), "franz-go-records/s")
	b.ReportMetric(median(pipeline)/median(plain), "x-franz-go")
}

// pipelineCopy copies topic in to a new topic with a kafka: -> kafka:
// pipeline running plugin, and returns its records/s, timed from its
// first batch (the first run of a pipeline also creates its topics and
// joins the group, once).
func pipelineCopy(b *testing.B, c *kafkatest.Cluster, plugin *host.Plugin, in string) float64 {
	b.Helper()
	db := diskDB(b, filepath.Join(b.TempDir(), "data"))
	defer db.Close()
	ctx := context.Background()
	ep := Endpoints{DB: db, Kafka: &KafkaConfig{Brokers: c.Addrs(), CreateTopics: true}}
	src, err := ParseSource(ctx, "kafka:"+in, ep)
	if err != nil {
		b.Fatal(err)
	}
	if c, ok := src.(interface{ Close() error }); ok {
		defer c.Close()
	}
	sink, err := ParseSink(ctx, "kafka:"+in+fmt.Sprintf("-copy-%d", time.Now().UnixNano()), ep, src.Partitions())
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	// A pipeline name (and so a consumer group) per run: the group of an
	// earlier run has committed every offset.
	p, err := New(Config{Name: fmt.Sprintf("bench-%d", time.Now().UnixNano()), DB: db, Plugin: plugin, Source: src, Sink: sink, BatchSize: 1000, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	var first atomic.Int64
	p.onBatch = func(_ uint32, _ uint64, start, _ time.Time) { first.CompareAndSwap(0, start.UnixNano()) }
	st, err := p.Run(ctx)
	elapsed := time.Since(time.Unix(0, first.Load()))
	if err != nil || st.RecordsOut != kafkaBenchRecords {
		b.Fatalf("run: %+v %v", st, err)
	}
	return float64(kafkaBenchRecords) / elapsed.Seconds()
}

// kafkaBenchRuns is how many times each side of BenchmarkKafkaToKafka
// copies the topic: once untimed, then three times per b.N, of which the
// median counts (the shared machine's noise moves single runs by a third).
func kafkaBenchRuns(b *testing.B) int { return 1 + 3*b.N }

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
// records: what exactly-once copying costs Kafka and franz-go alone. It
// returns when the first records arrived (the timing's start, as for the
// pipeline).
func copyTransactionally(b *testing.B, c *kafkatest.Cluster, in, out string, txn int) (first time.Time) {
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
		if first.IsZero() {
			first = time.Now()
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
	return first
}

// BenchmarkChangelogRestore measures how fast a partition's state comes
// back from its changelog when the partition moves to an instance whose
// data directory has none of it: 200,000 state keys (100-byte values) in
// one changelog partition, restored into a fresh data directory.
func BenchmarkChangelogRestore(b *testing.B) {
	c := kafkatest.Shared(b)
	changelog := c.Topic(b, 1)
	cl := c.Client(b, kgo.DefaultProduceTopic(changelog), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	val := []byte(strings.Repeat("s", benchValueSize))
	ctx := context.Background()
	for i := range kafkaBenchRecords {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "key-%08d", i), Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		db := diskDB(b, filepath.Join(b.TempDir(), "data"))
		p := &Pipeline{cfg: Config{Name: "restore", DB: db, Metrics: NewMetrics(nil), Logger: quiet}}
		f := &fleet{p: p, src: &kafkaSource{cfg: KafkaConfig{Brokers: c.Addrs()}}, changelog: changelog, nexts: map[int32]topicNexts{}}
		start := time.Now()
		if err := f.restoreState(ctx, kadm.NewClient(c.Client(b)), 0, 0); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(kafkaBenchRecords)/time.Since(start).Seconds(), "records/s")
		n := 0
		db.ScanState("restore", 0, func(_, _ []byte) error { n++; return nil })
		if n != kafkaBenchRecords {
			b.Fatalf("restored %d keys, want %d", n, kafkaBenchRecords)
		}
		db.Close()
	}
}
