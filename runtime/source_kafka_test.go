package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// TestKafkaSourceExactlyOnce reads a topic whose partitions hold committed
// and aborted transactions (one aborted at the very end) into the embedded
// log: every committed record comes out once, in order per partition, with
// its key, headers and timestamp; aborted ones never; a rerun outputs
// nothing.
func TestKafkaSourceExactlyOnce(t *testing.T) {
	c := kafkatest.Shared(t)
	const parts = 3
	topic := c.Topic(t, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod := c.Client(t, kgo.TransactionalID("src-"+topic), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := make([][]string, parts)
	ts := time.UnixMilli(1_700_000_000_123)
	for txn := range 7 {
		commit := txn%3 != 1 && txn != 6 // 1, 4 and the last one abort
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 60 {
			p := int32(i % parts)
			v := fmt.Sprintf(`{"txn":%d,"i":%d}`, txn, i)
			prod.Produce(ctx, &kgo.Record{Partition: p, Key: []byte(fmt.Sprint("k", i)), Value: []byte(v), Timestamp: ts,
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}}}, nil)
			if commit {
				want[p] = append(want[p], strings.ToUpper(v))
			}
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := c.StableEnds(t, ctx, topic, 30*time.Second); !ok {
		t.Fatalf("%s: transaction markers not written within 30s", topic)
	}
	db := memDB(t)
	for run := range 2 {
		src, err := ParseSource(ctx, "kafka:"+topic, Endpoints{DB: db, Kafka: &KafkaConfig{Brokers: c.Addrs()}})
		if err != nil {
			t.Fatal(err)
		}
		sink, err := newLogSink(db, "out", src.Partitions())
		if err != nil {
			t.Fatal(err)
		}
		metrics := NewMetrics(nil)
		st, err := runPipeline(t, Config{Name: "k", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 25, Metrics: metrics})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.(*kafkaSource).Close(); err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			checkGroupCaughtUp(t, c, topic, "k", metrics)
		}
		wantIn := int64(4 * 60)
		if run == 1 {
			wantIn = 0
		}
		if st.RecordsIn != wantIn {
			t.Fatalf("run %d read %d records, want %d", run, st.RecordsIn, wantIn)
		}
	}
	for p := range uint32(parts) {
		entries, _, err := db.ReadLog("out", p, 0, 1000, 1<<30, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(want[p]) {
			t.Fatalf("partition %d: %d outputs, want %d", p, len(entries), len(want[p]))
		}
		for i, e := range entries {
			if string(e.Value) != want[p][i] || !strings.HasPrefix(string(e.Key), "k") || e.Timestamp != ts.UnixMilli() {
				t.Fatalf("partition %d output %d: key %q value %q ts %d; want value %q", p, i, e.Key, e.Value, e.Timestamp, want[p][i])
			}
		}
	}
	// What the operator sees: key, headers and timestamp as produced.
	src, err := newKafkaSource(ctx, KafkaConfig{Brokers: c.Addrs()}, topic)
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(ctx, 1, Position{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs, pos, err := r.Read(ctx, nil, 1, 1<<20)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Read: %d records, %v", len(recs), err)
	}
	got := recs[0]
	if string(got.Key) != "k1" || got.Timestamp != ts.UnixMilli() || len(got.Headers) != 1 || string(got.Headers[0].Key) != "h" ||
		string(got.Headers[0].Value) != "1" || got.Offset != 0 || pos.Offset != 1 {
		t.Fatalf("record %+v at %+v", got, pos)
	}
}

func TestKafkaSourceErrors(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx := context.Background()
	db := memDB(t)
	for _, tc := range []struct {
		spec    string
		kafka   *KafkaConfig
		wantErr error
		mention string
	}{
		{"kafka:", &KafkaConfig{Brokers: c.Addrs()}, nil, "missing topic"},
		{"kafka:t", nil, nil, "no Kafka brokers"},
		{"kafka:no-such-topic", &KafkaConfig{Brokers: c.Addrs()}, ErrKafkaTopicMissing, "no-such-topic"},
		{"kafka:t", &KafkaConfig{Brokers: []string{"127.0.0.1:1"}, ConnectTimeout: time.Second}, ErrKafkaUnreachable, "127.0.0.1:1"},
	} {
		_, err := ParseSource(ctx, tc.spec, Endpoints{DB: db, Kafka: tc.kafka})
		if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseSource(%q) = %v; want %v mentioning %q", tc.spec, err, tc.wantErr, tc.mention)
		}
	}
}

// checkGroupCaughtUp: after a bounded run the consumer group (named after
// the pipeline) holds the partitions' last stable offsets, and the lag
// metric of every partition is 0.
func checkGroupCaughtUp(t *testing.T, c *kafkatest.Cluster, topic, group string, m *Metrics) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.Client(t))
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	got, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		g, ok := got.Lookup(topic, o.Partition)
		if !ok || g.At != o.Offset {
			t.Errorf("group %s partition %d: committed %+v, want %d", group, o.Partition, g, o.Offset)
		}
		if lag := promtest.ToFloat64(m.ConsumerLag.WithLabelValues(group, partName(uint32(o.Partition)))); lag != 0 {
			t.Errorf("partition %d: lag %v after a bounded run", o.Partition, lag)
		}
	})
}

