package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

const hostileGuest = "internal/testutil/guests/hostile"

// TestDeadLetters: failed, trapping and malformed records go to the
// dead-letter queue in the same transaction as the good records' outputs;
// the good records are all output, in order.
func TestDeadLetters(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	var lines, want []string
	bad := map[int]uint32{37: abi.FailGeneric, 150: abi.FailTrap, 151: abi.FailTrap, 402: abi.FailMalformedInput, 777: abi.FailTrap, 999: abi.FailGeneric}
	for i := 0; i < 1000; i++ {
		l := fmt.Sprintf(`{"i":%d}`, i)
		switch bad[i] {
		case abi.FailGeneric:
			l = fmt.Sprintf(`{"i":%d,"v":"fail"}`, i)
		case abi.FailTrap:
			l = fmt.Sprintf(`{"i":%d,"v":"boom"}`, i)
		case abi.FailMalformedInput:
			l = fmt.Sprintf(`{"i":%d,oops`, i)
		default:
			want = append(want, l)
		}
		lines = append(lines, l)
	}
	os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	offsets := make([]int, len(lines))
	for i := 1; i < len(lines); i++ {
		offsets[i] = offsets[i-1] + len(lines[i-1]) + 1
	}
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	defer sink.Close()
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink, BatchSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsIn != 1000 || st.RecordsOut != int64(len(want)) || st.DeadLettered != int64(len(bad)) {
		t.Fatalf("stats %+v", st)
	}
	got, _ := os.ReadFile(out)
	if string(got) != strings.Join(want, "\n")+"\n" {
		t.Fatalf("output differs from the good records")
	}
	q, _ := newDeadLetterQueue(db, "p", dlqConfig{})
	seen := map[int]bool{}
	q.List(func(e DLQEntry) error {
		var i int
		fmt.Sscanf(string(e.Value), `{"i":%d`, &i)
		if bad[i] != e.Code || seen[i] {
			t.Errorf("entry %d: line %d code %d (want %d), seen before: %v: %s", e.ID, i, e.Code, bad[i], seen[i], e.Error)
		}
		seen[i] = true
		if e.Code == abi.FailTrap && !strings.Contains(e.Error, "panic: boom") {
			t.Errorf("trap entry lacks the panic: %s", e.Error)
		}
		if e.Code == abi.FailMalformedInput && (e.Line != 403 || !strings.Contains(e.Error, "in.jsonl line 403")) {
			t.Errorf("malformed entry: line %d: %s", e.Line, e.Error)
		}
		// Plugin failures carry their line too, like malformed lines.
		if e.Line != int64(i+1) || e.Offset != int64(offsets[i]) {
			t.Errorf("entry for line %d (code %d) says line %d offset %d, want offset %d", i+1, e.Code, e.Line, e.Offset, offsets[i])
		}
		if e.Source != src.Identity() || e.Pipeline != "p" || e.PluginHash == "" || e.MessageID == "" || e.LastFailure.IsZero() {
			t.Errorf("entry lacks context: %+v", e)
		}
		return nil
	})
	if len(seen) != len(bad) || q.Size() != len(bad) {
		t.Fatalf("%d entries, want %d", len(seen), len(bad))
	}
}

