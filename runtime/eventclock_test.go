package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
)

// TestEventClockIdleAndRestore: through the commit path, an idle partition
// stops holding the pipeline watermark back; the committed snapshot
// restores it exactly (the idle flag included), and a partition rejoining
// behind it after the restart does not move it back.
func TestEventClockIdleAndRestore(t *testing.T) {
	ctx := context.Background()
	db := memDB(t)
	cfg := &EventTimeConfig{Extract: "record", IdleTimeout: time.Minute}
	commit := func(clock *eventClock, marks ...eventMark) {
		t.Helper()
		c := newCoordinator(db, "p", coordinatorConfig{}, &parties{clock: clock})
		if _, err := c.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		txn, _ := c.Begin(ctx)
		txn.effects.marks = marks
		if err := c.Commit(ctx, txn); err != nil {
			t.Fatal(err)
		}
	}
	s := func(n int) eventtime.Time { return eventtime.Time(n * 1000) }
	clock, err := newEventClock(db, "p", 2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	commit(clock, eventMark{0, s(100), 0}, eventMark{1, s(50), 0})
	if got := clock.marks.Current(); got != s(50) {
		t.Fatalf("watermark %v, want the slower partition's 50s", got)
	}
	// Partition 1 has had no record for 2 minutes: idle.
	commit(clock, eventMark{0, s(200), s(120)})
	if got := clock.marks.Current(); got != s(200) {
		t.Fatalf("watermark %v with partition 1 idle, want 200s", got)
	}
	if got := committedWatermarks(t, db).Current(); got != s(200) {
		t.Fatalf("committed watermark %v, want the in-memory 200s", got)
	}

	restored, err := newEventClock(db, "p", 2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, idle, _ := restored.marks.Partition(1); !idle || restored.marks.Current() != s(200) {
		t.Fatalf("restored watermark %v (partition 1 idle %v), want 200s and idle", restored.marks.Current(), idle)
	}
	// Partition 1 rejoins at 60s: active again, but the watermark stays.
	commit(restored, eventMark{1, s(60), s(130)})
	if got := restored.marks.Current(); got != s(200) {
		t.Fatalf("watermark %v after partition 1 rejoined behind it, want 200s (never back)", got)
	}
	if late, d := restored.late.Decide(1, s(60), restored.marks.Current()); !late || d != eventtime.Drop {
		t.Fatalf("a 60s record after the restart: late %v decision %v, want late and dropped", late, d)
	}
	// An aborted transaction changes nothing.
	c := newCoordinator(db, "p", coordinatorConfig{}, &parties{clock: restored})
	c.Recover(ctx)
	txn, _ := c.Begin(ctx)
	txn.effects.marks = []eventMark{{0, s(500), s(140)}}
	txn.effects.offsets = []offsetMark{{part: 0, pos: Position{Offset: 1}}} // no offset manager: the write fails
	if err := c.Commit(ctx, txn); err == nil {
		t.Fatal("commit without an offset manager succeeded")
	}
	if got := restored.marks.Current(); got != s(200) {
		t.Fatalf("watermark %v after an aborted transaction, want 200s", got)
	}
	if got := committedWatermarks(t, db).Current(); got != s(200) {
		t.Fatalf("committed watermark %v after an aborted transaction, want 200s", got)
	}
}
