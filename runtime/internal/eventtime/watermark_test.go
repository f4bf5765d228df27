package eventtime

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestWatermarks(t *testing.T) {
	type step struct {
		op        string // observe, register, tick, end
		part      uint32
		event     Time
		now       Time
		wantGlob  Time // for tick and end
		wantIdle  []uint32
		wantPMark map[uint32]Time
	}
	for _, tc := range []struct {
		name        string
		delay, idle time.Duration
		steps       []step
	}{
		{"min over partitions minus delay", 5 * time.Millisecond, 0, []step{
			{op: "observe", part: 0, event: 100},
			{op: "observe", part: 1, event: 50},
			{op: "tick", wantGlob: 45, wantPMark: map[uint32]Time{0: 95, 1: 45}},
			{op: "observe", part: 1, event: 40}, // out of order: no effect
			{op: "tick", wantGlob: 45},
			{op: "observe", part: 1, event: 200},
			{op: "tick", wantGlob: 95},
		}},
		{"registered empty partition holds back until idle", 0, 10 * time.Millisecond, []step{
			{op: "register", part: 1, now: 0},
			{op: "observe", part: 0, event: 100, now: 5},
			{op: "tick", now: 5, wantGlob: NoWatermark},
			{op: "tick", now: 10, wantGlob: 100, wantIdle: []uint32{1}},
		}},
		{"idle partition rejoining behind does not move it back", 0, 10 * time.Millisecond, []step{
			{op: "observe", part: 0, event: 100, now: 0},
			{op: "observe", part: 1, event: 100, now: 0},
			{op: "tick", now: 0, wantGlob: 100},
			{op: "observe", part: 0, event: 500, now: 20},
			{op: "tick", now: 20, wantGlob: 500, wantIdle: []uint32{1}},
			{op: "observe", part: 1, event: 200, now: 21}, // rejoins behind the global watermark
			{op: "tick", now: 21, wantGlob: 500},
			{op: "observe", part: 0, event: 900, now: 22},
			{op: "tick", now: 22, wantGlob: 500}, // held by partition 1 (200) until it catches up
			{op: "observe", part: 1, event: 700, now: 23},
			{op: "tick", now: 23, wantGlob: 700},
		}},
		{"all idle: stays", 0, 10 * time.Millisecond, []step{
			{op: "observe", part: 0, event: 100, now: 0},
			{op: "tick", now: 0, wantGlob: 100},
			{op: "tick", now: 100, wantGlob: 100, wantIdle: []uint32{0}},
		}},
		{"no idle timeout: never idle", 0, 0, []step{
			{op: "register", part: 1, now: 0},
			{op: "observe", part: 0, event: 100, now: 0},
			{op: "tick", now: 1 << 40, wantGlob: NoWatermark},
		}},
		{"end of input", time.Second, 0, []step{
			{op: "register", part: 1},
			{op: "observe", part: 0, event: 100},
			{op: "end", wantGlob: EndOfTime, wantPMark: map[uint32]Time{0: EndOfTime, 1: EndOfTime}},
			{op: "observe", part: 0, event: 200},
			{op: "tick", wantGlob: EndOfTime, wantPMark: map[uint32]Time{0: EndOfTime}},
		}},
		{"delay saturates at the range", time.Hour, 0, []step{
			{op: "observe", part: 0, event: MinEventTime},
			{op: "tick", wantGlob: MinEventTime - Time(time.Hour.Milliseconds())},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWatermarks(tc.delay, tc.idle)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				var got Time
				switch s.op {
				case "observe":
					w.Observe(s.part, s.event, s.now)
					continue
				case "register":
					w.Register(s.part, s.now)
					continue
				case "tick":
					got = w.Tick(s.now)
				case "end":
					w.AdvanceToEnd()
					got = w.Current()
				}
				if got != s.wantGlob || w.Current() != got {
					t.Fatalf("step %d (%s): watermark %v, want %v", i, s.op, got, s.wantGlob)
				}
				for p, want := range s.wantPMark {
					if m, _, _ := w.Partition(p); m != want {
						t.Fatalf("step %d: partition %d watermark %v, want %v", i, p, m, want)
					}
				}
				for _, p := range s.wantIdle {
					if _, idle, ok := w.Partition(p); !idle || !ok {
						t.Fatalf("step %d: partition %d not idle", i, p)
					}
				}
			}
		})
	}
}

func TestNewWatermarksRejectsNegative(t *testing.T) {
	if _, err := NewWatermarks(-time.Second, 0); err == nil {
		t.Error("negative delay accepted")
	}
	if _, err := NewWatermarks(0, -time.Second); err == nil {
		t.Error("negative idle timeout accepted")
	}
}

