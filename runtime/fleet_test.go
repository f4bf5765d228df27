package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/kafkatest"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestFleetMovesPartitionsWithState runs two instances of a kafka: ->
// kafka: pipeline with the stateful count in one process (separate data
// directories, as on two machines; run under -race): they share the
// input's partitions; once the first has stopped (leaving the group), the
// second takes its partitions over, restoring their state from the
// changelog, and processes the rest. Every key's counts run 1..n once
// each, and the metrics show the rebalances and the restore.
func TestFleetMovesPartitionsWithState(t *testing.T) {
	c := kafkatest.Shared(t)
	const parts, users = 4, 23
	in := c.Topic(t, parts)
	out := in + "-out"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produce := func(from, n int) {
		cl := c.Client(t, kgo.DefaultProduceTopic(in))
		for i := from; i < from+n; i++ {
			cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "u%d", i%users), Value: fmt.Appendf(nil, `{"n":%d}`, i)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]int{}
	total := 0
	reader := c.Client(t, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	waitOutputs := func(n int) {
		t.Helper()
		for total < n {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := reader.PollFetches(pctx)
			pcancel()
			if ctx.Err() != nil {
				t.Fatalf("%d of %d outputs", total, n)
			}
			fs.EachRecord(func(r *kgo.Record) {
				var o struct {
					Key   string
					Count int
				}
				if err := json.Unmarshal(r.Value, &o); err != nil {
					t.Fatal(err)
				}
				got[o.Key] = append(got[o.Key], o.Count)
				total++
			})
		}
	}
	plugin := testPlugin(t, "count")
	metrics := []*Metrics{NewMetrics(nil), NewMetrics(nil)}
	start := func(i int) (*Pipeline, <-chan error) {
		return startFleetInstance(t, ctx, c, in, out, Config{Name: "fleet-" + in, Plugin: plugin, BatchSize: 100, Metrics: metrics[i]})
	}
	// a alone, then b joins (taking half the partitions and their state),
	// then a leaves (b takes everything).
	produce(0, 4000)
	a, aDone := start(0)
	waitOutputs(4000)
	b, bDone := start(1)
	for promtest.ToFloat64(metrics[1].AssignedPartitions.WithLabelValues("fleet-"+in)) == 0 {
		if ctx.Err() != nil {
			t.Fatal("b never got a partition")
		}
		time.Sleep(10 * time.Millisecond)
	}
	produce(4000, 4000)
	waitOutputs(8000)
	// a reports only the partitions it still holds.
	held := a.Status().Assigned
	if len(held) == 0 || len(held) == parts {
		t.Fatalf("a holds partitions %v with b in the group", held)
	}
	if n := promtest.CollectAndCount(metrics[0].ConsumerLag); n > len(held) {
		t.Errorf("a reports consumer lag for %d partitions but holds %v", n, held)
	}
	a.Stop()
	if err := <-aDone; err != nil {
		t.Fatalf("a: %v", err)
	}
	produce(8000, 2000)
	waitOutputs(10000)
	if held := b.Status().Assigned; len(held) != parts {
		t.Errorf("b holds partitions %v after a left, want all %d", held, parts)
	}
	b.Stop()
	if err := <-bDone; err != nil {
		t.Fatalf("b: %v", err)
	}
	for u := range users {
		k := fmt.Sprintf("u%d", u)
		for i, n := range got[k] {
			if n != i+1 {
				t.Fatalf("key %s: counts %v: want 1..%d once each", k, got[k], len(got[k]))
			}
		}
		if want := 10000/users + btoi(u < 10000%users); len(got[k]) != want {
			t.Fatalf("key %s: %d outputs, want %d", k, len(got[k]), want)
		}
	}
	if total != 10000 {
		t.Fatalf("%d outputs, want 10000", total)
	}
	name := "fleet-" + in
	if n := promtest.ToFloat64(metrics[1].Rebalances.WithLabelValues(name, "assigned")); n < 2 {
		t.Errorf("b saw %v assignments, want at least 2 (half the partitions, then a's)", n)
	}
	restored := 0.0
	for p := range parts {
		restored += promtest.ToFloat64(metrics[1].RestoredRecords.WithLabelValues(name, partName(uint32(p))))
	}
	if restored == 0 {
		t.Errorf("b restored nothing from the changelog when it took a's partitions over")
	}
}

// TestFleetDedupFollowsPartitions: with deduplication, the message ids a
// kafka: -> kafka: instance commits ride in its Kafka transactions (the
// topic PIPELINE-dedup): after the partitions move to another instance,
// redelivered records (same ids) are skipped there too.
func TestFleetDedupFollowsPartitions(t *testing.T) {
	c := kafkatest.Shared(t)
	in := c.Topic(t, 3)
	out := in + "-out"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produce := func(from, n int) {
		cl := c.Client(t, kgo.DefaultProduceTopic(in))
		for i := from; i < from+n; i++ {
			cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%17), Value: fmt.Appendf(nil, `{"id":"m%d"}`, i)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run := func() Stats {
		db := memDB(t)
		src, sink := kafkaPipe(t, ctx, c, db, in, out)
		defer sink.Close()
		defer src.Close()
		st, err := runPipeline(t, Config{Name: "dedup-" + in, DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink,
			BatchSize: 100, Dedup: &DedupConfig{IDField: "id"}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	produce(0, 1500)
	if st := run(); st.RecordsOut != 1500 {
		t.Fatalf("first instance: %+v, want 1500 outputs", st)
	}
	produce(0, 1500) // redelivered: the same ids
	produce(1500, 300)
	st := run() // another data directory: the ids come from Kafka
	if st.RecordsOut != 300 || st.Duplicates != 1500 {
		t.Fatalf("second instance: %d outputs and %d duplicates, want 300 and 1500", st.RecordsOut, st.Duplicates)
	}
}

// TestFleetKafkaLateOutput: with event time and a kafka: late output, the
// records beyond the allowed lateness go to the late topic in the same
// Kafka transactions as the outputs, once each, and the rest to the output.
// The second run has the first's data directory, or another one (the
// partitions' next owner on another machine): the committed watermarks
// come with the partitions, in the group's offset metadata.
func TestFleetKafkaLateOutput(t *testing.T) {
	for _, dir := range []string{"same data directory", "another data directory"} {
		t.Run(dir, func(t *testing.T) { testFleetKafkaLateOutput(t, dir == "same data directory") })
	}
}

func testFleetKafkaLateOutput(t *testing.T, sameDir bool) {
	c := kafkatest.Shared(t)
	in := c.Topic(t, 2)
	out, late := in+"-out", in+"-late"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produce := func(from, n int, ts func(i int) int64) {
		cl := c.Client(t, kgo.DefaultProduceTopic(in))
		for i := from; i < from+n; i++ {
			cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, `{"n":%d,"ts":%d}`, i, ts(i))}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db := memDB(t)
	run := func() Stats {
		if !sameDir {
			db = memDB(t)
		}
		src, sink := kafkaPipe(t, ctx, c, db, in, out)
		defer sink.Close()
		defer src.Close()
		st, err := runPipeline(t, Config{Name: "late-" + in, DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 50,
			EventTime: &EventTimeConfig{Extract: "json:ts", Format: "unix-ms", WatermarkDelay: time.Second, AllowedLateness: time.Second, LateOutput: "kafka:" + late}})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	const base = 1_700_000_000_000
	produce(0, 1000, func(i int) int64 { return base + int64(i)*1000 }) // on time: the watermark reaches ~base+999s
	if st := run(); st.RecordsOut != 1000 || st.Late != 0 {
		t.Fatalf("first run: %+v", st)
	}
	produce(1000, 300, func(int) int64 { return base }) // 1000s behind the committed watermark
	if st := run(); st.RecordsOut != 0 || st.Late != 300 {
		t.Fatalf("second run: %d outputs, %d late; want 0 and 300", st.RecordsOut, st.Late)
	}
	cl := c.Client(t, kgo.ConsumeTopics(late), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	// Read until the 300 are there or nothing came for 20 s (a loaded
	// machine can be slow to fetch; the run already committed them).
	for quiet := time.Now(); len(seen) < 300 && ctx.Err() == nil && time.Since(quiet) < 20*time.Second; {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if fs.NumRecords() > 0 {
			quiet = time.Now()
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	// Anything beyond the 300 (a record twice) comes within a second.
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	pcancel()
	if len(seen) != 300 {
		t.Fatalf("the late topic holds %d distinct records, want 300", len(seen))
	}
	for v, n := range seen {
		if n != 1 || !strings.Contains(v, fmt.Sprintf(`"ts":%d`, base)) {
			t.Fatalf("late record %s seen %d times", v, n)
		}
	}
}

// startFleetInstance runs cfg as a --follow instance of a kafka:in ->
// kafka:out fleet on c, with a data directory of its own, until it is
// stopped or ctx ends; done receives Run's error.
func startFleetInstance(t *testing.T, ctx context.Context, c *kafkatest.Cluster, in, out string, cfg Config) (p *Pipeline, done <-chan error) {
	t.Helper()
	cfg.DB = memDB(t)
	src, sink := kafkaPipe(t, ctx, c, cfg.DB, in, out)
	cfg.Source, cfg.Sink, cfg.Follow, cfg.Logger = src, sink, true, quiet
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() {
		_, err := p.Run(ctx)
		sink.Close()
		src.Close()
		ch <- err
	}()
	return p, ch
}

// kafkaPipe is a kafka:in source and kafka:out sink on c, for a fleet
// instance whose data directory is db.
func kafkaPipe(t *testing.T, ctx context.Context, c *kafkatest.Cluster, db *storage.DB, in, out string) (*kafkaSource, Sink) {
	t.Helper()
	ep := Endpoints{DB: db, Kafka: &KafkaConfig{Brokers: c.Addrs(), CreateTopics: true, SessionTimeout: 6 * time.Second}}
	src, err := ParseSource(ctx, "kafka:"+in, ep)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := ParseSink(ctx, "kafka:"+out, ep, src.Partitions())
	if err != nil {
		t.Fatal(err)
	}
	return src.(*kafkaSource), sink
}

// runWithinMinute builds a pipeline of cfg and runs it for at most a
// minute of ctx (a bounded run that hangs fails instead of blocking).
func runWithinMinute(t *testing.T, ctx context.Context, cfg Config) (*Pipeline, Stats, error) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := p.Run(ctx)
	return p, st, err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestTopicNextsMetadata: the offset-commit metadata round-trips, with and
// without watermarks, and the older two-field form still reads.
func TestTopicNextsMetadata(t *testing.T) {
	for _, tc := range []struct {
		n    topicNexts
		text string
	}{
		{topicNexts{state: 12, dedup: 3, mark: eventtime.NoWatermark, pipeline: eventtime.NoWatermark}, "12/3"},
		{topicNexts{state: 12, dedup: 3, mark: 1_700_000_000_000, pipeline: 1_699_999_999_000}, "12/3/1700000000000/1699999999000"},
		{topicNexts{state: 0, dedup: 0, mark: -5, pipeline: eventtime.NoWatermark}, fmt.Sprintf("0/0/-5/%d", int64(eventtime.NoWatermark))},
	} {
		if got := tc.n.String(); got != tc.text {
			t.Errorf("%+v: %q, want %q", tc.n, got, tc.text)
		}
		if got := parseNexts(tc.text); got != tc.n {
			t.Errorf("parseNexts(%q) = %+v, want %+v", tc.text, got, tc.n)
		}
	}
	if got := parseNexts("7"); got.state != 7 || got.mark != eventtime.NoWatermark {
		t.Errorf(`parseNexts("7") = %+v`, got)
	}
}

// TestFleetWindowsFollowPartitions: a windowed kafka: -> kafka: pipeline
// (window_count, tumbling one-minute windows, --emit final) hands its
// partitions from one instance to another with windows still open: the
// open windows' state comes through the changelog and the watermarks
// through the offsets' metadata, so every window the final watermark has
// passed has exactly one result, equal to its count of records, the
// windows that were open at the move included.
func TestFleetWindowsFollowPartitions(t *testing.T) {
	c := kafkatest.Shared(t)
	in := c.Topic(t, 2)
	out := in + "-out"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const keys, perMinute = 5, 60
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli()
	want := map[string]int{}
	var last int64
	produce := func(fromMinute, toMinute int) {
		cl := c.Client(t, kgo.DefaultProduceTopic(in))
		for m := fromMinute; m < toMinute; m++ {
			for i := range perMinute {
				k, ts := fmt.Sprintf("k%d", i%keys), base+int64(m)*60_000+int64(i)*1000
				cl.Produce(ctx, &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, `{"k":%q,"ts":%d}`, k, ts)}, nil)
				start := time.UnixMilli(base + int64(m)*60_000).UTC()
				want[k+"|"+start.Format(time.RFC3339)+"|"+start.Add(time.Minute).Format(time.RFC3339)]++
				last = max(last, ts)
			}
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reader := c.Client(t, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string][]int{}
	results := 0
	waitResults := func(n int) {
		t.Helper()
		for results < n {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := reader.PollFetches(pctx)
			pcancel()
			if ctx.Err() != nil {
				t.Fatalf("%d of %d window results", results, n)
			}
			fs.EachRecord(func(r *kgo.Record) {
				var l windowCountLine
				if err := json.Unmarshal(r.Value, &l); err != nil {
					t.Fatal(err)
				}
				k := l.Key + "|" + l.WindowStart + "|" + l.WindowEnd
				got[k] = append(got[k], l.Count)
				results++
			})
		}
	}
	start := func() (*Pipeline, <-chan error) {
		return startFleetInstance(t, ctx, c, in, out, Config{Name: "win-" + in, Plugin: testPlugin(t, "window_count"), BatchSize: 50,
			PluginConfig: []abi.Header{{Key: []byte("key_field"), Value: []byte("k")}},
			EventTime:    &EventTimeConfig{Extract: "json:ts", Format: "unix-ms", Window: "tumbling:1m", AllowedLateness: 2 * time.Minute}})
	}
	// a sees minutes 0-5: windows close 2 minutes (the allowed lateness)
	// after their end, so it closes minutes 0-2 and stops with 3-5 open; b,
	// with another data directory, gets the partitions and minutes 5-10
	// (minute 5 again: late, within the lateness).
	produce(0, 6)
	a, aDone := start()
	waitResults(3 * keys)
	a.Stop()
	if err := <-aDone; err != nil {
		t.Fatalf("a: %v", err)
	}
	produce(5, 11) // minute 5 gets as many records again
	b, bDone := start()
	closed := 0
	for k := range want {
		_, win, _ := strings.Cut(k, "|")
		_, end, _ := strings.Cut(win, "|")
		// closed once every partition's watermark is 2 minutes past the end
		if e, _ := time.Parse(time.RFC3339, end); e.UnixMilli()+2*60_000 <= last-5000 {
			closed++
		}
	}
	waitResults(closed)
	time.Sleep(time.Second) // nothing more may come
	b.Stop()
	if err := <-bDone; err != nil {
		t.Fatalf("b: %v", err)
	}
	for k, ns := range got {
		if len(ns) != 1 || ns[0] != want[k] {
			t.Errorf("%s: results %v, want [%d]", k, ns, want[k])
		}
	}
	if results != closed {
		t.Errorf("%d results for the %d windows the watermark passed", results, closed)
	}
}

// TestFleetRefusesDeadLetterRetry: a kafka: fleet's dead letters go to its
// dead-letter topic (and a copy into the instance's queue), and a retry
// from the data directory is refused, on the running instance and once it
// stopped, before anything is produced: it would commit outside the
// fleet's transactions.
func TestFleetRefusesDeadLetterRetry(t *testing.T) {
	c := kafkatest.Shared(t)
	in := c.Topic(t, 2)
	out := in + "-out"
	name := "dlq-" + in
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	for i := range 20 {
		v := fmt.Sprintf(`{"i":%d}`, i)
		if i%10 == 3 {
			v = fmt.Sprintf(`{"i":%d,"v":"fail"}`, i)
		}
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	plugin := testPlugin(t, hostileGuest)
	p, done := startFleetInstance(t, ctx, c, in, out, Config{Name: name, Plugin: plugin, BatchSize: 5})
	dead := c.Client(t, kgo.ConsumeTopics(fleetDeadTopic(name)), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < 2; {
		fs := dead.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of 2 dead letters in %s", got, fleetDeadTopic(name))
		}
		got += fs.NumRecords()
	}
	if _, err := p.RetryDeadLetters(ctx, nil); !errors.Is(err, ErrFleetDeadLetters) {
		t.Fatalf("retry on the running instance: %v", err)
	}
	p.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	q, err := NewDeadLetterQueue(p.cfg.DB, name)
	if err != nil || q.Size() != 2 {
		t.Fatalf("the instance's copy of its dead letters: %d entries, %v", q.Size(), err)
	}
	src, sink := kafkaPipe(t, ctx, c, p.cfg.DB, in, out)
	defer src.Close()
	defer sink.Close()
	_, err = RetryDeadLetters(ctx, RetryConfig{Name: name, DB: p.cfg.DB, Plugin: plugin, Sink: sink, Logger: quiet})
	if !errors.Is(err, ErrFleetDeadLetters) || !strings.Contains(err.Error(), fleetDeadTopic(name)) {
		t.Fatalf("retry of the stopped instance: %v", err)
	}
}

// TestKafkaTransactionalInput: an input written by transactional producers
// holds a commit or abort marker after each transaction. A read that
// passes only markers (the batch before ended with a transaction's last
// record, or the tail is an aborted transaction) moves the partition's
// position with no records; that position is committed like a batch's.
// Before, it was dropped: a bounded fleet, which ends once the group's
// offsets reach the ends, waited forever, and a plain kafka: input's
// committed offset stayed before the marker.
func TestKafkaTransactionalInput(t *testing.T) {
	c := kafkatest.Shared(t)
	for _, tc := range []struct {
		name    string
		txns    []int // records per transaction; negative: aborted
		batch   int
		fleet   bool
		wantOut int64
	}{
		{name: "fleet, one transaction of a batch", txns: []int{100}, batch: 100, fleet: true, wantOut: 100},
		{name: "fleet, transactions of a batch each", txns: []int{50, 50, 50}, batch: 50, fleet: true, wantOut: 150},
		{name: "fleet, an aborted transaction last", txns: []int{30, -20}, batch: 100, fleet: true, wantOut: 30},
		{name: "file output, one transaction of a batch", txns: []int{100}, batch: 100, wantOut: 100},
		{name: "file output, an aborted transaction last", txns: []int{30, -20}, batch: 100, wantOut: 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			in := c.Topic(t, 1)
			cl := c.Client(t, kgo.DefaultProduceTopic(in), kgo.TransactionalID("txn-input-"+in))
			n := 0
			for _, size := range tc.txns {
				if err := cl.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				for range max(size, -size) {
					cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, `{"n":%d}`, n)}, nil)
					n++
				}
				if err := cl.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(size > 0)); err != nil {
					t.Fatal(err)
				}
			}
			ends, ok := c.StableEnds(t, ctx, in, 30*time.Second)
			if !ok {
				t.Fatal("the input's transactions did not settle")
			}
			end, _ := ends.Lookup(in, 0)

			db := memDB(t)
			src, fleetSink := kafkaPipe(t, ctx, c, db, in, in+"-out")
			defer src.Close()
			defer fleetSink.Close()
			sink := fleetSink
			if !tc.fleet {
				var err error
				if sink, err = newFileSink(filepath.Join(t.TempDir(), "out.jsonl")); err != nil {
					t.Fatal(err)
				}
			}
			p, st, err := runWithinMinute(t, ctx, Config{Name: "txn-input-" + in, DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink,
				BatchSize: tc.batch, Logger: quiet})
			if err != nil {
				t.Fatalf("run: %v (the input ends at offset %d)", err, end.Offset)
			}
			if st.RecordsOut != tc.wantOut {
				t.Fatalf("%d outputs, want %d (the input ends at offset %d)", st.RecordsOut, tc.wantOut, end.Offset)
			}
			if !tc.fleet {
				if pos, _ := p.offsets.Committed(0); pos.Offset != end.Offset {
					t.Fatalf("committed offset %d, want the input's end %d", pos.Offset, end.Offset)
				}
			}
		})
	}
}

// TestKafkaRetentionGap: records retention deleted before a bounded run
// read them are skipped with a warning; the run ends instead of waiting
// for offsets that no longer exist, and later records are processed.
func TestKafkaRetentionGap(t *testing.T) {
	c := kafkatest.Shared(t)
	for _, fleet := range []bool{true, false} {
		t.Run(map[bool]string{true: "fleet", false: "file output"}[fleet], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			in := c.Topic(t, 1)
			cl := c.Client(t, kgo.DefaultProduceTopic(in))
			produce := func(n int) int64 {
				t.Helper()
				for i := range n {
					cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, `{"n":%d}`, i)}, nil)
				}
				if err := cl.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				end, _ := ends.Lookup(in, 0)
				return end.Offset
			}
			db, name := memDB(t), "gap-"+in
			out := filepath.Join(t.TempDir(), "out.jsonl")
			run := func(want int64, gap bool) *Pipeline {
				t.Helper()
				src, sink := kafkaPipe(t, ctx, c, db, in, in+"-out")
				defer src.Close()
				defer sink.Close()
				if !fleet {
					var err error
					if sink, err = newFileSink(out); err != nil {
						t.Fatal(err)
					}
					defer sink.Close()
				}
				var logs bytes.Buffer
				p, st, err := runWithinMinute(t, ctx, Config{Name: name, DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink,
					BatchSize: 20, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if st.RecordsOut != want {
					t.Fatalf("%d outputs, want %d", st.RecordsOut, want)
				}
				if warned := strings.Contains(logs.String(), "deleted by the topic's retention"); warned != gap {
					t.Fatalf("retention warning logged: %v, want %v; logs:\n%s", warned, gap, logs.String())
				}
				return p
			}
			produce(50)
			run(50, false)
			end := produce(50)
			res, err := kadm.NewClient(cl).DeleteRecords(ctx, kadm.Offsets{in: {0: {Topic: in, Partition: 0, At: end}}})
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				t.Fatal(err)
			}
			p := run(0, true)
			if pos, _ := p.offsets.Committed(0); !fleet && pos.Offset != end {
				t.Fatalf("committed offset %d after the gap, want the log start %d", pos.Offset, end)
			}
			produce(10)
			// A fleet commits no offset for a run without records: its
			// group's offset is still below the gap, which is reported again.
			run(10, fleet)
			// A new pipeline starts at the log start without a warning: it
			// skipped nothing it had committed to read.
			db, name, out = memDB(t), "fresh-"+in, filepath.Join(t.TempDir(), "fresh.jsonl")
			run(10, false)
		})
	}
}

// TestFleetChangelogRecreated: a changelog topic deleted and created again
// holds none of the state the consumer group's offsets say it reaches. A
// fleet assigned such a partition fails, naming the topic and what to do;
// before, it waited for the missing offsets forever.
func TestFleetChangelogRecreated(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in := c.Topic(t, 1)
	name := "recreated-" + in
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	produce := func(n int) {
		t.Helper()
		for i := range n {
			cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "u%d", i%3), Value: fmt.Appendf(nil, `{"n":%d}`, i)}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run := func() (Stats, error) {
		db := memDB(t) // a fresh data directory: the state comes from the changelog
		src, sink := kafkaPipe(t, ctx, c, db, in, in+"-out")
		defer src.Close()
		defer sink.Close()
		_, st, err := runWithinMinute(t, ctx, Config{Name: name, DB: db, Plugin: testPlugin(t, "count"), Source: src, Sink: sink, BatchSize: 10, Logger: quiet})
		return st, err
	}
	produce(20)
	if st, err := run(); err != nil || st.RecordsOut != 20 {
		t.Fatalf("first run: %d outputs, %v", st.RecordsOut, err)
	}
	res, err := kadm.NewClient(cl).DeleteTopics(ctx, name+"-state")
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	for c.Cluster.CreateTopic(ctx, name+"-state", 1) != nil { // the deletion completes asynchronously
		if ctx.Err() != nil {
			t.Fatal("the changelog topic could not be created again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	produce(5)
	_, err = run()
	if !errors.Is(err, ErrKafkaOffsetsBehind) || !strings.Contains(err.Error(), name+"-state") || !strings.Contains(err.Error(), "new pipeline name") {
		t.Fatalf("run over the recreated changelog: %v, want %v naming the topic", err, ErrKafkaOffsetsBehind)
	}
}
