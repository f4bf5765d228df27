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
