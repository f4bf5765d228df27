package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/kafkatest"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestWindowKeyOrder: a window-scoped state key sorts by window end, then
// start, then key, negative times included, and decodes back.
func TestWindowKeyOrder(t *testing.T) {
	type sk struct {
		w   eventtime.Window
		key string
	}
	in := []sk{
		{eventtime.Window{Start: 0, End: 60000}, "b"},
		{eventtime.Window{Start: -60000, End: 0}, "z"},
		{eventtime.Window{Start: 0, End: 60000}, "a"},
		{eventtime.Window{Start: -120000, End: -60000}, "a"},
		{eventtime.Window{Start: 30000, End: 60000}, ""},
		{eventtime.Window{Start: eventtime.MinEventTime, End: eventtime.MinEventTime + 1}, "x"},
		{eventtime.Window{Start: 60000, End: 120000}, "a"},
	}
	want := []sk{in[5], in[3], in[1], in[2], in[0], in[4], in[6]}
	keys := make([][]byte, len(in))
	for i, s := range in {
		keys[i] = append(appendWindowPrefix(nil, s.w), s.key...)
	}
	slices.SortFunc(keys, bytes.Compare)
	for i, k := range keys {
		w, key, ok := decodeWindowKey(k)
		if !ok || w != want[i].w || string(key) != want[i].key {
			t.Errorf("position %d: %v %q (%v), want %v %q", i, w, key, ok, want[i].w, want[i].key)
		}
	}
	if _, _, ok := decodeWindowKey(make([]byte, windowPrefixSize-1)); ok {
		t.Error("a key shorter than the window prefix decoded")
	}
}

// TestGroupByWindow: records are grouped by window in window order, each
// group in batch order; a sliding window's record is in each of its windows.
func TestGroupByWindow(t *testing.T) {
	const m = 60000
	for _, tt := range []struct {
		spec  string
		times []eventtime.Time
		want  string
	}{
		{"tumbling:1m", []eventtime.Time{2*m + 5, 10, m, 20, -1}, "[-60000,0):[4] [0,60000):[1 3] [60000,120000):[2] [120000,180000):[0]"},
		{"sliding:2m/1m", []eventtime.Time{m + 1, 10}, "[-60000,60000):[1] [0,120000):[0 1] [60000,180000):[0]"},
	} {
		spec, err := eventtime.ParseWindowSpec(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]abi.Record, len(tt.times))
		for i := range recs {
			recs[i].Offset = int64(i)
		}
		var got []string
		for _, g := range (&windowing{spec: spec}).groupByWindow(recs, tt.times) {
			var offs []int64
			for _, r := range g.recs {
				offs = append(offs, r.Offset)
			}
			got = append(got, fmt.Sprintf("[%d,%d):%v", g.win.Start, g.win.End, offs))
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("%s: %s, want %s", tt.spec, strings.Join(got, " "), tt.want)
		}
	}
}