func TestDeadLetterDeadline(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"a":1}`+"\n"+`{"v":"loop"}`+"\n"+`{"b":2}`+"\n"), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(filepath.Join(dir, "out.jsonl"))
	defer sink.Close()
	p := shortDeadlinePlugin(t)
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: p, Source: src, Sink: sink})
	if err != nil || st.RecordsOut != 2 || st.DeadLettered != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	q, _ := newDeadLetterQueue(db, "p", dlqConfig{})
	e, err := q.Get(0)
	if err != nil || e.Code != abi.FailDeadline || e.Line != 2 || e.Offset != 8 {
		t.Fatalf("entry %+v %v", e, err)
	}
}

// dlqFullSetup writes 30 records of which 5 and 25 fail, for batches of 10
// and a queue of at most 1 entry: the third batch's failure does not fit.
func dlqFullSetup(t *testing.T, follow bool, max int) (*Pipeline, string) {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(lines(30, func(i int) string {
		if i == 5 || i == 25 {
			return `{"v":"fail"}`
		}
		return fmt.Sprintf(`{"i":%d}`, i)
	})), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	t.Cleanup(func() { db.Close() })
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	t.Cleanup(func() { sink.Close() })
	p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink, BatchSize: 10,
		Follow: follow, DeadLetterMax: max, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return p, out
}

func outLines(t *testing.T, path string) int {
	t.Helper()
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// runAsync runs p in the background; the returned function waits for its
// result, failing the test after 30s (a pipeline hanging on its queue).
func runAsync(t *testing.T, p *Pipeline) func() error {
	done := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); done <- err }()
	return func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("the pipeline did not return within 30s")
			return nil
		}
	}
}

// TestDeadLetterQueueFullBoundedRunStops: a bounded run whose batch does not
// fit stops with an error giving the committed and reserved entries, the
// need and the max, with everything before the batch committed.
func TestDeadLetterQueueFullBoundedRunStops(t *testing.T) {
	p, out := dlqFullSetup(t, false, 1)
	err := runAsync(t, p)()
	var full *dlqFullError
	if !errors.As(err, &full) || !errors.Is(err, ErrDLQFull) {
		t.Fatalf("got %v, want a *DLQFullError", err)
	}
	if full.Committed+full.Reserved != 1 || full.Needed != 1 || full.Max != 1 {
		t.Fatalf("error details %+v", full)
	}
	for _, want := range []string{"pipeline p", "max 1", "needs 1 more", "dlq purge", "everything before this batch is committed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if n := outLines(t, out); n != 19 {
		t.Fatalf("%d lines committed, want the 19 good records before the batch that does not fit", n)
	}
	if p.dlq.Size() != 1 || p.dlq.Reserved() != 0 {
		t.Fatalf("dlq size %d reserved %d, want 1 and 0", p.dlq.Size(), p.dlq.Reserved())
	}
}

// TestDeadLetterBatchLargerThanQueue: a batch needing more entries than the
// queue's max can never fit: both modes stop at once instead of pausing
// forever on an empty queue.
func TestDeadLetterBatchLargerThanQueue(t *testing.T) {
	for _, follow := range []bool{false, true} {
		t.Run(fmt.Sprintf("follow=%v", follow), func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
			os.WriteFile(in, []byte(lines(20, func(i int) string { return fmt.Sprintf(`{"i":%d,"v":"fail"}`, i) })), 0o644)
			db := diskDB(t, filepath.Join(dir, "data"))
			defer db.Close()
			src, _ := newFileSource(in)
			sink, _ := newFileSink(out)
			defer sink.Close()
			p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink, BatchSize: 20,
				Follow: follow, DeadLetterMax: 10, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			err = runAsync(t, p)()
			var full *dlqFullError
			if !errors.As(err, &full) || full.Needed != 20 || full.Max != 10 || full.Committed != 0 || !strings.Contains(err.Error(), "can never fit") {
				t.Fatalf("got %v (%+v)", err, full)
			}
			if outLines(t, out) != 0 || p.dlq.Size() != 0 {
				t.Fatalf("something of the batch was committed")
			}
		})
	}
}

// TestDeadLetterQueueFullFollowPausesUntilPurge: a following pipeline
// pauses on a full queue; a purge through the running pipeline makes room
// and it resumes by itself.
func TestDeadLetterQueueFullFollowPausesUntilPurge(t *testing.T) {
	p, out := dlqFullSetup(t, true, 1)
	if _, err := p.PurgeDeadLetters(context.Background(), nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("purge before Run: %v, want ErrNotRunning", err)
	}
	wait := runAsync(t, p)
	deadline := time.Now().Add(30 * time.Second)
	for !p.dlq.metrics().Full && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !p.dlq.metrics().Full || counterGauge(p.cfg.Metrics.DLQFull.WithLabelValues("p")) != 1 {
		t.Fatal("the pipeline did not pause on a full dead-letter queue")
	}
	for p.dlq.Size() != 1 && time.Now().Before(deadline) { // the first batch's entry commits
		time.Sleep(10 * time.Millisecond)
	}
	n, err := p.PurgeDeadLetters(context.Background(), nil)
	if err != nil || n != 1 {
		t.Fatalf("purge through the running pipeline: %d %v", n, err)
	}
	for outLines(t, out) != 28 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if n := outLines(t, out); n != 28 || p.dlq.Size() != 1 || p.dlq.metrics().Full {
		t.Fatalf("after the purge: %d lines (want 28), dlq size %d (want 1), full %v", n, p.dlq.Size(), p.dlq.metrics().Full)
	}
}

// hostileFilePipeline returns the config of pipeline "p", the hostile
// guest from a file the test appends to (f) into the file out, over a
// fresh data directory.
func hostileFilePipeline(t *testing.T) (cfg Config, f *os.File, out string) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	out = filepath.Join(dir, "out.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	db := diskDB(t, filepath.Join(dir, "data"))
	t.Cleanup(func() { db.Close() })
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	t.Cleanup(func() { sink.Close() })
	return Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink, Logger: quiet}, f, out
}

// TestRetryDeadLettersWhileRunning: entries retried through a running
// pipeline (its plugin, its coordinator) leave the queue with their
// outputs, or stay with their retry count, and the next run resumes.
func TestRetryDeadLettersWhileRunning(t *testing.T) {
	cfg, f, out := hostileFilePipeline(t)
	db := cfg.DB
	// The hostile guest fails a "retry" value as retryable the first two
	// times an instance sees it: two runs dead-letter two each.
	for range 2 {
		f.WriteString(`{"v":"retry"}` + "\n" + `{"v":"retry"}` + "\n")
		if st, err := runPipeline(t, cfg); err != nil || st.DeadLettered != 2 {
			t.Fatalf("%+v %v", st, err)
		}
	}
	f.WriteString(`{"c":3}` + "\n")
	cfg.Follow = true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wait := runAsync(t, p)
	<-p.Ready()
	// A fresh instance fails the first two entries again and passes the others.
	st, err := p.RetryDeadLetters(context.Background(), nil)
	if err != nil || st.Retried != 4 || st.Succeeded != 2 || st.Outputs != 2 {
		t.Fatalf("retry through the running pipeline: %+v %v", st, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for outLines(t, out) != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if strings.Count(string(got), `{"v":"retry"}`) != 2 || strings.Count(string(got), `{"c":3}`) != 1 || outLines(t, out) != 3 {
		t.Fatalf("output %q", got)
	}
	q, _ := newDeadLetterQueue(db, "p", dlqConfig{})
	left := 0
	q.List(func(e DLQEntry) error {
		left++
		if e.RetryCount != 1 {
			t.Errorf("entry %d: retry count %d, want 1", e.ID, e.RetryCount)
		}
		return nil
	})
	if left != 2 {
		t.Fatalf("%d entries left, want 2", left)
	}
	cfg.Follow = false
	if st, err := runPipeline(t, cfg); err != nil || st.RecordsIn != 0 {
		t.Fatalf("the next run: %+v %v", st, err)
	}
}

// TestRetryWhileBatchProcessed: a live retry that commits state while a
// batch of the same partition is being processed (after the operator ran,
// before the batch is handed over). The batch read the state before the
// retry wrote it; handed over as it was, it overwrote the retry's update
// (a lost update, exit 0). It is processed again instead.
func TestRetryWhileBatchProcessed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dead      []string // lines dead-lettered, run by run
		succeeded int      // by the retry
		tally     string   // committed at the end
		out       string
		calls     int // of the batch's operator: 2 when it is processed again
	}{
		// The hostile guest fails "retry tally" as retryable the first two
		// times an instance sees it, then counts it in the state key
		// tally: of three dead letters, a retry's fresh instance passes the
		// third, which counts 1; the batch, processed again, counts 2.
		{name: "the retry writes the state", dead: []string{`{"v":"retry tally"}` + "\n" + `{"v":"retry tally"}`, `{"v":"retry tally"}`},
			succeeded: 1, tally: "2", out: "1\n2\n", calls: 2},
		// A retry that writes no state makes nothing run again.
		{name: "the retry fails again", dead: []string{`{"v":"fail"}`}, tally: "1", out: "1\n", calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, f, out := hostileFilePipeline(t)
			for _, lines := range tc.dead {
				f.WriteString(lines + "\n")
				if st, err := runPipeline(t, cfg); err != nil || st.DeadLettered != int64(strings.Count(lines, "\n")+1) {
					t.Fatalf("%+v %v", st, err)
				}
			}
			f.WriteString(`{"v":"tally"}` + "\n")
			cfg.Follow = true
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			p.onBatch = func(uint32, uint64, time.Time, time.Time) {
				if calls.Add(1) > 1 {
					return
				}
				<-p.Ready()
				if st, err := p.RetryDeadLetters(context.Background(), nil); err != nil || st.Succeeded != tc.succeeded {
					t.Errorf("retry during the batch: %+v %v", st, err)
				}
			}
			wait := runAsync(t, p)
			deadline := time.Now().Add(30 * time.Second)
			for outLines(t, out) < strings.Count(tc.out, "\n") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			p.Stop()
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			v, _, err := cfg.DB.GetState("p", 0, []byte("tally"))
			if got, _ := os.ReadFile(out); err != nil || string(v) != tc.tally || string(got) != tc.out || int(calls.Load()) != tc.calls {
				t.Fatalf("tally %q (%v), output %q, %d calls of the batch; want %q, %q, %d", v, err, got, calls.Load(), tc.tally, tc.out, tc.calls)
			}
		})
	}
}

func TestRetryBeforeDeadLetter(t *testing.T) {
	for _, tt := range []struct {
		retries  int
		out, dlq int64
	}{{3, 3, 0}, {1, 2, 1}, {0, 2, 1}} {
		t.Run(fmt.Sprintf("max-retries=%d", tt.retries), func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.jsonl")
			os.WriteFile(in, []byte(`{"a":1}`+"\n"+`{"v":"retry"}`+"\n"+`{"b":2}`+"\n"), 0o644)
			db := diskDB(t, filepath.Join(dir, "data"))
			defer db.Close()
			src, _ := newFileSource(in)
			sink, _ := newFileSink(filepath.Join(dir, "out.jsonl"))
			defer sink.Close()
			st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink,
				MaxRetries: tt.retries, RetryBackoff: time.Millisecond})
			if err != nil || st.RecordsOut != tt.out || st.DeadLettered != tt.dlq {
				t.Fatalf("%+v %v", st, err)
			}
			if tt.dlq > 0 {
				q, _ := newDeadLetterQueue(db, "p", dlqConfig{})
				e, _ := q.Get(0)
				if e.Code != abi.FailRetryable || e.RetryCount != tt.retries {
					t.Fatalf("entry %+v", e)
				}
			}
		})
	}
}

// flakyPlugin compiles host/testdata/passthrough.wat changed to trap on
// every instance's nth call: a failure that is no record's fault.
func flakyPlugin(t *testing.T, nth int) *host.Plugin {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "host", "testdata", "passthrough.wat"))
	if err != nil {
		t.Fatal(err)
	}
	wat := string(src)
	for _, r := range [][2]string{
		{"(global $outcap (mut i32) (i32.const 0))", "(global $outcap (mut i32) (i32.const 0))\n  (global $calls (mut i32) (i32.const 0))"},
		{"(local $n i32) (local $i i32) (local $r i32) (local $o i32) (local $data i32)",
			"(local $n i32) (local $i i32) (local $r i32) (local $o i32) (local $data i32)\n" +
				"    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))\n" +
				fmt.Sprintf("    (if (i32.eq (global.get $calls) (i32.const %d)) (then unreachable))", nth)},
	} {
		if !strings.Contains(wat, r[0]) {
			t.Fatalf("passthrough.wat changed: %q not found", r[0])
		}
		wat = strings.Replace(wat, r[0], r[1], 1)
	}
	p, err := sharedEngine().Compile(context.Background(), fmt.Sprintf("flaky%d.wasm", nth), testutil.WAT(t, wat))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBisectionConfirmsSuspect: a plugin that traps on its instance's 3rd
// call, whatever the records, makes bisection blame healthy records; each
// suspect passes alone on a fresh instance, so nothing is dead-lettered,
// every record is output exactly once and in order, and the transient
// failures are counted.
func TestBisectionConfirmsSuspect(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	input := lines(100, func(i int) string { return fmt.Sprintf(`{"i":%d}`, i) })
	os.WriteFile(in, []byte(input), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	defer sink.Close()
	m := NewMetrics(nil)
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: flakyPlugin(t, 3), Source: src, Sink: sink, BatchSize: 10, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsIn != 100 || st.RecordsOut != 100 || st.DeadLettered != 0 {
		t.Fatalf("stats %+v: want 100 in, 100 out, none dead-lettered", st)
	}
	if got, _ := os.ReadFile(out); string(got) != input {
		t.Fatalf("output is not the input exactly once, in order:\n%s", got)
	}
	if q, _ := newDeadLetterQueue(db, "p", dlqConfig{}); q.Size() != 0 {
		t.Fatalf("%d records dead-lettered", q.Size())
	}
	if n := counterValue(m.TransientFailures.WithLabelValues("p")); n < 1 {
		t.Fatalf("helios_transient_failures_total = %v, want at least 1", n)
	}
	if n := counterValue(m.PluginTraps.WithLabelValues("p", "flaky3.wasm", "trap")); n < 1 {
		t.Fatalf("the plugin never trapped (%v): the test proves nothing", n)
	}
}

func counterGauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// TestRetriesAreGrouped: 1,000 records failed as retryable (each twice) are
// retried as one group per attempt: three operator calls in all, and the
// run takes about the backoff schedule (100ms + 200ms), not a wait per
// record (5 minutes).
func TestRetriesAreGrouped(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	input := lines(1000, func(i int) string { return fmt.Sprintf(`{"i":%d,"v":"retry"}`, i) })
	os.WriteFile(in, []byte(input), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	defer sink.Close()
	plugin, m := testPlugin(t, hostileGuest), NewMetrics(nil)
	start := time.Now()
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: plugin, Source: src, Sink: sink, BatchSize: 1000,
		MaxRetries: 3, RetryBackoff: 100 * time.Millisecond, Metrics: m})
	elapsed := time.Since(start)
	if err != nil || st.RecordsOut != 1000 || st.DeadLettered != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if got, _ := os.ReadFile(out); string(got) != input {
		t.Fatal("output is not every record exactly once, in order")
	}
	if calls := counterValue(m.PluginCalls.WithLabelValues("p", plugin.Name())); calls != 3 {
		t.Fatalf("%v operator calls, want 3 (the batch, then one per retry attempt)", calls)
	}
	if elapsed > 3*time.Second {
		t.Fatalf("took %v for a 300ms backoff schedule", elapsed)
	}
}

// TestStopDuringRetryBackoff: Stop during a long backoff returns promptly;
// the batch is not committed, and the next run processes it exactly once.
func TestStopDuringRetryBackoff(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(`{"a":1}`+"\n"+`{"v":"retry"}`+"\n"+`{"b":2}`+"\n"), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	defer sink.Close()
	p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink,
		MaxRetries: 2, RetryBackoff: time.Minute, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	processed := make(chan struct{}, 1)
	p.onBatch = func(uint32, uint64, time.Time, time.Time) { processed <- struct{}{} }
	done := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); done <- err }()
	<-processed
	time.Sleep(50 * time.Millisecond) // into the backoff
	stopped := time.Now()
	p.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not interrupt the retry backoff")
	}
	if d := time.Since(stopped); d > 2*time.Second {
		t.Fatalf("Stop took %v", d)
	}
	if got, _ := os.ReadFile(out); len(got) != 0 {
		t.Fatalf("the interrupted batch was committed: %q", got)
	}
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink,
		MaxRetries: 2, RetryBackoff: time.Millisecond})
	if err != nil || st.RecordsIn != 3 || st.RecordsOut != 3 {
		t.Fatalf("second run: %+v %v", st, err)
	}
	if got, _ := os.ReadFile(out); string(got) != `{"a":1}`+"\n"+`{"b":2}`+"\n"+`{"v":"retry"}`+"\n" {
		t.Fatalf("output after the second run: %q", got)
	}
}

// TestIsolationStateFlowsInOrder: within a batch that is bisected (and
// whose retryable records are retried), every accepted call sees the state
// written by the calls accepted before it: the running count has no gap
// and no repeat around the poison record.
func TestIsolationStateFlowsInOrder(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(lines(8, func(i int) string {
		switch i {
		case 3:
			return `{"v":"boom"}`
		case 5:
			return `{"v":"retry"}`
		}
		return fmt.Sprintf(`{"v":"tally %d"}`, i)
	})), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(out)
	defer sink.Close()
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink,
		MaxRetries: 2, RetryBackoff: time.Millisecond})
	if err != nil || st.DeadLettered != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	if got, _ := os.ReadFile(out); string(got) != "1\n2\n3\n4\n5\n6\n"+`{"v":"retry"}`+"\n" {
		t.Fatalf("output %q: the counts of the calls after the poison record do not follow on", got)
	}
}

// TestFailedInputOutputsDropped: a raw module that emits a record for an
// input and then fails it (a shape abi.md forbids) has the input
// dead-lettered and its record dropped, not both committed, so the output
// and the dead-letter queue hold each input exactly once. Before the host
// enforced it, the record reached the output as well.
func TestFailedInputOutputsDropped(t *testing.T) {
	var w abi.OutputWriter
	w.Reset()
	w.Emit(0, nil, []byte(`{"from":0}`), nil, 0)
	w.Fail(0, 1000, "zero is bad")
	w.Emit(1, nil, []byte(`{"from":1}`), nil, 0)
	out := w.Finish()
	var data strings.Builder
	for _, c := range out {
		fmt.Fprintf(&data, "\\%02x", c)
	}
	// Whatever the batch (always two records here), the same output.
	wat := fmt.Sprintf(`(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "helios_abi_version") (result i32) (i32.const 1))
  (func (export "helios_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (i32.add (local.get $p) (local.get $n))) (local.get $p))
  (func (export "helios_dealloc") (param i32 i32))
  (func (export "helios_init") (param i32 i32) (result i64) (i64.const 0))
  (func (export "helios_process") (param i32 i32) (result i64) (i64.or (i64.shl (i64.const 5000) (i64.const 32)) (i64.const %d)))
  (data (i32.const 5000) "%s"))`, len(out), data.String())
	p, err := sharedEngine().Compile(context.Background(), "emit-then-fail.wasm", testutil.WAT(t, wat))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, outPath := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	os.WriteFile(in, []byte(`{"i":0}`+"\n"+`{"i":1}`+"\n"), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := newFileSource(in)
	sink, _ := newFileSink(outPath)
	defer sink.Close()
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: p, Source: src, Sink: sink, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(outPath); string(got) != `{"from":1}`+"\n" || st.RecordsOut != 1 || st.DeadLettered != 1 {
		t.Fatalf("stats %+v, output %q: want only input 1's record", st, got)
	}
	q, _ := newDeadLetterQueue(db, "p", dlqConfig{})
	if e, err := q.Get(0); err != nil || e.Code != 1000 || e.Line != 1 || string(e.Value) != `{"i":0}` {
		t.Fatalf("entry %+v %v", e, err)
	}
}

// TestDeadLetterIDsNamedTwice: an entry named twice in a retry or a purge
// is retried or purged once. Before, a retry of ids [0 0] ran the entry
// twice and wrote its output twice, and the queue counted it removed twice.
func TestDeadLetterIDsNamedTwice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		running bool // through the running pipeline, or offline
		purge   bool
	}{
		{name: "retry offline"},
		{name: "retry while running", running: true},
		{name: "purge offline", purge: true},
		{name: "purge while running", running: true, purge: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
			// The hostile guest fails a "retry" value as retryable the first
			// two times an instance sees it: the run dead-letters both.
			os.WriteFile(in, []byte(`{"v":"retry","n":1}`+"\n"+`{"v":"retry","n":2}`+"\n"), 0o644)
			db := diskDB(t, filepath.Join(dir, "data"))
			defer db.Close()
			src, _ := newFileSource(in)
			sink, _ := newFileSink(out)
			defer sink.Close()
			cfg := Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink, Logger: quiet}
			if st, err := runPipeline(t, cfg); err != nil || st.DeadLettered != 2 {
				t.Fatalf("%+v %v", st, err)
			}
			ids := []uint64{1, 1, 1}
			cfg.Plugin = testPlugin(t, "lowercase") // the retries pass
			var p *Pipeline
			if tc.running {
				cfg.Follow = true
				var err error
				if p, err = New(cfg); err != nil {
					t.Fatal(err)
				}
				wait := runAsync(t, p)
				defer func() {
					p.Stop()
					if err := wait(); err != nil {
						t.Error(err)
					}
				}()
				<-p.Ready()
			}
			q, err := NewDeadLetterQueue(db, "p")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.purge:
				var n int
				if tc.running {
					n, err = p.PurgeDeadLetters(context.Background(), ids)
				} else {
					n, err = q.Purge(context.Background(), ids)
				}
				if err != nil || n != 1 {
					t.Fatalf("purged %d, %v; want 1", n, err)
				}
			default:
				var st RetryStats
				if tc.running {
					st, err = p.RetryDeadLetters(context.Background(), ids)
				} else {
					st, err = RetryDeadLetters(context.Background(), RetryConfig{Name: "p", DB: db, Plugin: cfg.Plugin, Sink: sink, IDs: ids, Logger: quiet})
				}
				if err != nil || st.Retried != 1 || st.Succeeded != 1 || st.Outputs != 1 {
					t.Fatalf("retry: %+v %v; want 1 retried, 1 output", st, err)
				}
				if got := outLines(t, out); got != 1 {
					t.Errorf("%d output lines, want 1", got)
				}
			}
			if tc.running {
				if got := p.dlq.Size(); got != 1 {
					t.Errorf("the running pipeline's queue counts %d entries, want 1", got)
				}
			}
			left := 0
			q.List(func(e DLQEntry) error { left++; return nil })
			if left != 1 {
				t.Errorf("%d entries left, want 1", left)
			}
		})
	}
}

// TestStopKeepsStdinBatch: Stop does not drop a batch read from stdin,
// which cannot be read again. During a retry backoff the records still
// retryable are dead-lettered and the batch commits; while the dead-letter
// queue is full the run fails, saying what was not committed. Before, both
// returned nil with the batch lost.
// TestStopProcessesStdinReadAhead: a stop processes the lines already read
// from stdin (a read fills a megabyte buffer, far more than a batch) before
// the run ends; they exist nowhere else. Before, the run ended after the
// batch in progress and the rest was lost, exit 0.
func TestStopProcessesStdinReadAhead(t *testing.T) {
	db := memDB(t)
	var out bytes.Buffer
	p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Logger: quiet, AtLeastOnce: true, BatchSize: 1,
		Source: &stdinSource{in: strings.NewReader(`{"n":1}` + "\n" + `{"n":2}` + "\n" + `{"n":3}` + "\n")}, Sink: newWriterSink(&out)})
	if err != nil {
		t.Fatal(err)
	}
	p.onBatch = func(uint32, uint64, time.Time, time.Time) { p.Stop() }
	if err := runAsync(t, p)(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != `{"N":1}`+"\n"+`{"N":2}`+"\n"+`{"N":3}`+"\n" {
		t.Fatalf("output after a stop in the first batch: %q, want all three lines", got)
	}
}

func TestStopKeepsStdinBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   string
		cfg     Config
		waiting func(p *Pipeline) bool // the pipeline is inside the wait Stop interrupts
		wantOut string
		wantErr string
	}{
		{name: "stop during a retry backoff", input: `{"a":1}` + "\n" + `{"v":"retry"}` + "\n",
			cfg:     Config{MaxRetries: 2, RetryBackoff: time.Minute},
			waiting: func(*Pipeline) bool { return true }, // after the batch's first call (onBatch)
			wantOut: `{"a":1}` + "\n"},
		{name: "stop while the dead-letter queue is full", input: `{"v":"fail"}` + "\n" + `{"v":"fail"}` + "\n",
			cfg:     Config{BatchSize: 1, DeadLetterMax: 1, Follow: true},
			waiting: func(p *Pipeline) bool { return p.dlq.metrics().Full },
			wantErr: "a batch of 1 records read from it, which cannot be read again, was not committed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := memDB(t)
			var out bytes.Buffer
			cfg := tc.cfg
			cfg.Name, cfg.DB, cfg.Plugin, cfg.Logger, cfg.AtLeastOnce = "p", db, testPlugin(t, hostileGuest), quiet, true
			cfg.Source, cfg.Sink = &stdinSource{in: strings.NewReader(tc.input)}, newWriterSink(&out)
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			processed := make(chan struct{}, 8)
			p.onBatch = func(uint32, uint64, time.Time, time.Time) { processed <- struct{}{} }
			wait := runAsync(t, p)
			deadline := time.Now().Add(30 * time.Second)
			if tc.cfg.MaxRetries > 0 {
				<-processed
			}
			for !tc.waiting(p) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // into the wait
			p.Stop()
			err = wait()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("run: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tc.wantOut)
			}
			q, _ := newDeadLetterQueue(db, "p", dlqConfig{})
			var dead []DLQEntry
			q.List(func(e DLQEntry) error { dead = append(dead, e); return nil })
			if len(dead) != 1 || string(dead[0].Value) != `{"v":"retry"}` || dead[0].Code != abi.FailRetryable {
				t.Fatalf("dead letters %+v, want the retryable record", dead)
			}
		})
	}
}
