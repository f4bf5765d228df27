package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// ts is an event time n seconds after a fixed instant, as RFC 3339.
func ts(n int) string {
	return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second).Format(time.RFC3339)
}

func tsMs(n int) eventtime.Time {
	return eventtime.FromStd(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second))
}

// TestEventTimeStep: each record is routed by its event time against the
// committed watermark: on time or within the allowed lateness to the
// operator, beyond it to the late output, unreadable to the dead-letter
// queue with its own code. The batch's largest event time is its mark.
func TestEventTimeStep(t *testing.T) {
	type want struct {
		kept     []int    // indexes of the records passed on
		codes    []uint32 // dead-letter codes, in order
		lateAcc  int
		lateOut  int
		logged   int // late records carrying an entry for a log: late output
		mark     eventtime.Time
		errMatch string // substring of the first dead letter's error
	}
	tests := []struct {
		name      string
		cfg       EventTimeConfig
		watermark int // committed pipeline watermark, seconds from ts(0); <0: none yet
		values    []string
		want      want
	}{
		{"no watermark yet: everything on time", EventTimeConfig{Extract: "json:ts"}, -1,
			[]string{`{"ts":"` + ts(5) + `"}`, `{"ts":"` + ts(1) + `"}`},
			want{kept: []int{0, 1}, mark: tsMs(5)}},
		{"within allowed lateness: accepted and counted", EventTimeConfig{Extract: "json:ts", AllowedLateness: time.Minute}, 100,
			[]string{`{"ts":"` + ts(101) + `"}`, `{"ts":"` + ts(50) + `"}`},
			want{kept: []int{0, 1}, lateAcc: 1, mark: tsMs(101)}},
		{"beyond allowed lateness: dead-lettered with code 114", EventTimeConfig{Extract: "json:ts", AllowedLateness: time.Minute}, 100,
			[]string{`{"ts":"` + ts(39) + `"}`, `{"ts":"` + ts(100) + `"}`},
			want{kept: []int{1}, codes: []uint32{abi.FailLate}, lateOut: 1, mark: tsMs(100), errMatch: "late: event time 2026-11-30T12:00:39.000Z is 1m1s behind the watermark"}},
		{"late to a log topic", EventTimeConfig{Extract: "json:ts", LateOutput: "log:late"}, 100,
			[]string{`{"ts":"` + ts(99) + `"}`},
			want{lateOut: 1, logged: 1, mark: tsMs(99)}},
		{"late dropped: counted only", EventTimeConfig{Extract: "json:ts", LateOutput: "drop"}, 100,
			[]string{`{"ts":"` + ts(99) + `"}`, `{"ts":"` + ts(100) + `"}`},
			want{kept: []int{1}, lateOut: 1, mark: tsMs(100)}},
		{"per-partition allowed lateness", EventTimeConfig{Extract: "json:ts", AllowedLateness: time.Hour, AllowedLatenessFor: map[uint32]time.Duration{0: time.Second}}, 100,
			[]string{`{"ts":"` + ts(98) + `"}`, `{"ts":"` + ts(99) + `"}`},
			want{kept: []int{1}, codes: []uint32{abi.FailLate}, lateAcc: 1, lateOut: 1, mark: tsMs(99)}},
		{"unreadable event times: code 113", EventTimeConfig{Extract: "json:ts"}, -1,
			[]string{`{"ts":12}`, `{"at":"x"}`, `not json`, `{"ts":"yesterday"}`, `{"ts":"` + ts(3) + `"}`},
			want{kept: []int{4}, codes: []uint32{abi.FailEventTime, abi.FailEventTime, abi.FailEventTime, abi.FailEventTime}, mark: tsMs(3),
				errMatch: `event time: event time has the wrong type: field "ts" is a JSON number (12), want an RFC 3339 string`}},
		{"unix-ms numbers", EventTimeConfig{Extract: "json:ts", Format: "unix-ms"}, -1,
			[]string{fmt.Sprintf(`{"ts":%d}`, tsMs(7))},
			want{kept: []int{0}, mark: tsMs(7)}},
		{"nothing readable: no mark", EventTimeConfig{Extract: "json:ts"}, -1,
			[]string{`{}`},
			want{codes: []uint32{abi.FailEventTime}, mark: eventtime.NoWatermark}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := memDB(t)
			cfg := tt.cfg
			p := logPipeline(t, db, nil, nil, Config{Plugin: testPlugin(t, "uppercase"), EventTime: &cfg})
			var err error
			if p.clock, err = newEventClock(db, "p", 1, &cfg); err != nil {
				t.Fatal(err)
			}
			if tt.watermark >= 0 {
				p.clock.marks.Observe(0, tsMs(tt.watermark), 0)
				p.clock.marks.Tick(0)
			}
			recs := make([]abi.Record, len(tt.values))
			for i, v := range tt.values {
				recs[i] = abi.Record{Value: []byte(v), Offset: int64(i), ID: [16]byte{byte(i + 1)}}
			}
			st, err := p.eventTimes(0, &generation{plugin: p.cfg.Plugin}, recs, nil)
			if err != nil {
				t.Fatal(err)
			}
			var kept []int
			for _, r := range st.kept {
				kept = append(kept, int(r.Offset))
			}
			if fmt.Sprint(kept) != fmt.Sprint(tt.want.kept) {
				t.Errorf("kept %v, want %v", kept, tt.want.kept)
			}
			var codes []uint32
			for _, d := range st.dead {
				codes = append(codes, d.Code)
			}
			if fmt.Sprint(codes) != fmt.Sprint(tt.want.codes) {
				t.Errorf("dead-letter codes %v, want %v", codes, tt.want.codes)
			}
			if tt.want.errMatch != "" && (len(st.dead) == 0 || !strings.Contains(st.dead[0].Error, tt.want.errMatch)) {
				t.Errorf("dead letters %+v, want an error containing %q", st.dead, tt.want.errMatch)
			}
			logged := 0
			for _, l := range st.late {
				if l.entry != nil {
					logged++
				}
			}
			if len(st.late)-st.lateOut != tt.want.lateAcc || st.lateOut != tt.want.lateOut || logged != tt.want.logged {
				t.Errorf("late accepted %d, out %d, logged %d; want %d, %d, %d", len(st.late)-st.lateOut, st.lateOut, logged, tt.want.lateAcc, tt.want.lateOut, tt.want.logged)
			}
			if len(st.marks) != 1 || st.marks[0].max != tt.want.mark {
				t.Errorf("marks %+v, want one with max %v", st.marks, tt.want.mark)
			}
		})
	}
}

