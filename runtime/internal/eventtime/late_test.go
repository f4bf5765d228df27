package eventtime

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestLateDataHandlerDecisions(t *testing.T) {
	h, err := NewLateDataHandler(DefaultAllowedLateness, DefaultMaxTracked)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetAllowedLateness(7, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	const wm = Time(1_000_000_000)
	min := func(n int64) Time { return Time(n * 60_000) }
	for _, tc := range []struct {
		name      string
		part      uint32
		event     Time
		late      bool
		want      Decision
		wantCount bool // counted and tracked
	}{
		{"on time", 0, wm, false, Accept, false},
		{"ahead", 0, wm + 1, false, Accept, false},
		{"just late", 0, wm - 1, true, Accept, true},
		{"exactly allowed", 0, wm - min(5), true, Accept, true},
		{"beyond allowed", 0, wm - min(5) - 1, true, Drop, true},
		{"override accepts", 7, wm - min(9), true, Accept, true},
		{"override drops", 7, wm - min(10) - 1, true, Drop, true},
		{"far behind drops", 0, MinEventTime, true, Drop, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.IsLate(tc.part, tc.event, wm); got != tc.late {
				t.Fatalf("IsLate = %v, want %v", got, tc.late)
			}
			before := h.Count(tc.want)
			n := len(h.Recent())
			if got := h.Handle(tc.part, [16]byte{byte(tc.part)}, tc.event, wm); got != tc.want {
				t.Fatalf("Handle = %v, want %v", got, tc.want)
			}
			if counted := h.Count(tc.want) == before+1; counted != tc.wantCount {
				t.Fatalf("counted = %v, want %v", counted, tc.wantCount)
			}
			if tracked := len(h.Recent()) == n+1; tracked != tc.wantCount {
				t.Fatalf("tracked = %v, want %v", tracked, tc.wantCount)
			}
		})
	}
	if got := h.Handle(0, [16]byte{}, 0, EndOfTime); got != Drop {
		t.Errorf("a record at the end of time: %v, want drop", got)
	}
	if got := h.AllowedLateness(7); got != 10*time.Minute {
		t.Errorf("AllowedLateness(7) = %v", got)
	}
	if got := h.AllowedLateness(8); got != DefaultAllowedLateness {
		t.Errorf("AllowedLateness(8) = %v", got)
	}
}

func TestLateDataHandlerValidation(t *testing.T) {
	for _, tc := range []struct {
		allowed time.Duration
		max     int
	}{{-1, 10}, {0, -1}, {0, maxTrackedLimit + 1}} {
		if _, err := NewLateDataHandler(tc.allowed, tc.max); err == nil {
			t.Errorf("NewLateDataHandler(%v, %d) accepted", tc.allowed, tc.max)
		}
	}
	h, _ := NewLateDataHandler(0, 0)
	if err := h.SetAllowedLateness(1, -time.Second); err == nil {
		t.Error("negative override accepted")
	}
	h.Handle(0, [16]byte{}, 0, 10)
	if len(h.Recent()) != 0 || h.Count(Drop) != 1 {
		t.Errorf("maxTracked 0: tracked %d, dropped %d", len(h.Recent()), h.Count(Drop))
	}
}

// TestLateDataHandlerEvictsOldest: beyond the bound, the oldest tracked
// record goes; the counters keep counting.
func TestLateDataHandlerEvictsOldest(t *testing.T) {
	h, _ := NewLateDataHandler(time.Millisecond, 3)
	for i := range 5 {
		h.Handle(0, [16]byte{byte(i)}, Time(100-i), 100) // lateness i ms
	}
	got := h.Recent()
	if len(got) != 3 {
		t.Fatalf("tracked %d, want 3", len(got))
	}
	for i, r := range got {
		if r.ID[0] != byte(i+2) || r.Lateness != time.Duration(i+2)*time.Millisecond {
			t.Errorf("tracked[%d] = id %d lateness %v, want id %d", i, r.ID[0], r.Lateness, i+2)
		}
	}
	if h.Count(Accept) != 1 || h.Count(Drop) != 3 { // lateness 0 is not late; 1 accepted; 2,3,4 dropped
		t.Errorf("accept %d drop %d, want 1 and 3", h.Count(Accept), h.Count(Drop))
	}
}