// TestWatermarksMonotonicProperty: under random arrival orders, idle gaps
// and snapshot/restore cycles, neither a partition's nor the pipeline's
// watermark ever moves back, a partition's watermark is its max event time
// minus the delay, and the pipeline's never passes the minimum over
// partitions that were active at the tick.
func TestWatermarksMonotonicProperty(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		delay := time.Duration(rng.IntN(50)) * time.Millisecond
		w, _ := NewWatermarks(delay, 20*time.Millisecond)
		parts := 1 + rng.IntN(4)
		maxEv := map[uint32]Time{}
		lastPart := map[uint32]Time{}
		last := NoWatermark
		now := Time(0)
		for step := 0; step < 300; step++ {
			now += Time(rng.IntN(8))
			p := uint32(rng.IntN(parts))
			ev := Time(rng.IntN(1000)) + Time(step) // drifting forward, out of order
			if rng.IntN(4) > 0 {
				w.Observe(p, ev, now)
				if m, ok := maxEv[p]; !ok || ev > m {
					maxEv[p] = ev
				}
			}
			if rng.IntN(20) == 0 { // restart from a snapshot
				b, err := w.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				w, _ = NewWatermarks(delay, 20*time.Millisecond)
				if err := w.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
				if w.Current() != last {
					t.Fatalf("seed %d: restore changed the watermark %v -> %v", seed, last, w.Current())
				}
			}
			g := w.Tick(now)
			if g < last {
				t.Fatalf("seed %d step %d: watermark moved back %v -> %v", seed, step, last, g)
			}
			want := last // max(previous, min over active partitions)
			low, active := EndOfTime, false
			for q := range uint32(parts) {
				if m, idle, ok := w.Partition(q); ok && !idle {
					low, active = min(low, m), true
				}
			}
			if active {
				want = max(want, low)
			}
			if g != want {
				t.Fatalf("seed %d step %d: watermark %v, want %v", seed, step, g, want)
			}
			last = g
			for q, m := range maxEv {
				pm, _, _ := w.Partition(q)
				if pm != m.Add(-delay) {
					t.Fatalf("seed %d: partition %d watermark %v, want %v", seed, q, pm, m.Add(-delay))
				}
				if prev, ok := lastPart[q]; ok && pm < prev {
					t.Fatalf("seed %d: partition %d moved back", seed, q)
				}
				lastPart[q] = pm
			}
		}
	}
}

func TestWatermarksSnapshot(t *testing.T) {
	w, _ := NewWatermarks(time.Millisecond, time.Second)
	w.Observe(3, 100, 0)
	w.Observe(1, 50, 0)
	w.Register(2, 0)
	w.Tick(5000) // all idle
	w.Observe(1, 60, 5000)
	w.Tick(5000)
	b, _ := w.MarshalBinary()
	b2, _ := w.MarshalBinary()
	if string(b) != string(b2) {
		t.Fatal("encoding not deterministic")
	}
	r, _ := NewWatermarks(time.Millisecond, time.Second)
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint32{1, 2, 3} {
		m1, i1, _ := w.Partition(p)
		m2, i2, ok := r.Partition(p)
		if m1 != m2 || i1 != i2 || !ok {
			t.Errorf("partition %d: %v/%v restored as %v/%v", p, m1, i1, m2, i2)
		}
	}
	// The idle clock restarts on restore: a late first tick does not make
	// partition 1 idle at once.
	r.Tick(1 << 40)
	if _, idle, _ := r.Partition(1); idle {
		t.Error("partition 1 idle right after restore")
	}
	if r.Current() != w.Current() {
		t.Errorf("global %v restored as %v", w.Current(), r.Current())
	}
	for _, bad := range [][]byte{nil, {tagLate, 1}, {tagWatermarks, 9}, b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if err := r.UnmarshalBinary(bad); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("UnmarshalBinary(%x) = %v, want ErrCorruptSnapshot", bad, err)
		}
	}
}

// TestWatermarksConcurrentReaders: metrics and admin read while the
// pipeline observes and ticks (run with -race); readers never see the
// pipeline watermark move back.
func TestWatermarksConcurrentReaders(t *testing.T) {
	w, _ := NewWatermarks(time.Millisecond, time.Second)
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		last := NoWatermark
		for {
			select {
			case <-done:
				return
			default:
			}
			g := w.Current()
			if g < last {
				errc <- errors.New("pipeline watermark moved back")
				return
			}
			last = g
			w.Partition(0)
			if _, err := w.MarshalBinary(); err != nil {
				errc <- err
				return
			}
		}
	}()
	for i := range 5000 {
		w.Observe(uint32(i%3), Time(i), Time(i))
		w.Tick(Time(i))
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestWatermarksRaise: Raise lifts a partition's watermark and the
// pipeline watermark to committed values, never lowers either, and later
// records below the raised mark do not move it back.
func TestWatermarksRaise(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		observe              Time // before the raise; NoWatermark: none
		mark, pipeline       Time
		wantMark, wantGlobal Time
	}{
		{"fresh partition", NoWatermark, 5000, 4000, 5000, 4000},
		{"ahead already", 9000, 5000, 4000, 9000, 4000},
		{"nothing committed", NoWatermark, NoWatermark, NoWatermark, 100, NoWatermark}, // the record sets it
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWatermarks(0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.observe != NoWatermark {
				w.Observe(0, tc.observe, 1)
			}
			w.Raise(0, tc.mark, tc.pipeline, 1)
			w.Observe(0, 100, 2) // far behind a raised mark: moves nothing back
			if m, _, _ := w.Partition(0); m != tc.wantMark {
				t.Errorf("partition watermark %v, want %v", m, tc.wantMark)
			}
			if g := w.Current(); g != tc.wantGlobal {
				t.Errorf("pipeline watermark %v, want %v", g, tc.wantGlobal)
			}
		})
	}
}
