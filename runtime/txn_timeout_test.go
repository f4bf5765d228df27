package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
	"github.com/heliosdb/helios-wasm/storage"
)

// slowPrepare makes p's transactions of more than batches processed
// batches take slow to prepare, past a transaction timeout below slow: the
// first three of them, or every one for batches 0. With batches > 0 the
// first transaction of a batch also takes a third of slow (within the
// timeout), so that batches queue up behind it and later transactions
// gather several whatever the machine's speed.
func slowPrepare(p *Pipeline, batches int, slow time.Duration) {
	slowed, backlog := 0, false
	p.coord.cfg.prepared = func(t *transaction) {
		switch n := len(t.effects.offsets); {
		case n > batches && (slowed < 3 || batches == 0):
			slowed++
			time.Sleep(slow)
		case n > 0 && batches > 0 && !backlog:
			backlog = true
			time.Sleep(slow / 3)
		}
	}
}

// TestTxnTimeoutSplits: a transaction of several batches that takes longer
// than the transaction timeout to prepare is aborted and its batches are
// committed again in smaller transactions, over every kind of commit (a
// file output, a kafka: output, a consumer group's kafka: -> kafka:): the
// run goes on, and every record is written once, in order. A single batch
// that times out stops the run, naming the way out; the next run writes
// exactly the rest.
func TestTxnTimeoutSplits(t *testing.T) {
	const total = 2000
	input := lines(total, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })
	want := strings.Split(strings.ToUpper(strings.TrimSuffix(input, "\n")), "\n")
	for _, tc := range []struct {
		name    string
		batches int // transactions of more batches are slow
		run     func(t *testing.T, cfg Config, slow func(*Pipeline)) (got []string, err error)
	}{
		{"file several batches", 1, fileToFile},
		{"file one batch", 0, fileToFile},
		{"log to kafka", 1, logToKafka},
		{"kafka group", 1, kafkaGroup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			metrics := NewMetrics(prometheus.NewRegistry())
			cfg := Config{Name: "p", Plugin: testPlugin(t, "uppercase"), BatchSize: 100, TxnTimeout: time.Second, Metrics: metrics, Logger: quiet}
			got, err := tc.run(t, cfg, func(p *Pipeline) { slowPrepare(p, tc.batches, 1500*time.Millisecond) })
			if promtest.ToFloat64(metrics.TxnResults.WithLabelValues("p", "timed_out")) == 0 {
				t.Fatalf("no transaction timed out (%v): the test's slow prepare did not take effect", err)
			}
			if tc.batches == 0 {
				if !errors.Is(err, errTxnTimedOut) || !strings.Contains(err.Error(), "raise --transaction-timeout") {
					t.Fatalf("a batch that cannot commit within the timeout: %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("the output is not the input once, in order: %d records, want %d", len(got), len(want))
			}
		})
	}
}

// fileToFile runs the input from a file to a file, once with slow and,
// if that run fails, again without it.
func fileToFile(t *testing.T, cfg Config, slow func(*Pipeline)) ([]string, error) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(lines(2000, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })), 0o644)
	cfg.DB = diskDB(t, filepath.Join(dir, "data"))
	defer cfg.DB.Close()
	var first error
	for run := range 2 {
		cfg.Source, _ = newFileSource(in)
		fs, _ := newFileSink(out)
		cfg.Sink = fs
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			slow(p)
		}
		_, err = p.Run(context.Background())
		fs.Close()
		if run == 0 {
			if first = err; err == nil {
				break
			}
		} else if err != nil {
			t.Fatalf("the run after a failed one: %v", err)
		}
	}
	b, _ := os.ReadFile(out)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), first
}

// logToKafka runs the input from a log topic to a kafka: output.
func logToKafka(t *testing.T, cfg Config, slow func(*Pipeline)) ([]string, error) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := c.Topic(t, 1)
	cfg.DB = memDB(t)
	cfg.Source = mustLogSource(t, cfg.DB, "in")
	b := cfg.DB.NewBatch()
	for i := range 2000 {
		b.Append("in", 0, &storage.Entry{Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if err := cfg.DB.Commit(b); err != nil {
		t.Fatal(err)
	}
	sink, err := ParseSink(ctx, "kafka:"+out, Endpoints{DB: cfg.DB, Kafka: &KafkaConfig{Brokers: c.Addrs()}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	cfg.Sink = sink
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	slow(p)
	if _, err := p.Run(ctx); err != nil {
		return nil, err
	}
	return readCommitted(t, ctx, c, out, 2000), nil
}

// kafkaGroup runs the input from a kafka: topic to a kafka: output as one
// instance of a consumer group.
func kafkaGroup(t *testing.T, cfg Config, slow func(*Pipeline)) ([]string, error) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := c.Topic(t, 1)
	cl := c.Client(t, kgo.DefaultProduceTopic(in))
	for i := range 2000 {
		cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, `{"n":%d}`, i)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Name = "p"
	cfg.DB = memDB(t)
	src, sink := kafkaPipe(t, ctx, c, cfg.DB, in, in+"-out")
	defer src.Close()
	defer sink.Close()
	cfg.Source, cfg.Sink, cfg.Follow = src, sink, true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	slow(p)
	done := make(chan error, 1)
	go func() { _, err := p.Run(ctx); done <- err }()
	got := readCommitted(t, ctx, c, in+"-out", 2000)
	p.Stop()
	return got, <-done
}

// readCommitted reads topic's committed records until it has n, and for
// half a second more (a duplicate at the end shows).
func readCommitted(t *testing.T, ctx context.Context, c *kafkatest.Cluster, topic string, n int) []string {
	t.Helper()
	reader := c.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < n {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := reader.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("%d of %d outputs", len(got), n)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer pcancel()
	reader.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	return got
}

// TestTxnTimeoutAtLeastOnceSink: a transaction into an at-least-once sink
// (stdout) that prepares past the transaction timeout commits: its lines
// are already written and cannot be taken back. Before, it was aborted
// and committed again in halves, writing its lines again in a run that
// ended without an error (3500 lines for 2000 records), or, for one
// batch, stopped the run after writing them.
func TestTxnTimeoutAtLeastOnceSink(t *testing.T) {
	const total = 2000
	input := lines(total, func(i int) string { return fmt.Sprintf(`{"n":%d}`, i) })
	want := strings.ToUpper(input)
	for _, tc := range []struct {
		name    string
		batches int // transactions of more batches are slow
	}{
		{"several batches", 1},
		{"one batch", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.jsonl")
			os.WriteFile(in, []byte(input), 0o644)
			db := diskDB(t, filepath.Join(dir, "data"))
			defer db.Close()
			src, _ := newFileSource(in)
			var out strings.Builder
			metrics := NewMetrics(prometheus.NewRegistry())
			p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: newWriterSink(&out),
				BatchSize: 100, TxnTimeout: time.Second, AtLeastOnce: true, Metrics: metrics, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			slowPrepare(p, tc.batches, 1500*time.Millisecond)
			if _, err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != want {
				t.Fatalf("stdout has %d lines, want the %d records once, in order", strings.Count(got, "\n"), total)
			}
			if n := promtest.ToFloat64(metrics.TxnResults.WithLabelValues("p", "timed_out")); n != 0 {
				t.Fatalf("%v transactions timed out, want 0", n)
			}
		})
	}
}