// TestScanDueMergesPending: the due scan lists committed keys and those of
// uncommitted batches, newest write first (a pending deletion hides a
// committed key, a pending write adds one), in key order, only up to the
// end bound.
func TestScanDueMergesPending(t *testing.T) {
	db := memDB(t)
	s := newStateStore(db, "p")
	w1 := eventtime.Window{Start: 0, End: 60000}
	w2 := eventtime.Window{Start: 60000, End: 120000}
	key := func(w eventtime.Window, k string) []byte { return append(appendWindowPrefix(nil, w), k...) }
	b := db.NewBatch()
	for _, k := range [][]byte{key(w1, "a"), key(w1, "c"), key(w1, "d"), key(w2, "a")} {
		b.PutState("p", 0, k, []byte("1"))
	}
	b.PutState("p", 1, key(w1, "other partition"), []byte("1"))
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	older := s.NewWriteSet(0)
	older.Put(key(w1, "b"), []byte("1"))
	older.Delete(key(w1, "d"))
	older.Put(key(w1, "e"), []byte("1"))
	newer := s.NewWriteSet(0)
	newer.Delete(key(w1, "c"))
	newer.Put(key(w1, "d"), []byte("back"))
	newer.Delete(key(w1, "e"))
	newer.Put(key(w2, "b"), []byte("1"))
	s.Enqueue(older)
	s.Enqueue(newer)
	// scan lists the due keys a limit at a time, as fireWindows does.
	scan := func(bound eventtime.Time, limit int) string {
		var got []string
		var from []byte
		for {
			due, err := s.scanDue(0, from, bound, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(due) > limit {
				t.Fatalf("%d keys for a limit of %d", len(due), limit)
			}
			if len(due) == 0 {
				return strings.Join(got, " ")
			}
			for _, k := range due {
				w, key, _ := decodeWindowKey(k)
				got = append(got, fmt.Sprintf("%d/%s", w.End, key))
			}
			from = append(bytes.Clone(due[len(due)-1]), 0)
		}
	}
	for _, c := range []struct {
		bound eventtime.Time
		want  string
	}{
		{59999, ""},
		{60000, "60000/a 60000/b 60000/d"},
		{119999, "60000/a 60000/b 60000/d"},
		{eventtime.EndOfTime, "60000/a 60000/b 60000/d 120000/a 120000/b"},
	} {
		for _, limit := range []int{1, 2, 1000} {
			if got := scan(c.bound, limit); got != c.want {
				t.Errorf("bound %d, limit %d: %q, want %q", c.bound, limit, got, c.want)
			}
		}
	}
}

// windowCountLine is one output of window_count.
type windowCountLine struct {
	Key         string `json:"key"`
	WindowStart string `json:"window_start"`
	WindowEnd   string `json:"window_end"`
	Count       int    `json:"count"`
}

// lateDeadLetters returns the values of p's dead letters, which must all
// be late records.
func lateDeadLetters(t *testing.T, p *Pipeline) map[string]bool {
	t.Helper()
	late := map[string]bool{}
	err := p.dlq.List(func(e DLQEntry) error {
		if e.Code != abi.FailLate {
			t.Errorf("dead letter with code %d: %s", e.Code, e.Error)
		}
		late[string(e.Value)] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return late
}

// windowResults returns window_count's results in topic "out": the counts
// of each "key|start|end", in output order.
func windowResults(t *testing.T, db *storage.DB) map[string][]int {
	t.Helper()
	got := map[string][]int{}
	for _, e := range readTopic(t, db, "out") {
		var l windowCountLine
		if err := json.Unmarshal(e.Value, &l); err != nil {
			t.Fatalf("output %q: %v", e.Value, err)
		}
		k := l.Key + "|" + l.WindowStart + "|" + l.WindowEnd
		got[k] = append(got[k], l.Count)
	}
	return got
}

// TestFireWindowsAtWatermark: the windows of a partition fire once the
// pipeline watermark reaches their end plus the allowed lateness, and not
// before; each fire is a work at the partition's position holding one
// result per key (from committed and pending state) and the deletion of
// the window's state; firing again finds nothing.
func TestFireWindowsAtWatermark(t *testing.T) {
	db := memDB(t)
	cfg := EventTimeConfig{Extract: "json:ts", Window: "tumbling:1m", AllowedLateness: 30 * time.Second}
	p := logPipeline(t, db, nil, nil, Config{Plugin: testPlugin(t, "window_count"), EventTime: &cfg})
	var err error
	if p.clock, err = newEventClock(db, "p", 1, &cfg); err != nil {
		t.Fatal(err)
	}
	p.sizePartitions(1)
	inst, err := p.cfg.Plugin.NewInstance(context.Background(), host.InstanceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(context.Background())
	gen := &generation{plugin: p.cfg.Plugin}
	base := tsMs(0) - tsMs(0)%60000
	w1 := eventtime.Window{Start: base, End: base + 60000}
	w2 := eventtime.Window{Start: base + 60000, End: base + 120000}
	count := func(n byte) []byte { return []byte{n, 0, 0, 0, 0, 0, 0, 0} }
	b := db.NewBatch()
	b.PutState("p", 0, append(appendWindowPrefix(nil, w1), "a"...), count(3))
	b.PutState("p", 0, append(appendWindowPrefix(nil, w2), "a"...), count(1))
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	pend := p.state.NewWriteSet(0)
	newScopedState(pend, appendWindowPrefix(nil, w1)).Put([]byte("b"), count(2))
	p.state.Enqueue(pend)

	fire := func(watermark eventtime.Time) []*work {
		p.clock.marks = mustWatermarks(t)
		p.clock.marks.Observe(0, watermark, 0)
		p.clock.marks.Tick(0)
		bound, ok := p.windowBound(0)
		if !ok {
			t.Fatal("no bound with a watermark")
		}
		ch := make(chan *work, 16)
		pos := Position{Offset: 77}
		if stopped, err := p.fireWindows(context.Background(), context.Background(), 0, gen, inst, pos, 0, bound, ch); err != nil || stopped {
			t.Fatalf("fire: stopped %v, %v", stopped, err)
		}
		close(ch)
		var ws []*work
		for w := range ch {
			if w.pos != pos || w.n != 0 {
				t.Errorf("a fire's work at %+v with %d records, want the partition's position and none", w.pos, w.n)
			}
			ws = append(ws, w)
		}
		return ws
	}
	if got := fire(w1.End + 29999); len(got) != 0 {
		t.Errorf("fired %d works before watermark = end + lateness", len(got))
	}
	got := fire(w1.End + 30000)
	if len(got) != 1 {
		t.Fatalf("%d works at watermark = end + lateness, want 1", len(got))
	}
	var lines []string
	for _, o := range got[0].recs {
		lines = append(lines, string(o.Value))
	}
	start, end := time.UnixMilli(int64(w1.Start)).UTC().Format(time.RFC3339), time.UnixMilli(int64(w1.End)).UTC().Format(time.RFC3339)
	want := []string{
		fmt.Sprintf(`{"key":"a","window_start":"%s","window_end":"%s","count":3}`, start, end),
		fmt.Sprintf(`{"key":"b","window_start":"%s","window_end":"%s","count":2}`, start, end),
	}
	if !slices.Equal(lines, want) {
		t.Errorf("results %q, want %q", lines, want)
	}
	// Its deletions go with it, and hide the window from the next scan.
	deleted := 0
	for _, ws := range got[0].ws {
		for _, v := range ws.vals {
			if v == nil {
				deleted++
			}
		}
	}
	if deleted != 2 {
		t.Errorf("%d state deletions with the results, want 2", deleted)
	}
	if again := fire(w1.End + 30000); len(again) != 0 {
		t.Errorf("firing again produced %d works", len(again))
	}
}

func mustWatermarks(t *testing.T) *eventtime.Watermarks {
	m, err := eventtime.NewWatermarks(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// windowRecords returns n JSON records of keys k0..k(keys-1) with event
// times jumping back and forth (out of order) over about span seconds.
func windowRecords(n, keys, span int) []string {
	out := make([]string, n)
	for i := range n {
		sec := (i*7919)%span + i/3 // drifts forward, out of order within ~span
		out[i] = fmt.Sprintf(`{"i":%d,"k":"k%d","ts":"%s","amount":%d}`, i, i%keys, ts(sec), i%10)
	}
	return out
}

// windowReference counts the records of values (skipping those in late)
// per key and window of spec.
func windowReference(t *testing.T, spec string, values []string, late map[string]bool) map[string]int {
	s, err := eventtime.ParseWindowSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	ref := map[string]int{}
	for _, v := range values {
		if late[v] {
			continue
		}
		var r struct{ K, Ts string }
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatal(err)
		}
		at, _ := time.Parse(time.RFC3339, r.Ts)
		for _, w := range s.Assign(eventtime.FromStd(at)) {
			ref[fmt.Sprintf("%s|%s|%s", r.K, time.UnixMilli(int64(w.Start)).UTC().Format(time.RFC3339), time.UnixMilli(int64(w.End)).UTC().Format(time.RFC3339))]++
		}
	}
	return ref
}

// TestWindowPipeline runs window_count end to end over out-of-order
// records in small batches: windows fire between batches as the watermark
// passes them, the rest at the end of the input. Under final, every (key,
// window) result appears once and equals the count of its records that
// were not sent to the late output; under updates, each (key, window)
// emits 1..N, each once; no state is left.
func TestWindowPipeline(t *testing.T) {
	for _, tt := range []struct {
		window, emit string
		lateness     time.Duration
	}{
		{"tumbling:1m", "final", time.Hour},
		{"tumbling:1m", "final", 20 * time.Second},
		{"sliding:2m/30s", "final", 30 * time.Second},
		{"tumbling:1m", "updates", 20 * time.Second},
		{"sliding:1m/20s", "updates", time.Hour},
	} {
		t.Run(tt.window+"/"+tt.emit+"/"+tt.lateness.String(), func(t *testing.T) {
			db := memDB(t)
			values := windowRecords(600, 5, 120)
			cfg := EventTimeConfig{Extract: "json:ts", Window: tt.window, Emit: tt.emit, AllowedLateness: tt.lateness}
			p := logPipeline(t, db, values, nil, Config{Plugin: testPlugin(t, "window_count"), EventTime: &cfg, BatchSize: 7,
				PluginConfig: []abi.Header{{Key: []byte("key_field"), Value: []byte("k")}}})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			st, err := p.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			late := lateDeadLetters(t, p)
			if int(st.Late) != len(late) {
				t.Errorf("Stats.Late %d, %d late dead letters", st.Late, len(late))
			}
			ref := windowReference(t, tt.window, values, late)
			got := windowResults(t, db)
			for k, n := range ref {
				want := []int{n}
				if tt.emit == "updates" {
					want = want[:0]
					for i := 1; i <= n; i++ {
						want = append(want, i)
					}
				}
				g := got[k]
				sort.Ints(g)
				if !slices.Equal(g, want) {
					t.Errorf("%s: results %v, want %v", k, g, want)
				}
			}
			for k := range got {
				if _, ok := ref[k]; !ok {
					t.Errorf("%s: results %v for a window without records", k, got[k])
				}
			}
			if tt.lateness < time.Hour && len(late) == 0 && tt.emit == "final" && tt.window == "tumbling:1m" {
				t.Log("no record was beyond the lateness in this run (timing-dependent)")
			}
			left := 0
			db.ScanState("p", 0, func(k, v []byte) error { left++; return nil })
			if left != 0 {
				t.Errorf("%d state keys left after the end of the input", left)
			}
		})
	}
}

// TestWindowConfigRefused: bad windows, emit modes and a module without
// helios_window_close are refused with what to do.
func TestWindowConfigRefused(t *testing.T) {
	db := memDB(t)
	db.CreateTopic("in", 1)
	for _, c := range []struct {
		cfg    EventTimeConfig
		plugin string
		want   string
	}{
		{EventTimeConfig{Extract: "json:ts", Window: "session:0s"}, "window_count", "gap 0s must be positive"},
		{EventTimeConfig{Extract: "json:ts", Window: "hopping:1m"}, "window_count", `unknown window kind "hopping"`},
		{EventTimeConfig{Extract: "json:ts", Window: "tumbling:1m", Emit: "often"}, "window_count", `emit "often": want final or updates`},
		{EventTimeConfig{Extract: "json:ts", Emit: "updates"}, "window_count", "without a window"},
		{EventTimeConfig{Extract: "json:ts", Window: "tumbling:1m"}, "count", "does not export helios_window_close"},
	} {
		cfg := c.cfg
		src, _ := newLogSource(db, "in")
		sink, _ := newLogSink(db, "out", 1)
		_, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, c.plugin), Source: src, Sink: sink, EventTime: &cfg})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}

// TestWindowIdlePartitionFires: under Follow, a partition that gets no more
// input still closes its windows once the other partitions' records move
// the pipeline watermark past them (it wakes up on a timer), while the
// pipeline keeps running; for log: and kafka: inputs. (A kafka: reader's
// first fetch may take a second: with a shorter idle timeout its partition
// would be idle before its first record, which would then be late.)
func TestWindowIdlePartitionFires(t *testing.T) {
	for _, tc := range []struct {
		input string
		idle  time.Duration
	}{{"log", 200 * time.Millisecond}, {"kafka", 3 * time.Second}} {
		t.Run(tc.input, func(t *testing.T) { testWindowIdlePartitionFires(t, tc.input, tc.idle) })
	}
}

func testWindowIdlePartitionFires(t *testing.T, input string, idle time.Duration) {
	db := memDB(t)
	var put func(part uint32, vals ...string)
	var src Source
	switch input {
	case "log":
		if err := db.CreateTopic("in", 2); err != nil {
			t.Fatal(err)
		}
		put = func(part uint32, vals ...string) {
			b := db.NewBatch()
			for _, v := range vals {
				if err := b.Append("in", part, &storage.Entry{Value: []byte(v)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Commit(b); err != nil {
				t.Fatal(err)
			}
		}
		src, _ = newLogSource(db, "in")
	case "kafka":
		c := kafkatest.Shared(t)
		topic := c.Topic(t, 2)
		cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		put = func(part uint32, vals ...string) {
			for _, v := range vals {
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Partition: int32(part), Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
		var err error
		if src, err = ParseSource(context.Background(), "kafka:"+topic, Endpoints{DB: db, Kafka: &KafkaConfig{Brokers: c.Addrs()}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.(*kafkaSource).Close() })
	}
	put(0, `{"k":"busy","ts":"`+ts(0)+`"}`, `{"k":"busy","ts":"`+ts(200)+`"}`)
	put(1, `{"k":"idle","ts":"`+ts(1)+`"}`)
	sink, err := newLogSink(db, "out", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := EventTimeConfig{Extract: "json:ts", Window: "tumbling:1m", IdleTimeout: idle}
	p, err := New(Config{Name: "p", DB: db, Plugin: testPlugin(t, "window_count"), Source: src, Sink: sink, Follow: true, Logger: quiet,
		EventTime: &cfg, PluginConfig: []abi.Header{{Key: []byte("key_field"), Value: []byte("k")}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := p.Run(ctx); done <- err }()
	<-p.Ready()
	// Both partitions read their records first (a kafka: reader takes a
	// while to fetch: a record read after its partition went idle and the
	// watermark moved on would be late, and never open its window).
	for deadline := time.Now().Add(30 * time.Second); p.Progress().RecordsIn < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 records read after 30s", p.Progress().RecordsIn)
		}
	}
	time.Sleep(idle + 300*time.Millisecond) // partition 1 goes idle
	put(0, `{"k":"busy","ts":"`+ts(300)+`"}`)
	want := fmt.Sprintf(`{"key":"idle","window_start":"%s","window_end":"%s","count":1}`, ts(0), ts(60))
	found := false
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, e := range readTopic(t, db, "out") {
			found = found || string(e.Value) == want
		}
	}
	p.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !found {
		var got []string
		for _, e := range readTopic(t, db, "out") {
			got = append(got, string(e.Value))
		}
		t.Fatalf("the idle partition's window did not close while running; outputs %q", got)
	}
}

// closeTrapWAT is a window operator whose close call traps when one of its
// keys is "bad" and otherwise emits nothing.
const closeTrapWAT = `(module
` + watModuleHead + `  (func (export "helios_process") (param i32 i32) (result i64) (call $empty))
  (func (export "helios_window_close") (param $ptr i32) (param $len i32) (result i64)
    (local $p i32) (local $n i32) (local $kl i32)
    (local.set $n (i32.load offset=4 (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 16)))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $kl (i32.load (local.get $p)))
      (if (i32.and (i32.eq (local.get $kl) (i32.const 3))
                   (i32.eq (i32.and (i32.load offset=48 (local.get $p)) (i32.const 0xffffff)) (i32.const 0x646162)))
        (then unreachable))
      (local.set $p (i32.add (local.get $p) (i32.add (i32.const 48)
        (i32.add (local.get $kl) (i32.add (i32.load offset=4 (local.get $p)) (i32.load offset=8 (local.get $p)))))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (call $empty))
  (func $empty (result i64) (i64.or (i64.shl (i64.const 4000) (i64.const 32)) (i64.const 16)))
  (data (i32.const 4000) "HLO1\00\00\00\00\00\00\00\00\00\00\00\00"))`

// TestCloseWindowIsolatesFailingKey: a close call that traps is retried one
// key at a time; the key that fails alone is dead-lettered (code 100, its
// window in the message, its state as the value and its window in the
// metadata), the others close, and every key's state is freed. Retrying
// the dead letter runs the close again over that state: it traps again
// with the same plugin, and with window_count it emits the key's count and
// frees the state. Without a dead-letter queue the pipeline stops with the
// window named and its state kept.
func TestCloseWindowIsolatesFailingKey(t *testing.T) {
	plugin, err := sharedEngine().Compile(context.Background(), "closetrap.wasm", testutil.WAT(t, closeTrapWAT))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plugin.Close(context.Background()) })
	for _, withDLQ := range []bool{true, false} {
		db := memDB(t)
		cfg := EventTimeConfig{Extract: "json:ts", Window: "tumbling:1m", LateOutput: "drop"}
		p := logPipeline(t, db, nil, nil, Config{Plugin: plugin, EventTime: &cfg, DisableDeadLetter: !withDLQ})
		p.sizePartitions(1)
		inst, err := plugin.NewInstance(context.Background(), host.InstanceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(context.Background())
		win := eventtime.Window{Start: 0, End: 60000}
		b := db.NewBatch()
		badState := binary.LittleEndian.AppendUint64(nil, 7) // window_count's state: a count of 7
		for _, k := range []string{"a", "bad", "c"} {
			v := []byte{1}
			if k == "bad" {
				v = badState
			}
			b.PutState("p", 0, append(appendWindowPrefix(nil, win), k...), v)
		}
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
		ch := make(chan *work, 16)
		stopped, err := p.fireWindows(context.Background(), context.Background(), 0, &generation{plugin: plugin}, inst, Position{}, 0, eventtime.EndOfTime, ch)
		close(ch)
		if !withDLQ {
			if err == nil || !strings.Contains(err.Error(), "closing window [1970-01-01T00:00:00.000Z, 1970-01-01T00:01:00.000Z) (3 keys)") ||
				!strings.Contains(err.Error(), "retried by the next run") {
				t.Errorf("without a dead-letter queue: %v", err)
			}
			continue
		}
		if err != nil || stopped {
			t.Fatalf("fire: %v %v", stopped, err)
		}
		var dead []DLQEntry
		deleted := 0
		for w := range ch {
			dead = append(dead, w.dead...)
			for _, ws := range w.ws {
				for _, v := range ws.vals {
					if v == nil {
						deleted++
					}
				}
			}
		}
		if len(dead) != 1 || string(dead[0].Key) != "bad" || dead[0].Code != abi.FailTrap || !strings.Contains(dead[0].Error, "closing window") {
			t.Errorf("dead letters %+v, want key bad with code %d", dead, abi.FailTrap)
		}
		if deleted != 3 {
			t.Errorf("%d keys' state freed, want 3", deleted)
		}
		if len(dead) != 1 {
			continue
		}
		d := dead[0]
		wantMeta := map[string]string{metaWindowStart: "0", metaWindowEnd: "60000", metaWindowScope: hex.EncodeToString(appendWindowPrefix(nil, win))}
		if !bytes.Equal(d.Value, badState) || !maps.Equal(d.Metadata, wantMeta) {
			t.Fatalf("the dead letter carries %x %v, want the key's state %x and %v", d.Value, d.Metadata, badState, wantMeta)
		}
		state := newStateStore(db, "p")
		if _, _, failure, err := retryOne(context.Background(), inst, state, d, nil, nil); err != nil || !strings.Contains(failure, "unreachable") {
			t.Errorf("retried with the plugin that traps: failure %q, %v; want the trap again", failure, err)
		}
		counter, err := testPlugin(t, "window_count").NewInstance(context.Background(), host.InstanceConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer counter.Close(context.Background())
		outs, ws, failure, err := retryOne(context.Background(), counter, state, d, nil, nil)
		if err != nil || failure != "" || len(outs) != 1 || !strings.Contains(string(outs[0].Value), `"key":"bad"`) || !strings.Contains(string(outs[0].Value), `"count":7`) {
			t.Fatalf("retried with window_count: %d outputs %+v, failure %q, %v", len(outs), outs, failure, err)
		}
		if v, ok := ws.vals[string(append(appendWindowPrefix(nil, win), "bad"...))]; !ok || v != nil {
			t.Errorf("the retried close did not free the key's state")
		}
	}
}

// watModuleHead is the start of the tests' hand-written modules: a
// memory, a bump allocator, the ABI version and an empty init.
const watModuleHead = `  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "helios_abi_version") (result i32) (i32.const 1))
  (func (export "helios_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func (export "helios_dealloc") (param i32 i32))
  (func (export "helios_init") (param i32 i32) (result i64) (i64.const 0))
`

// closeFailWAT's helios_window_close emits, for each close record, a
// record entry whose key is the record's key, except for key "bad" in its
// first %d calls, which fails with code %d.
const closeFailWAT = `(module
` + watModuleHead + `  (global $calls (mut i32) (i32.const 0))
  (func (export "helios_process") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 4000) (i64.const 32)) (i64.const 16)))
  (func (export "helios_window_close") (param $ptr i32) (param $len i32) (result i64)
    (local $p i32) (local $n i32) (local $kl i32) (local $i i32) (local $q i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (local.set $n (i32.load offset=4 (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 16)))
    (local.set $q (i32.const 8016))
    (block $done (loop $next
      (br_if $done (i32.eq (local.get $i) (local.get $n)))
      (local.set $kl (i32.load (local.get $p)))
      (i64.store (local.get $q) (i64.const 0))
      (i64.store offset=8 (local.get $q) (i64.const 0))
      (i64.store offset=16 (local.get $q) (i64.const 0))
      (i64.store offset=24 (local.get $q) (i64.const 0))
      (i32.store offset=4 (local.get $q) (local.get $i))
      (if (i32.and (i32.and (i32.eq (local.get $kl) (i32.const 3))
                            (i32.eq (i32.and (i32.load offset=48 (local.get $p)) (i32.const 0xffffff)) (i32.const 0x646162)))
                   (i32.le_u (global.get $calls) (i32.const %d)))
        (then
          (i32.store (local.get $q) (i32.const 1))
          (i32.store offset=20 (local.get $q) (i32.const %d))
          (local.set $q (i32.add (local.get $q) (i32.const 32))))
        (else
          (i32.store offset=8 (local.get $q) (local.get $kl))
          (memory.copy (i32.add (local.get $q) (i32.const 32)) (i32.add (local.get $p) (i32.const 48)) (local.get $kl))
          (local.set $q (i32.add (local.get $q) (i32.add (i32.const 32) (local.get $kl))))))
      (local.set $p (i32.add (local.get $p) (i32.add (i32.const 48)
        (i32.add (local.get $kl) (i32.add (i32.load offset=4 (local.get $p)) (i32.load offset=8 (local.get $p)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.store (i32.const 8000) (i32.const 0x314f4c48))
    (i32.store (i32.const 8004) (i32.const 0))
    (i32.store (i32.const 8008) (local.get $n))
    (i32.store (i32.const 8012) (i32.const 0))
    (i64.or (i64.shl (i64.const 8000) (i64.const 32)) (i64.extend_i32_u (i32.sub (local.get $q) (i32.const 8000)))))
  (data (i32.const 4000) "HLO1\00\00\00\00\00\00\00\00\00\00\00\00"))`

// TestCloseWindowFailedEntries: keys whose close the operator fails (a
// failed entry, not a trap) are closed again when the failure is retryable
// and retries are configured, and are otherwise dead-lettered with their
// state and window, so that `dlq retry` can close them again; every key's
// state is freed. Without a dead-letter queue the pipeline stops with the
// window named and nothing handed over (its state kept for the next run).
// Before, a retryable failure of a close was dropped: the key's result was
// lost with its state and nothing was dead-lettered.
func TestCloseWindowFailedEntries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failCalls  int    // calls in which key "bad" fails
		code       uint32 // its failure code
		maxRetries int
		noDLQ      bool
		wantOuts   []string // output keys
		wantDead   bool     // key "bad" dead-lettered with code, after maxRetries retries
		wantErr    string
	}{
		{name: "retryable then succeeds", failCalls: 1, code: abi.FailRetryable, maxRetries: 2, wantOuts: []string{"a", "c", "bad"}},
		{name: "retryable until the last retry succeeds", failCalls: 3, code: abi.FailRetryable, maxRetries: 3, wantOuts: []string{"a", "c", "bad"}},
		{name: "retryable beyond the retries", failCalls: 10, code: abi.FailRetryable, maxRetries: 2, wantOuts: []string{"a", "c"}, wantDead: true},
		{name: "retryable without retries", failCalls: 10, code: abi.FailRetryable, wantOuts: []string{"a", "c"}, wantDead: true},
		{name: "not retryable", failCalls: 10, code: abi.FailGeneric, maxRetries: 2, wantOuts: []string{"a", "c"}, wantDead: true},
		{name: "retryable, no dead-letter queue", failCalls: 10, code: abi.FailRetryable, maxRetries: 1, noDLQ: true,
			wantErr: "closing window [1970-01-01T00:00:00.000Z, 1970-01-01T00:01:00.000Z)"},
		{name: "not retryable, no dead-letter queue", failCalls: 10, code: abi.FailGeneric, noDLQ: true,
			wantErr: "closing window [1970-01-01T00:00:00.000Z, 1970-01-01T00:01:00.000Z) (3 keys)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plugin, err := sharedEngine().Compile(context.Background(), "closefail.wasm", testutil.WAT(t, fmt.Sprintf(closeFailWAT, tc.failCalls, tc.code)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { plugin.Close(context.Background()) })
			db := memDB(t)
			cfg := EventTimeConfig{Extract: "json:ts", Window: "tumbling:1m", LateOutput: "drop"}
			p := logPipeline(t, db, nil, nil, Config{Plugin: plugin, EventTime: &cfg, DisableDeadLetter: tc.noDLQ,
				MaxRetries: tc.maxRetries, RetryBackoff: time.Millisecond})
			p.sizePartitions(1)
			inst, err := plugin.NewInstance(context.Background(), host.InstanceConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(context.Background())
			win := eventtime.Window{Start: 0, End: 60000}
			b := db.NewBatch()
			for _, k := range []string{"a", "bad", "c"} {
				b.PutState("p", 0, append(appendWindowPrefix(nil, win), k...), []byte("state of "+k))
			}
			if err := db.Commit(b); err != nil {
				t.Fatal(err)
			}
			ch := make(chan *work, 16)
			stopped, err := p.fireWindows(context.Background(), context.Background(), 0, &generation{plugin: plugin}, inst, Position{}, 0, eventtime.EndOfTime, ch)
			close(ch)
			var outs []string
			var dead []DLQEntry
			deleted := 0
			for w := range ch {
				for _, o := range w.recs {
					outs = append(outs, string(o.Key))
				}
				dead = append(dead, w.dead...)
				for _, ws := range w.ws {
					for _, v := range ws.vals {
						if v == nil {
							deleted++
						}
					}
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "retried by the next run") || len(outs)+len(dead)+deleted > 0 {
					t.Fatalf("got %v, %d outputs, %d dead letters, %d deletions; want the error %q and nothing handed over", err, len(outs), len(dead), deleted, tc.wantErr)
				}
				return
			}
			if err != nil || stopped {
				t.Fatalf("fire: %v %v", stopped, err)
			}
			if !slices.Equal(outs, tc.wantOuts) {
				t.Errorf("outputs %q, want %q", outs, tc.wantOuts)
			}
			if deleted != 3 {
				t.Errorf("%d keys' state freed, want 3", deleted)
			}
			if !tc.wantDead {
				if len(dead) > 0 {
					t.Errorf("dead letters %+v, want none", dead)
				}
				return
			}
			wantMeta := map[string]string{metaWindowStart: "0", metaWindowEnd: "60000", metaWindowScope: hex.EncodeToString(appendWindowPrefix(nil, win))}
			retries := 0
			if tc.code == abi.FailRetryable {
				retries = tc.maxRetries
			}
			if len(dead) != 1 || string(dead[0].Key) != "bad" || dead[0].Code != tc.code || dead[0].RetryCount != retries ||
				string(dead[0].Value) != "state of bad" || !maps.Equal(dead[0].Metadata, wantMeta) {
				t.Fatalf("dead letters %+v, want key bad with code %d after %d retries, its state and window %v", dead, tc.code, retries, wantMeta)
			}
		})
	}
}
