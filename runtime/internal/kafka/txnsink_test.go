package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// pipelineSeq makes pipeline names unique per test run: markers and
// transactional ids are per pipeline.
var pipelineSeq int

func pipelineName(t *testing.T) string {
	pipelineSeq++
	return fmt.Sprintf("p%d-%d", time.Now().UnixNano()%1_000_000_000, pipelineSeq)
}

func openWriter(t testing.TB, ctx context.Context, c *kafkatest.Cluster, topic, pipeline string, opts TxnOptions) *TxnWriter {
	t.Helper()
	w, err := OpenTxnWriter(ctx, Config{Brokers: c.Addrs()}, topic, pipeline, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// readCommitted returns every record of topic a read_committed reader
// sees, up to the topic's last stable offsets.
func readCommitted(t *testing.T, ctx context.Context, c *kafkatest.Cluster, topic string) []*kgo.Record {
	t.Helper()
	// Kafka writes a transaction's markers after EndTxn returns: wait until
	// they are, or what was just committed would not be read (a test that
	// leaves a transaction open goes on after the wait).
	ends, _ := c.StableEnds(t, ctx, topic, 30*time.Second)
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (still waiting for %v)", topic, ctx.Err(), want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("reading %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset >= end-1 {
				delete(want, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

// waitStable waits until no transaction is open on topic's partitions:
// Kafka writes a transaction's commit or abort records after EndTxn
// returns.
func waitStable(t *testing.T, ctx context.Context, c *kafkatest.Cluster, topic string) {
	t.Helper()
	adm := kadm.NewClient(c.Client(t))
	for {
		stable, err1 := adm.ListCommittedOffsets(ctx, topic)
		ends, err2 := adm.ListEndOffsets(ctx, topic)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		same := true
		ends.Each(func(o kadm.ListedOffset) {
			if s, ok := stable.Lookup(topic, o.Partition); !ok || s.Offset != o.Offset {
				same = false
			}
		})
		if same {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: a transaction stays open", topic)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastCommitted(t *testing.T, ctx context.Context, w *TxnWriter) (uint64, bool) {
	t.Helper()
	n, ok, err := w.LastCommitted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n, ok
}

func values(recs []*kgo.Record) string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, string(r.Value))
	}
	return strings.Join(vs, ",")
}

func recsOf(txn int, n int) []Record {
	var out []Record
	for i := range n {
		out = append(out, Record{Value: fmt.Appendf(nil, "t%d-%d", txn, i), Partition: uint32(i)})
	}
	return out
}

// TestTxnWriterCommitAbort: committed transactions are visible to a
// read_committed reader exactly once, with key, headers and timestamp
// intact; aborted ones never; an empty transaction still records its
// marker; LastCommitted follows the decisions.
func TestTxnWriterCommitAbort(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := c.Topic(t, 2)
	w := openWriter(t, ctx, c, topic, pipelineName(t), TxnOptions{})
	if n, ok := lastCommitted(t, ctx, w); ok {
		t.Fatalf("LastCommitted of a new pipeline = %d, want none", n)
	}
	ts := int64(1_700_000_000_123)
	full := Record{Key: []byte("k"), Value: []byte("t1-full"), Timestamp: ts,
		Headers: []Header{{"h1", []byte("v1")}, {"h0", nil}, {"h1", []byte("again")}}}
	steps := []struct {
		txn    uint64
		recs   []Record
		commit bool
	}{
		{1, append([]Record{full}, recsOf(1, 3)...), true},
		{2, recsOf(2, 4), false},
		{5, recsOf(5, 2), true},
		{6, nil, true}, // no outputs: the marker alone
		{7, recsOf(7, 1), false},
	}
	for _, s := range steps {
		if err := w.Prepare(ctx, s.txn, s.recs); err != nil {
			t.Fatalf("Prepare(%d): %v", s.txn, err)
		}
		decide := w.Abort
		if s.commit {
			decide = w.Decide
		}
		if err := decide(ctx, s.txn); err != nil {
			t.Fatalf("decide(%d, commit=%v): %v", s.txn, s.commit, err)
		}
	}
	// Once Kafka has written the abort record of 7, its marker lies below
	// the last stable offset: LastCommitted must still skip it.
	waitStable(t, ctx, c, w.MarkerTopic())
	if n, ok := lastCommitted(t, ctx, w); !ok || n != 6 {
		t.Fatalf("LastCommitted = %d, %v; want 6", n, ok)
	}
	got := readCommitted(t, ctx, c, topic)
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Value)]++
	}
	want := []string{"t1-full", "t1-0", "t1-1", "t1-2", "t5-0", "t5-1"}
	if len(got) != len(want) {
		t.Fatalf("read_committed sees %d records (%s), want %d (%s)", len(got), values(got), len(want), strings.Join(want, ","))
	}
	for _, v := range want {
		if seen[v] != 1 {
			t.Fatalf("%s seen %d times in %s", v, seen[v], values(got))
		}
	}
	for _, r := range got {
		if string(r.Value) != "t1-full" {
			if r.Key != nil || len(r.Headers) != 0 {
				t.Errorf("%s: key %q headers %v, want none", r.Value, r.Key, r.Headers)
			}
			continue
		}
		if string(r.Key) != "k" || r.Timestamp.UnixMilli() != ts || len(r.Headers) != 3 {
			t.Fatalf("full record: key %q ts %d headers %v", r.Key, r.Timestamp.UnixMilli(), r.Headers)
		}
		for i, h := range full.Headers {
			if r.Headers[i].Key != h.Key || string(r.Headers[i].Value) != string(h.Value) {
				t.Errorf("header %d = %s=%q, want %s=%q", i, r.Headers[i].Key, r.Headers[i].Value, h.Key, h.Value)
			}
		}
	}
}

// TestTxnWriterCrash drops a writer (its client closed without ending the
// transaction, as a killed process leaves it) between Prepare and Decide,
// or after Decide, and opens a new one for the same pipeline: LastCommitted
// says what committed, and the outputs of a transaction that did not are
// never visible. The dropped writer, if it were still alive, is fenced.
func TestTxnWriterCrash(t *testing.T) {
	c := kafkatest.Shared(t)
	for _, tc := range []struct {
		name          string
		decide        bool // the crash comes after Decide(2)
		want          uint64
		wantVisible   string
		zombieDecides bool // the old writer is not dead: it tries Decide(2) after the new one opened
	}{
		{"before decide", false, 1, "t1-0,t1-1,t3-0", false},
		{"after decide", true, 2, "t1-0,t1-1,t2-0,t2-1,t2-2,t3-0", false},
		{"zombie decides after takeover", false, 1, "t1-0,t1-1,t3-0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			topic, pipeline := c.Topic(t, 1), pipelineName(t)
			old := openWriter(t, ctx, c, topic, pipeline, TxnOptions{})
			if err := old.Prepare(ctx, 1, recsOf(1, 2)); err != nil {
				t.Fatal(err)
			}
			if err := old.Decide(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := old.Prepare(ctx, 2, recsOf(2, 3)); err != nil {
				t.Fatal(err)
			}
			if tc.decide {
				if err := old.Decide(ctx, 2); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.zombieDecides {
				old.Close() // the crash
			}
			w := openWriter(t, ctx, c, topic, pipeline, TxnOptions{})
			if n, ok := lastCommitted(t, ctx, w); !ok || n != tc.want {
				t.Fatalf("LastCommitted = %d, %v; want %d", n, ok, tc.want)
			}
			if tc.zombieDecides {
				err := old.Decide(ctx, 2)
				if !errors.Is(err, ErrFenced) {
					t.Fatalf("the old writer's Decide after takeover: %v, want ErrFenced", err)
				}
				t.Logf("zombie: %v", err)
				if err := old.Prepare(ctx, 3, nil); !errors.Is(err, ErrFenced) {
					t.Fatalf("the old writer's next Prepare: %v, want ErrFenced", err)
				}
			}
			if err := w.Prepare(ctx, 3, recsOf(3, 1)); err != nil {
				t.Fatal(err)
			}
			if err := w.Decide(ctx, 3); err != nil {
				t.Fatal(err)
			}
			if got := values(readCommitted(t, ctx, c, topic)); got != tc.wantVisible {
				t.Fatalf("read_committed sees %s, want %s", got, tc.wantVisible)
			}
			if n, ok := lastCommitted(t, ctx, w); !ok || n != 3 {
				t.Fatalf("LastCommitted after the takeover = %d, %v; want 3", n, ok)
			}
		})
	}
}

// TestTxnWriterFencedWhileIdle: a writer whose pipeline started elsewhere
// is fenced at its next transaction, before anything of it is visible.
func TestTxnWriterFencedWhileIdle(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic, pipeline := c.Topic(t, 1), pipelineName(t)
	old := openWriter(t, ctx, c, topic, pipeline, TxnOptions{})
	if err := old.Prepare(ctx, 1, recsOf(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := old.Decide(ctx, 1); err != nil {
		t.Fatal(err)
	}
	openWriter(t, ctx, c, topic, pipeline, TxnOptions{})
	err := old.Prepare(ctx, 2, recsOf(2, 2))
	if err == nil {
		err = old.Decide(ctx, 2)
	}
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "newer instance") {
		t.Fatalf("fenced writer: %v, want ErrFenced", err)
	}
	if err := old.Decide(ctx, 2); !errors.Is(err, ErrFenced) {
		t.Fatalf("a fenced writer stays fenced: %v", err)
	}
	if got := values(readCommitted(t, ctx, c, topic)); got != "t1-0" {
		t.Fatalf("read_committed sees %s, want t1-0", got)
	}
}

// javaMurmur2 is Kafka's Utils.murmur2, ported from the Java source: the
// Java client's partition for key k is (murmur2(k) & 0x7fffffff) % n.
func javaMurmur2(data []byte) int32 {
	const m = 0x5bd1e995
	n := len(data)
	h := uint32(0x9747b28c) ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// TestJavaMurmur2 checks the port against Kafka's own vectors
// (UtilsTest.testMurmur2).
func TestJavaMurmur2(t *testing.T) {
	for k, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := javaMurmur2([]byte(k)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", k, got, want)
		}
	}
}

// TestTxnWriterPartitioning: keyed records land where Kafka's Java client
// would put them; key-less ones keep their source partition modulo the
// partition count.
func TestTxnWriterPartitioning(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const parts = 5
	topic := c.Topic(t, parts)
	w := openWriter(t, ctx, c, topic, pipelineName(t), TxnOptions{})
	want := map[string]int32{}
	var recs []Record
	// The source partition must not matter for a keyed record; an empty
	// key is a key (the Java client hashes it).
	for i := range 40 {
		k := fmt.Sprintf("user-%d", i*7919)
		if i == 0 {
			k = ""
		}
		recs = append(recs, Record{Key: []byte(k), Value: []byte("key " + k), Partition: 3})
		want["key "+k] = (javaMurmur2([]byte(k)) & 0x7fffffff) % parts
	}
	for p := range uint32(12) {
		v := fmt.Sprintf("keyless from %d", p)
		recs = append(recs, Record{Value: []byte(v), Partition: p})
		want[v] = int32(p % parts)
	}
	if err := w.Prepare(ctx, 1, recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Decide(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := readCommitted(t, ctx, c, topic)
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for _, r := range got {
		if p, ok := want[string(r.Value)]; !ok || p != r.Partition {
			t.Errorf("%q in partition %d, want %d", r.Value, r.Partition, p)
		}
	}
}

// TestTxnWriterLargeTransactionKeepsOrder: a transaction large enough to be
// produced by several goroutines keeps every partition's records in order.
func TestTxnWriterLargeTransactionKeepsOrder(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const parts, n = 4, 20_000
	topic := c.Topic(t, parts)
	w := openWriter(t, ctx, c, topic, pipelineName(t), TxnOptions{})
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Value: fmt.Appendf(nil, "%d", i), Partition: uint32(i % parts)}
	}
	if err := w.Prepare(ctx, 1, recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Decide(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got := readCommitted(t, ctx, c, topic)
	if len(got) != n {
		t.Fatalf("%d records, want %d", len(got), n)
	}
	last := map[int32]int{}
	for _, r := range got {
		var i int
		fmt.Sscan(string(r.Value), &i)
		if prev, ok := last[r.Partition]; (ok && i <= prev) || i%parts != int(r.Partition) {
			t.Fatalf("partition %d: record %d after %d", r.Partition, i, prev)
		}
		last[r.Partition] = i
	}
}

func TestTxnWriterOpenErrors(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dead := closedAddr(t)
	missing := fmt.Sprintf("missing-%d", time.Now().UnixNano())
	created := fmt.Sprintf("created-%d", time.Now().UnixNano())
	for _, tc := range []struct {
		name      string
		cfg       Config
		topic     string
		opts      TxnOptions
		wantErr   error
		mentions  []string
		wantParts int32
	}{
		{"unreachable", Config{Brokers: []string{dead}, ConnectTimeout: 2 * time.Second}, "t", TxnOptions{}, ErrUnreachable, []string{dead}, 0},
		{"missing topic", Config{Brokers: c.Addrs()}, missing, TxnOptions{}, ErrTopicMissing, []string{missing}, 0},
		{"created topic", Config{Brokers: c.Addrs()}, created, TxnOptions{Topic: TopicOptions{Create: true, Partitions: 3}}, nil, nil, 3},
		{"timeout above the broker's maximum", Config{Brokers: c.Addrs()}, created, TxnOptions{Timeout: time.Hour}, nil,
			[]string{"transaction.max.timeout.ms", "1h0m0s"}, 0},
		{"bad topic name", Config{Brokers: c.Addrs()}, "a:b", TxnOptions{}, nil, []string{`topic "a:b"`, "':' at byte 1"}, 0},
		{"timeout too short", Config{Brokers: c.Addrs()}, created, TxnOptions{Timeout: time.Millisecond}, nil, []string{"at least 1s"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			w, err := OpenTxnWriter(ctx, tc.cfg, tc.topic, pipelineName(t), tc.opts)
			t.Logf("OpenTxnWriter: %v (%s)", err, time.Since(start).Round(time.Millisecond))
			if w != nil {
				defer w.Close()
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if (tc.mentions == nil && tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if tc.wantParts != 0 && w.Partitions() != tc.wantParts {
				t.Errorf("Partitions() = %d, want %d", w.Partitions(), tc.wantParts)
			}
			if time.Since(start) > 20*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}

// TestTxnWriterMisuse: the protocol's order is checked, not assumed.
func TestTxnWriterMisuse(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := openWriter(t, ctx, c, c.Topic(t, 1), pipelineName(t), TxnOptions{})
	if err := w.Decide(ctx, 1); err == nil || !strings.Contains(err.Error(), "no transaction is prepared") {
		t.Fatalf("Decide without Prepare: %v", err)
	}
	if err := w.Abort(ctx, 1); err != nil {
		t.Fatalf("Abort without Prepare: %v", err)
	}
	if err := w.Prepare(ctx, 5, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Prepare(ctx, 6, nil); err == nil || !strings.Contains(err.Error(), "transaction 5 is prepared") {
		t.Fatalf("second Prepare: %v", err)
	}
	if err := w.Decide(ctx, 4); err == nil || !strings.Contains(err.Error(), "transaction 5 is the one prepared") {
		t.Fatalf("Decide of another transaction: %v", err)
	}
	if err := w.Decide(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := w.Prepare(ctx, 5, nil); err == nil || !strings.Contains(err.Error(), "must increase") {
		t.Fatalf("Prepare of a used id: %v", err)
	}
}

// TestTxnWriterBrokerTimeout: a transaction left open beyond the timeout
// is aborted by the broker, and Decide says so.
func TestTxnWriterBrokerTimeout(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic, pipeline := c.Topic(t, 1), pipelineName(t)
	w := openWriter(t, ctx, c, topic, pipeline, TxnOptions{Timeout: time.Second})
	if err := w.Prepare(ctx, 1, recsOf(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Decide(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Prepare(ctx, 2, recsOf(2, 1)); err != nil {
		t.Fatal(err)
	}
	// The broker looks for expired transactions every 10 s
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	adm := kadm.NewClient(c.Client(t))
	for {
		d, err := adm.DescribeTransactions(ctx, w.TransactionalID())
		if err == nil {
			if txn, ok := d[w.TransactionalID()]; ok && txn.State != "Ongoing" {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the broker did not abort the transaction: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	err := w.Decide(ctx, 2)
	t.Logf("Decide after the broker's timeout: %v", err)
	if !errors.Is(err, ErrTxnTimedOut) {
		t.Fatalf("Decide after the broker's timeout: %v, want ErrTxnTimedOut", err)
	}
	w2 := openWriter(t, ctx, c, topic, pipeline, TxnOptions{})
	if n, ok := lastCommitted(t, ctx, w2); !ok || n != 1 {
		t.Fatalf("LastCommitted = %d, %v; want 1", n, ok)
	}
	if got := values(readCommitted(t, ctx, c, topic)); got != "t1-0" {
		t.Fatalf("read_committed sees %s, want t1-0", got)
	}
}

// BenchmarkKafkaTxnWriter: Prepare+Decide of 1,000 records of 100 bytes
// per transaction against the real broker ("TxnWriter"), and the same
// records in a bare franz-go transaction per batch, without the marker
// ("franz-go"), for comparison.
func BenchmarkKafkaTxnWriter(b *testing.B) {
	c := kafkatest.Shared(b)
	ctx := context.Background()
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Key: fmt.Appendf(nil, "key-%06d", i), Value: make([]byte, 100), Partition: uint32(i)}
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txns/s")
	}
	b.Run("TxnWriter", func(b *testing.B) {
		topic := c.Topic(b, 4)
		w, err := OpenTxnWriter(ctx, Config{Brokers: c.Addrs()}, topic, fmt.Sprintf("bench-%d", time.Now().UnixNano()), TxnOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		b.SetBytes(int64(len(recs) * 100))
		for i := -1; i < b.N; i++ { // -1 warms up before the timer starts
			if i == 0 {
				b.ResetTimer()
			}
			if err := w.Prepare(ctx, uint64(i+2), recs); err != nil {
				b.Fatal(err)
			}
			if err := w.Decide(ctx, uint64(i+2)); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("franz-go", func(b *testing.B) {
		topic := c.Topic(b, 4)
		cl := c.Client(b, kgo.TransactionalID(fmt.Sprintf("bench-raw-%d", time.Now().UnixNano())), kgo.DefaultProduceTopic(topic))
		b.SetBytes(int64(len(recs) * 100))
		for i := -1; i < b.N; i++ { // -1 warms up (producer id, metadata) before the timer starts
			if i == 0 {
				b.ResetTimer()
			}
			if err := cl.BeginTransaction(); err != nil {
				b.Fatal(err)
			}
			for i := range recs {
				cl.Produce(ctx, &kgo.Record{Key: recs[i].Key, Value: recs[i].Value}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{fmt.Errorf("prepare: %w", syscall.ECONNRESET), true},
		{io.EOF, true},
		{fmt.Errorf("add offsets: %w", kerr.NotCoordinator), true},
		{kerr.CoordinatorNotAvailable, true},
		{kerr.NotLeaderForPartition, true},
		{kerr.ProducerFenced, false},
		{fmt.Errorf("%w: stop this instance", ErrFenced), false},
		{kerr.TopicAuthorizationFailed, false},
		{errors.New("a record is larger than the topic accepts"), false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