func TestLateDataHandlerSnapshot(t *testing.T) {
	h, _ := NewLateDataHandler(time.Millisecond, 4)
	for i := range 7 {
		h.Handle(uint32(i), [16]byte{byte(i), 0xAA}, Time(-i), 1)
	}
	b, _ := h.MarshalBinary()
	r, _ := NewLateDataHandler(time.Hour, 4)
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if r.Count(Accept) != h.Count(Accept) || r.Count(Drop) != h.Count(Drop) {
		t.Errorf("counts %d/%d restored as %d/%d", h.Count(Accept), h.Count(Drop), r.Count(Accept), r.Count(Drop))
	}
	want, got := h.Recent(), r.Recent()
	if len(got) != len(want) {
		t.Fatalf("tracked %d restored as %d", len(want), len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("tracked[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	// A smaller bound keeps the newest.
	small, _ := NewLateDataHandler(time.Millisecond, 2)
	if err := small.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if s := small.Recent(); len(s) != 2 || s[0] != want[2] || s[1] != want[3] {
		t.Errorf("bound 2 kept %+v, want the newest two of %+v", s, want)
	}
	bad := append([]byte{}, b...)
	bad[len(bad)-1] = 9 // decision
	for _, d := range [][]byte{bad, b[:5], {tagWatermarks, 1}} {
		if err := r.UnmarshalBinary(d); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("UnmarshalBinary(%x) = %v", d, err)
		}
	}
}

// TestLateDataHandlerConcurrent: Handle from workers while readers inspect
// (run with -race); no decision is lost.
func TestLateDataHandlerConcurrent(t *testing.T) {
	h, _ := NewLateDataHandler(time.Second, 100)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Handle(uint32(p), [16]byte{}, Time(-i*10), 0)
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				_ = h.Recent()
				_, _ = h.MarshalBinary()
				_ = h.Count(Drop)
			}
		}()
	}
	wg.Wait()
	if got := h.Count(Accept) + h.Count(Drop); got != 4*999 { // i=0 is on time
		t.Errorf("counted %d, want %d", got, 4*999)
	}
}

// TestLatePreviewAndSlots: Preview predicts what Handle does (counters and
// tracked records) without changing the handler, and a handler restored
// from the counters snapshot plus the records stored slot by slot (seq %
// bound) equals one that handled every record, the oldest evicted.
func TestLatePreviewAndSlots(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bound    int
		batches  []int // late records per transaction
		wantKept int
	}{
		{"below the bound", 5, []int{2, 1}, 3},
		{"wraps", 5, []int{3, 4, 2}, 5},
		{"one batch larger than the bound", 5, []int{12}, 5},
		{"tracks none", 0, []int{3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, _ := NewLateDataHandler(time.Second, tc.bound)
			live, _ := NewLateDataHandler(time.Second, tc.bound)
			slots := map[uint64][]byte{}
			var counters []byte
			n := 0
			for _, size := range tc.batches {
				var in []LateInput
				for range size {
					n++
					// every third record is beyond the allowed lateness
					in = append(in, LateInput{Partition: uint32(n % 2), ID: [16]byte{byte(n)}, EventTime: Time(10_000 - 1000*(n%3)), Watermark: 10_500})
				}
				before := live.Recent()
				var tracked []TrackedLate
				counters, tracked = live.Preview(in)
				if got := live.Recent(); len(got) != len(before) {
					t.Fatalf("Preview changed the handler: %d tracked, was %d", len(got), len(before))
				}
				for _, tr := range tracked {
					slots[tr.Seq%uint64(max(tc.bound, 1))] = EncodeLateRecord(tr.LateRecord)
				}
				for _, r := range in {
					live.Handle(r.Partition, r.ID, r.EventTime, r.Watermark)
					ref.Handle(r.Partition, r.ID, r.EventTime, r.Watermark)
				}
				if !bytes.Equal(counters, live.MarshalCounters()) {
					t.Fatalf("Preview's counters %x, Handle's %x", counters, live.MarshalCounters())
				}
			}
			restored, _ := NewLateDataHandler(time.Second, tc.bound)
			err := restored.RestoreCounters(counters, func(slot uint64) ([]byte, bool, error) {
				b, ok := slots[slot]
				return b, ok, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want, got := ref.Recent(), restored.Recent()
			if len(got) != tc.wantKept || !slices.Equal(got, want) {
				t.Errorf("restored %v\nwant %v", got, want)
			}
			for _, d := range []Decision{Accept, Drop} {
				if restored.Count(d) != ref.Count(d) {
					t.Errorf("%v: %d, want %d", d, restored.Count(d), ref.Count(d))
				}
			}
			if !IsCounters(counters) || IsCounters(mustMarshal(t, ref)) {
				t.Error("IsCounters does not tell the two snapshot kinds apart")
			}
		})
	}
}

func mustMarshal(t *testing.T, h *LateDataHandler) []byte {
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzLateDecoders: the late-data decoders reject or accept any bytes
// without panicking, and what they accept encodes back to the same bytes.
func FuzzLateDecoders(f *testing.F) {
	h, _ := NewLateDataHandler(time.Second, 4)
	h.Handle(1, [16]byte{7}, 100, 5000)
	f.Add(EncodeLateRecord(h.Recent()[0]))
	f.Add(h.MarshalCounters())
	snap, _ := h.MarshalBinary()
	f.Add(snap)
	f.Fuzz(func(t *testing.T, data []byte) {
		if lr, err := DecodeLateRecord(data); err == nil && !bytes.Equal(EncodeLateRecord(lr), data) {
			t.Errorf("late record %x decodes to %+v, which encodes to %x", data, lr, EncodeLateRecord(lr))
		}
		g, _ := NewLateDataHandler(time.Second, 4)
		if err := g.RestoreCounters(data, func(uint64) ([]byte, bool, error) { return nil, false, nil }); err == nil && !bytes.Equal(g.MarshalCounters(), data) {
			t.Errorf("counters %x restore to %x", data, g.MarshalCounters())
		}
		g.UnmarshalBinary(data)
	})
}
