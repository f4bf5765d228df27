package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := NewFileSource(in)
	sink, _ := NewFileSink(out)
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
	q, _ := NewDeadLetterQueue(db, "p", DLQConfig{})
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
	src, _ := NewFileSource(in)
	sink, _ := NewFileSink(filepath.Join(dir, "out.jsonl"))
	defer sink.Close()
	p := shortDeadlinePlugin(t)
	st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: p, Source: src, Sink: sink})
	if err != nil || st.RecordsOut != 2 || st.DeadLettered != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	q, _ := NewDeadLetterQueue(db, "p", DLQConfig{})
	e, err := q.Get(0)
	if err != nil || e.Code != abi.FailDeadline || e.Line != 0 || e.Offset != 8 {
		t.Fatalf("entry %+v %v", e, err)
	}
}

func TestDeadLetterQueueFullPauses(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(lines(30, func(i int) string {
		if i == 5 || i == 25 {
			return `{"v":"fail"}`
		}
		return fmt.Sprintf(`{"i":%d}`, i)
	})), 0o644)
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	src, _ := NewFileSource(in)
	sink, _ := NewFileSink(filepath.Join(dir, "out.jsonl"))
	defer sink.Close()
	p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink, BatchSize: 10,
		DeadLetter: DLQConfig{Max: 1}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); done <- err }()
	deadline := time.Now().Add(30 * time.Second)
	for !p.dlq.Metrics().Full && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !p.dlq.Metrics().Full {
		t.Fatal("the pipeline did not pause on a full dead-letter queue")
	}
	p.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out.jsonl")); strings.Count(string(got), "\n") != 19 {
		t.Fatalf("%d lines committed, want the 19 good records before the paused batch", strings.Count(string(got), "\n"))
	}
	if p.dlq.Size() != 1 {
		t.Fatalf("dlq size %d", p.dlq.Size())
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
			src, _ := NewFileSource(in)
			sink, _ := NewFileSink(filepath.Join(dir, "out.jsonl"))
			defer sink.Close()
			st, err := runPipeline(t, Config{Name: "p", DB: db, Plugin: testPlugin(t, hostileGuest), Source: src, Sink: sink,
				MaxRetries: tt.retries, RetryBackoff: time.Millisecond})
			if err != nil || st.RecordsOut != tt.out || st.DeadLettered != tt.dlq {
				t.Fatalf("%+v %v", st, err)
			}
			if tt.dlq > 0 {
				q, _ := NewDeadLetterQueue(db, "p", DLQConfig{})
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
	src, _ := NewFileSource(in)
	sink, _ := NewFileSink(out)
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
	if q, _ := NewDeadLetterQueue(db, "p", DLQConfig{}); q.Size() != 0 {
		t.Fatalf("%d records dead-lettered", q.Size())
	}
	if n := counterValue(m.TransientFailures.WithLabelValues("p")); n < 1 {
		t.Fatalf("helios_transient_failures_total = %v, want at least 1", n)
	}
	if n := counterValue(m.PluginTraps.WithLabelValues("p", "flaky3.wasm", "trap")); n < 1 {
		t.Fatalf("the plugin never trapped (%v): the test proves nothing", n)
	}
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
	src, _ := NewFileSource(in)
	sink, _ := NewFileSink(out)
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
	src, _ := NewFileSource(in)
	sink, _ := NewFileSink(out)
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