// TestKafkaTopicRecreated: a topic deleted and created again under the same
// name starts its offsets at 0, behind what the pipeline committed; the run
// stops with ErrKafkaOffsetsBehind instead of skipping the new records.
func TestKafkaTopicRecreated(t *testing.T) {
	c := kafkatest.Shared(t)
	topic := c.Topic(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := func(n int) {
		cl := c.Client(t, kgo.DefaultProduceTopic(topic))
		for i := range n {
			cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, `{"i":%d}`, i)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db := memDB(t)
	run := func() error {
		src, err := newKafkaSource(ctx, KafkaConfig{Brokers: c.Addrs()}, topic)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		sink, err := newLogSink(db, "out", 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = runPipeline(t, Config{Name: "recreated", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink})
		return err
	}
	produce(10)
	if err := run(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(c.Client(t))
	if resp, err := adm.DeleteTopic(ctx, topic); err != nil || resp.Err != nil {
		t.Fatalf("delete topic: %v %v", err, resp.Err)
	}
	for ctx.Err() == nil { // deletion is asynchronous
		resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		if err == nil && resp.Err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	produce(3)
	if err := run(); !errors.Is(err, ErrKafkaOffsetsBehind) {
		t.Fatalf("rerun on the recreated topic: %v, want ErrKafkaOffsetsBehind", err)
	}
}

// TestKafkaReaderContextEndsDuringPoll: a Read whose context has ended by
// the time its poll returns records (a windowed pipeline's idle tick ends
// read contexts every second) keeps those records: the client has moved
// past them, so dropping them would skip them. Every record comes out
// once, in order.
func TestKafkaReaderContextEndsDuringPoll(t *testing.T) {
	c := kafkatest.Shared(t)
	topic := c.Topic(t, 1)
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.ProduceNumbered(t, ctx, topic, n)
	src, err := newKafkaSource(ctx, KafkaConfig{Brokers: c.Addrs()}, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, err := src.Open(ctx, 0, Position{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	var offsets []int64
	for i := 0; len(got) < n && ctx.Err() == nil; i++ {
		rctx := context.Context(ctx)
		if i%2 == 0 {
			rctx = kafkatest.EndedAfterPoll{Context: ctx}
		}
		recs, _, err := r.Read(rctx, nil, 100, 1<<20)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		for _, rec := range recs {
			got, offsets = append(got, string(rec.Value)), append(offsets, rec.Offset)
		}
	}
	for i := range n {
		if i >= len(got) || got[i] != fmt.Sprint(i) || offsets[i] != int64(i) {
			t.Fatalf("record %d of %d read: a record was skipped or repeated (%d records read)", i, n, len(got))
		}
	}
}
