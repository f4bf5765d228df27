package runtime

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
)

// TestLateRecordsKeepsTheLast10000: a pipeline tracks its most recent
// 10,000 late records across transactions and restarts (each stored in its
// own slot, not in one snapshot), oldest evicted, and counts every one.
func TestLateRecordsKeepsTheLast10000(t *testing.T) {
	db := diskDB(t, t.TempDir())
	defer db.Close()
	et := EventTimeConfig{Extract: "json:ts", AllowedLateness: 10 * time.Second, LateOutput: "drop"}
	const firstRun, secondRun = 6000, 5500
	var lines []string
	for i := range firstRun + secondRun {
		lines = append(lines, fmt.Sprintf(`{"ts":"%s"}`, ts(i))) // all far behind the watermark set by the first record
	}
	head := `{"ts":"` + ts(100_000) + `"}`
	// The first run commits the watermark; the next two read records far
	// behind it, in batches of 500 and 700.
	if _, err := logPipeline(t, db, []string{head}, nil, Config{Plugin: testPlugin(t, "uppercase"), EventTime: &et}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ from, to, batch int }{{0, firstRun, 500}, {firstRun, firstRun + secondRun, 700}} {
		appendRecords(t, db, "in", lines[r.from:r.to], make([][]abi.Header, r.to-r.from))
		src, _ := newLogSource(db, "in")
		sink, _ := newLogSink(db, "out", 1)
		p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: r.batch, EventTime: &et, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := LateRecords(db, "p")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Dropped != firstRun+secondRun || rep.Accepted != 0 {
		t.Errorf("counts: %d dropped, %d accepted; want %d and 0", rep.Dropped, rep.Accepted, firstRun+secondRun)
	}
	if len(rep.Recent) != eventtime.DefaultMaxTracked {
		t.Fatalf("%d tracked, want %d", len(rep.Recent), eventtime.DefaultMaxTracked)
	}
	evicted := firstRun + secondRun - eventtime.DefaultMaxTracked
	for i, r := range rep.Recent {
		want := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).Add(time.Duration(evicted+i) * time.Second)
		if !r.EventTime.Equal(want) || r.Decision != "drop" || r.Watermark.Before(r.EventTime) {
			t.Fatalf("tracked record %d: %+v, want event time %v, dropped", i, r, want)
		}
	}
}