// TestEventTimeUnreadableWithoutDLQStops: without a dead-letter queue a
// record whose event time cannot be read stops the run with its location
// and code, committing nothing of its batch.
func TestEventTimeUnreadableWithoutDLQStops(t *testing.T) {
	db := memDB(t)
	p := logPipeline(t, db, []string{`{"ts":"` + ts(1) + `"}`, `{"ts":true}`}, nil,
		Config{Plugin: testPlugin(t, "uppercase"), DisableDeadLetter: true, EventTime: &EventTimeConfig{Extract: "json:ts", LateOutput: "drop"}})
	_, err := p.Run(context.Background())
	var re *RecordError
	if !errors.As(err, &re) || re.Code != abi.FailEventTime || re.Offset != 1 || !strings.Contains(re.Message, `field "ts" is a JSON boolean`) {
		t.Fatalf("run: %v, want a RecordError with code 113 at offset 1", err)
	}
	if n := len(readTopic(t, db, "out")); n != 0 {
		t.Fatalf("%d outputs committed, want none", n)
	}
}

// TestEventTimeConfigRefused: every problem of an EventTimeConfig is
// reported at once, in terms of the config.
func TestEventTimeConfigRefused(t *testing.T) {
	db := memDB(t)
	db.CreateTopic("in", 1)
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", 1)
	_, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, DisableDeadLetter: true,
		EventTime: &EventTimeConfig{Extract: "json:", Format: "unix-s", WatermarkDelay: -time.Second, AllowedLatenessFor: map[uint32]time.Duration{3: time.Second}}})
	for _, want := range []string{"json: needs a field name", `unknown event time format "unix-s"`, "WatermarkDelay -1s is negative",
		"allowed lateness for partition 3, but log:in has 1 partitions", "the dead-letter queue, which is disabled"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v\nwant it to say %q", err, want)
		}
	}
	for spec, want := range map[string]string{"kafka:late": "a kafka: late output needs a kafka: input and a kafka: output", "log:out": "is also the pipeline's output",
		"file:x": "want dlq, log:TOPIC, kafka:TOPIC or drop", "log:": "topic name"} {
		_, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink,
			EventTime: &EventTimeConfig{Extract: "record", LateOutput: spec}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("late output %q: %v, want %q", spec, err, want)
		}
	}
}

