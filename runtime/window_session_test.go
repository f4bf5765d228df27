package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// sessionRecords returns n JSON records of keys k0..k(keys-1), keyed by
// their k, in bursts of 100 records 80 s apart, each burst spread over 20 s
// and out of order by up to 4 s either way; one record in 50 is an hour
// behind.
func sessionRecords(n, keys int) []storage.Entry {
	out := make([]storage.Entry, n)
	for i := range n {
		sec := (i/100)*80 + (i%100)/5 + (i*7919)%9 - 4
		if i%50 == 7 {
			sec -= 3600
		}
		k := fmt.Sprintf("k%d", i%keys)
		out[i] = storage.Entry{Key: []byte(k), Value: fmt.Appendf(nil, `{"i":%d,"k":%q,"ts":%q}`, i, k, ts(sec+4000))}
	}
	return out
}

// sessionReference is the sessions of the records of es (skipping those in
// late), per key: records at most gap apart share one, which spans
// [first, last + gap). It maps "key|start|end" to the session's count.
func sessionReference(t *testing.T, gap time.Duration, es []storage.Entry, late map[string]bool) map[string]int {
	times := map[string][]int64{}
	for _, e := range es {
		if late[string(e.Value)] {
			continue
		}
		var r struct{ K, Ts string }
		if err := json.Unmarshal(e.Value, &r); err != nil {
			t.Fatal(err)
		}
		at, _ := time.Parse(time.RFC3339, r.Ts)
		times[r.K] = append(times[r.K], at.UnixMilli())
	}
	ref := map[string]int{}
	for k, ts := range times {
		slices.Sort(ts)
		for i := 0; i < len(ts); {
			j := i + 1
			for j < len(ts) && ts[j]-ts[j-1] <= gap.Milliseconds() {
				j++
			}
			f := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
			ref[k+"|"+f(ts[i])+"|"+f(ts[j-1]+gap.Milliseconds())] = j - i
			i = j
		}
	}
	return ref
}

// insideSession reports whether the window of result k ("key|start|end")
// lies inside one of its key's sessions in ref: sessions only grow, so
// every update is made for a part of a final session.
func insideSession(ref map[string]int, k string) bool {
	key, win, _ := strings.Cut(k, "|")
	start, end, _ := strings.Cut(win, "|")
	for r := range ref {
		rkey, rwin, _ := strings.Cut(r, "|")
		rstart, rend, _ := strings.Cut(rwin, "|")
		// RFC 3339 in UTC at one precision: text order is time order
		if rkey == key && rstart <= start && end <= rend {
			return true
		}
	}
	return false
}

// TestSessionPipeline runs window_count over session windows end to end,
// in small batches of out-of-order records, so that sessions open, grow,
// merge (within a batch and across batches) and fire as the watermark
// passes them. Under final every session's result appears once and equals
// its count in a reference computed here; under updates, each session's
// last update is its count and every update lies inside one of the key's
// sessions. No state is left at the end.
func TestSessionPipeline(t *testing.T) {
	for _, tt := range []struct {
		window, emit string
		lateness     time.Duration
	}{
		{"session:10s", "final", time.Hour},
		{"session:3s", "final", 20 * time.Second},
		{"session:10s", "final", 20 * time.Second},
		{"session:10s", "updates", 20 * time.Second},
		{"session:2s", "updates", time.Hour},
	} {
		t.Run(tt.window+"/"+tt.emit+"/"+tt.lateness.String(), func(t *testing.T) {
			db := memDB(t)
			es := sessionRecords(1500, 5)
			db.CreateTopic("in", 1)
			b := db.NewBatch()
			for i := range es {
				if err := b.Append("in", 0, &es[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Commit(b); err != nil {
				t.Fatal(err)
			}
			cfg := EventTimeConfig{Extract: "json:ts", Window: tt.window, Emit: tt.emit, AllowedLateness: tt.lateness}
			p := logPipeline(t, db, nil, nil, Config{Plugin: testPlugin(t, "window_count"), EventTime: &cfg, BatchSize: 7})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := p.Run(ctx); err != nil {
				t.Fatal(err)
			}
			late := lateDeadLetters(t, p)
			if tt.lateness < time.Hour && len(late) < len(es)/50/2 {
				t.Errorf("%d late records, want about %d", len(late), len(es)/50)
			}
			spec, _ := eventtime.ParseWindowSpec(tt.window)
			ref := sessionReference(t, spec.Gap, es, late)
			got := windowResults(t, db)
			for k, n := range ref {
				g := got[k]
				sort.Ints(g)
				switch {
				case tt.emit == "final" && !slices.Equal(g, []int{n}):
					t.Errorf("%s: results %v, want [%d]", k, g, n)
				case tt.emit == "updates" && (len(g) == 0 || g[len(g)-1] != n):
					t.Errorf("%s: updates %v, want the last to be %d", k, g, n)
				}
			}
			for k := range got {
				_, ok := ref[k]
				switch {
				case !ok && tt.emit == "final":
					t.Errorf("%s: results %v for a session without records", k, got[k])
				case !ok && !insideSession(ref, k):
					t.Errorf("%s: updates %v for a window inside none of the key's sessions", k, got[k])
				}
			}
			if len(ref) < 20 {
				t.Errorf("only %d sessions: the test exercises little", len(ref))
			}
			left := 0
			db.ScanState("p", 0, func(k, v []byte) error { left++; return nil })
			if left != 0 {
				t.Errorf("%d state keys left after the end of the input", left)
			}
			t.Logf("%d sessions, %d late records, %d outputs", len(ref), len(late), len(readTopic(t, db, "out")))
		})
	}
}

// TestSessionClosesAfterItsEnd: a session [s, e) closes once the bound
// (watermark minus lateness) is past e, not when it reaches e: a record at
// e is still accepted then, and joins the session (records at most the gap
// apart share one). Closing at e emitted one session as two results.
func TestSessionClosesAfterItsEnd(t *testing.T) {
	db := memDB(t)
	cfg := EventTimeConfig{Extract: "json:ts", Window: "session:30s"}
	p := logPipeline(t, db, nil, nil, Config{Plugin: testPlugin(t, "window_count"), EventTime: &cfg})
	var err error
	if p.clock, err = newEventClock(db, "p", 1, &cfg); err != nil {
		t.Fatal(err)
	}
	p.sizePartitions(1)
	ctx := context.Background()
	inst, err := p.cfg.Plugin.NewInstance(ctx, host.InstanceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	gen := &generation{plugin: p.cfg.Plugin}
	w, err := p.processWindows(ctx, 0, gen, inst, []abi.Record{{Key: []byte("a"), Value: []byte(`{}`)}}, []eventtime.Time{tsMs(0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ws := range w.ws {
		p.state.Enqueue(ws)
	}
	fire := func(bound eventtime.Time) (results int) {
		ch := make(chan *work, 16)
		if stopped, err := p.fireWindows(ctx, ctx, 0, gen, inst, Position{}, 0, bound, ch); err != nil || stopped {
			t.Fatalf("fire: stopped %v, %v", stopped, err)
		}
		close(ch)
		for w := range ch {
			results += len(w.recs)
		}
		return results
	}
	end := tsMs(30)
	if n := fire(end); n != 0 {
		t.Errorf("%d results at bound = the session's end, want none: a record at its end still joins it", n)
	}
	if n := fire(end + 1); n != 1 {
		t.Errorf("%d results past the session's end, want 1", n)
	}
}
