package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestDedupSameInputTwice: the same records fed twice (a producer retrying)
// are output once; ids come from a JSON field.
func TestDedupSameInputTwice(t *testing.T) {
	dir := t.TempDir()
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	db.CreateTopic("in", 2)
	produce := func() {
		b := db.NewBatch()
		for i := 0; i < 500; i++ {
			b.Append("in", uint32(i%2), &storage.Entry{Value: []byte(fmt.Sprintf(`{"id":"order-%d","i":%d}`, i, i))})
		}
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	produce()
	produce() // the same 500 messages again, at new offsets
	src, _ := newLogSource(db, "in")
	out := filepath.Join(dir, "out.jsonl")
	sink, _ := newFileSink(out)
	defer sink.Close()
	st, err := runPipeline(t, Config{Name: "d", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 64,
		Dedup: &DedupConfig{IDField: "id"}})
	if err != nil || st.RecordsIn != 1000 || st.RecordsOut != 500 || st.Duplicates != 500 {
		t.Fatalf("%+v %v", st, err)
	}
	got, _ := os.ReadFile(out)
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		if seen[l] {
			t.Fatalf("duplicate output %s", l)
		}
		seen[l] = true
	}
	// A later run still remembers them within the window.
	produce()
	src, _ = newLogSource(db, "in")
	st, err = runPipeline(t, Config{Name: "d", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, Dedup: &DedupConfig{IDField: "id"}})
	if err != nil || st.RecordsIn != 500 || st.RecordsOut != 0 || st.Duplicates != 500 {
		t.Fatalf("third feed: %+v %v", st, err)
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestDedupWindowAndCleanup(t *testing.T) {
	db := memDB(t)
	ctx := context.Background()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	d := newDeduplicator(db, "p", DedupConfig{Window: time.Minute, Now: clock.Now})
	c := newCoordinator(db, "p", coordinatorConfig{}, &parties{dedup: d})
	c.Recover(ctx)
	commit := func(ids ...[16]byte) {
		txn, _ := c.Begin(ctx)
		for _, id := range ids {
			txn.effects.seen = append(txn.effects.seen, seenID{0, id})
		}
		if err := c.Commit(ctx, txn); err != nil {
			t.Fatal(err)
		}
	}
	a, b := [16]byte{1}, [16]byte{2}
	tests := []struct {
		step    string
		id      [16]byte
		advance time.Duration
		dup     bool
	}{
		{"first sight", a, 0, false},
		{"pending, same batch", a, 0, true},
		{"other id", b, 0, false},
	}
	for _, tt := range tests {
		clock.Add(tt.advance)
		if dup, err := d.CheckAndRecord(tt.id); err != nil || dup != tt.dup {
			t.Fatalf("%s: dup=%v err=%v", tt.step, dup, err)
		}
	}
	commit(a, b)
	if dup, _ := d.CheckAndRecord(a); !dup {
		t.Fatal("committed id not remembered")
	}
	clock.Add(2 * time.Minute)
	if dup, _ := d.CheckAndRecord(b); dup {
		t.Fatal("expired id still a duplicate")
	}
	n, err := d.CleanupExpired(ctx)
	if err != nil || n != 2 {
		t.Fatalf("cleanup removed %d (%v), want 2", n, err)
	}
	if _, found, _ := db.GetDedup("p", a); found {
		t.Fatal("expired id still stored")
	}
	if m := d.Metrics(); m.Hits != 2 || m.Expired != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestAssignIDs(t *testing.T) {
	d := newDeduplicator(nil, "p", DedupConfig{IDField: "id", IDHeader: "msg-id"})
	u := "0b7b9a3e-3c1f-4f8a-9a53-6d9f3e1a2b4c"
	recs := []abi.Record{
		{Value: []byte(`{"id":"` + u + `"}`)},
		{Value: []byte(`{"id":"order-1"}`)},
		{Value: []byte(`{"id":"order-1","other":true}`)},
		{Value: []byte(`{"id":42}`)},
		{Value: []byte(`not json`), ID: [16]byte{9}},
		{Value: []byte(`{}`), Headers: []abi.Header{{Key: []byte("msg-id"), Value: []byte(u)}}},
	}
	d.AssignIDs(recs)
	if got := messageID(recs[0].ID); got != u {
		t.Fatalf("UUID field: %s", got)
	}
	if recs[1].ID != recs[2].ID || recs[1].ID == ([16]byte{}) {
		t.Fatal("equal field values must give equal ids")
	}
	if recs[3].ID == recs[1].ID || recs[4].ID != ([16]byte{9}) || messageID(recs[5].ID) != u {
		t.Fatalf("ids %x", []any{recs[3].ID, recs[4].ID, recs[5].ID})
	}
}

// TestDedupConcurrentCheck: partitions checking the same new id at once
// keep it exactly once. Before, each released the lock while reading the
// store and marked the id pending only afterwards, so two could both find
// it absent.
func TestDedupConcurrentCheck(t *testing.T) {
	db := memDB(t)
	d := newDeduplicator(db, "p", DedupConfig{})
	const rounds, readers = 300, 8
	for round := range rounds {
		id := [16]byte{byte(round), byte(round >> 8), 1}
		var kept sync.WaitGroup
		var mu sync.Mutex
		fresh := 0
		start := make(chan struct{})
		for range readers {
			kept.Add(1)
			go func() {
				defer kept.Done()
				<-start
				dup, err := d.CheckAndRecord(id)
				if err != nil {
					t.Error(err)
				}
				if !dup {
					mu.Lock()
					fresh++
					mu.Unlock()
				}
			}()
		}
		close(start)
		kept.Wait()
		if fresh != 1 {
			t.Fatalf("round %d: %d of %d concurrent checks of one id found it new, want 1", round, fresh, readers)
		}
	}
	// A committed id is a duplicate, and checking it leaves no mark.
	id := [16]byte{9, 9, 9}
	b := db.NewBatch()
	if err := d.write(b, []seenID{{id: id}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if dup, err := d.CheckAndRecord(id); err != nil || !dup || d.pending[id] != 0 {
		t.Fatalf("committed id: duplicate %v, %v, pending %d; want a duplicate and no mark", dup, err, d.pending[id])
	}
}

// TestDedupMarksReleasedWhenBatchAbandoned: a batch abandoned before it is
// handed over (a stop during a retry backoff, or while the dead-letter
// queue is full) releases its ids' pending marks. Before, they stayed for
// the life of the process: in a consumer group, a partition revoked there
// and assigned back to the same process was read again and its records
// were skipped as duplicates of themselves, their offsets committed.
func TestDedupMarksReleasedWhenBatchAbandoned(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		cfg   Config
		// wait returns when the pipeline is inside the wait Stop interrupts.
		wait func(p *Pipeline) bool
	}{
		{name: "stop during a retry backoff", input: `{"a":1}` + "\n" + `{"v":"retry"}` + "\n",
			cfg:  Config{MaxRetries: 2, RetryBackoff: time.Minute},
			wait: func(p *Pipeline) bool { return p.dedup.checked.Load() == 2 }},
		{name: "stop while the dead-letter queue is full", input: `{"v":"fail"}` + "\n" + `{"v":"fail"}` + "\n",
			cfg:  Config{BatchSize: 1, DeadLetterMax: 1, Follow: true},
			wait: func(p *Pipeline) bool { return p.dlq.metrics().Full }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
			os.WriteFile(in, []byte(tc.input), 0o644)
			db := diskDB(t, filepath.Join(dir, "data"))
			defer db.Close()
			src, _ := newFileSource(in)
			sink, _ := newFileSink(out)
			defer sink.Close()
			cfg := tc.cfg
			cfg.Name, cfg.DB, cfg.Plugin, cfg.Source, cfg.Sink, cfg.Logger = "p", db, testPlugin(t, hostileGuest), src, sink, quiet
			cfg.Dedup = &DedupConfig{}
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			wait := runAsync(t, p)
			deadline := time.Now().Add(30 * time.Second)
			for !tc.wait(p) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // into the wait
			p.Stop()
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			p.dedup.mu.Lock()
			defer p.dedup.mu.Unlock()
			if n := len(p.dedup.pending); n != 0 {
				t.Fatalf("%d ids still marked pending after the batch was abandoned, want 0", n)
			}
		})
	}
}