// committedWatermarks reads pipeline p's committed watermarks.
func committedWatermarks(t *testing.T, db *storage.DB) *eventtime.Watermarks {
	t.Helper()
	w, _ := eventtime.NewWatermarks(0, 0)
	data, found, err := db.GetSeq(storage.SeqEventTime, "p", eventTimeWatermarks)
	if err != nil || !found {
		t.Fatalf("no committed watermarks (found %v, err %v)", found, err)
	}
	if err := w.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestEventTimeRestart: the watermark commits with the offsets and a new
// run starts from it: records older than it minus the allowed lateness,
// appended after the first run, are late in the second; the watermark
// never moves back; a bounded run ends at the end of time (in memory).
func TestEventTimeRestart(t *testing.T) {
	db := diskDB(t, t.TempDir())
	defer db.Close()
	et := EventTimeConfig{Extract: "json:ts", WatermarkDelay: 5 * time.Second, AllowedLateness: 10 * time.Second}
	var first []string
	for i := range 50 {
		first = append(first, `{"ts":"`+ts(i*2)+`"}`) // 0..98 s
	}
	m := NewMetrics(nil)
	p := logPipeline(t, db, first, nil, Config{Plugin: testPlugin(t, "uppercase"), BatchSize: 7, EventTime: &et, Metrics: m})
	st, err := p.Run(context.Background())
	if err != nil || st.RecordsOut != 50 || st.Late != 0 {
		t.Fatalf("first run: %+v, %v", st, err)
	}
	w1 := committedWatermarks(t, db).Current()
	if w1 != tsMs(98-5) {
		t.Fatalf("committed watermark %v after the first run, want %v (largest event time minus the delay)", w1, tsMs(93))
	}
	if g := testutil.ToFloat64(m.Watermark.WithLabelValues("p")); !math.IsInf(g, 1) {
		t.Errorf("helios_watermark_seconds %v at the end of a bounded input, want +Inf", g)
	}

	// Second run: 3 records far behind (late), 1 within the allowed
	// lateness, 1 ahead.
	second := []string{`{"ts":"` + ts(10) + `"}`, `{"ts":"` + ts(85) + `"}`, `{"ts":"` + ts(20) + `"}`, `{"ts":"` + ts(120) + `"}`, `{"ts":"` + ts(82) + `"}`}
	appendRecords(t, db, "in", second, make([][]abi.Header, len(second)))
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", 1)
	m2 := NewMetrics(nil)
	p2, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, BatchSize: 100, EventTime: &et, Metrics: m2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	st, err = p2.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Late != 3 || st.RecordsOut != 2 || st.DeadLettered != 3 {
		t.Fatalf("second run: %+v, want 3 late (dead-lettered), 2 out", st)
	}
	if err := p2.DeadLetterQueue().List(func(e DLQEntry) error {
		if e.Code != abi.FailLate {
			t.Errorf("dead letter %+v, want code %d", e, abi.FailLate)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m2.LateRecords.WithLabelValues("p", "drop")); got != 3 {
		t.Errorf("helios_late_records_total{decision=drop} %v, want 3", got)
	}
	if got := testutil.ToFloat64(m2.LateRecords.WithLabelValues("p", "accept")); got != 1 {
		t.Errorf("helios_late_records_total{decision=accept} %v, want 1 (ts 85 within 10s of 93)", got)
	}
	w2 := committedWatermarks(t, db).Current()
	if w2 != tsMs(120-5) || w2 < w1 {
		t.Fatalf("committed watermark %v after the second run, want %v (never below %v)", w2, tsMs(115), w1)
	}
	if rep, err := LateRecords(db, "p"); err != nil || rep.Dropped != 3 || rep.Accepted != 1 {
		t.Fatalf("committed late counters: drop %d accept %d (%v), want 3 and 1", rep.Dropped, rep.Accepted, err)
	}

	// A third run over nothing new keeps the committed watermark.
	src, _ = newLogSource(db, "in")
	p3, _ := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, EventTime: &et, Logger: quiet})
	if _, err := p3.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w3 := committedWatermarks(t, db).Current(); w3 != w2 {
		t.Fatalf("watermark %v after an empty run, want %v", w3, w2)
	}
}

// TestEventTimeLateToLog: with a log: late output the late records are
// appended to that topic as they were read, in the transaction of their
// batch; nothing else of theirs is written.
func TestEventTimeLateToLog(t *testing.T) {
	db := memDB(t)
	values := []string{`{"ts":"` + ts(100) + `"}`}
	et := EventTimeConfig{Extract: "json:ts", LateOutput: "log:late"}
	p := logPipeline(t, db, values, nil, Config{Plugin: testPlugin(t, "uppercase"), EventTime: &et})
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	late := []string{`{"ts":"` + ts(50) + `"}`, `{"ts":"` + ts(100) + `"}`, `{"ts":"` + ts(99) + `"}`}
	appendRecords(t, db, "in", late, make([][]abi.Header, len(late)))
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", 1)
	p2, _ := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, EventTime: &et, Logger: quiet})
	st, err := p2.Run(context.Background())
	if err != nil || st.Late != 2 || st.DeadLettered != 0 {
		t.Fatalf("run: %+v, %v; want 2 late, none dead-lettered", st, err)
	}
	got := readTopic(t, db, "late")
	if len(got) != 2 || string(got[0].Value) != late[0] || string(got[1].Value) != late[2] {
		t.Fatalf("late topic %d entries (%+v), want the two late records as read", len(got), got)
	}
	if out := readTopic(t, db, "out"); len(out) != 2 {
		t.Fatalf("%d outputs, want 2 (the first run's and the on-time record)", len(out))
	}
}
