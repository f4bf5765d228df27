package eventtime

import (
	"testing"
	"time"
)

// TestClonesAreIndependent: the pipeline computes a transaction's snapshot
// on a clone and applies the same calls to the original on commit, so a
// clone must start equal (processing times included) and share nothing.
func TestClonesAreIndependent(t *testing.T) {
	w, _ := NewWatermarks(time.Second, time.Minute)
	w.Observe(0, 10_000, 0)
	w.Observe(1, 20_000, 0)
	w.Tick(0)
	c := w.Clone()
	c.Observe(0, 50_000, 1000)
	// Partition 1 last had a record at 0: idle at 60 s on both, which
	// needs the clone to have copied its processing time.
	if got, want := c.Tick(60_000), Time(49_000); got != want {
		t.Errorf("clone watermark %v, want %v", got, want)
	}
	if got := w.Current(); got != 9_000 {
		t.Errorf("original moved to %v with its clone, want 9s", got)
	}
	w.Observe(0, 50_000, 1000)
	if got := w.Tick(60_000); got != 49_000 {
		t.Errorf("original after the same calls %v, want the clone's 49s", got)
	}

	h, _ := NewLateDataHandler(time.Second, 2)
	h.SetAllowedLateness(3, time.Hour)
	h.Handle(0, [16]byte{1}, 0, 5_000)
	hc := h.Clone()
	hc.Handle(0, [16]byte{2}, 0, 5_000)
	hc.Handle(0, [16]byte{3}, 0, 5_000)
	if h.Count(Drop) != 1 || hc.Count(Drop) != 3 || len(h.Recent()) != 1 || hc.Recent()[0].ID != [16]byte{2} {
		t.Errorf("counts %d/%d, recent %v/%v: the clone is not independent", h.Count(Drop), hc.Count(Drop), h.Recent(), hc.Recent())
	}
	if hc.AllowedLateness(3) != time.Hour {
		t.Errorf("clone lost the per-partition override")
	}
}

// TestDecideMatchesHandle: Decide routes a record as Handle later counts it.
func TestDecideMatchesHandle(t *testing.T) {
	h, _ := NewLateDataHandler(time.Second, 10)
	h.SetAllowedLateness(1, 0)
	for _, tc := range []struct {
		part     uint32
		event    Time
		wm       Time
		late     bool
		decision Decision
	}{
		{0, 10_000, 10_000, false, Accept},
		{0, 9_000, 10_000, true, Accept},
		{0, 8_999, 10_000, true, Drop},
		{1, 9_999, 10_000, true, Drop},
		{0, MinEventTime, NoWatermark, false, Accept},
		{0, MaxEventTime, EndOfTime, true, Drop},
	} {
		late, d := h.Decide(tc.part, tc.event, tc.wm)
		before := h.Count(Accept) + h.Count(Drop)
		if late != tc.late || d != tc.decision || h.Handle(tc.part, [16]byte{}, tc.event, tc.wm) != d {
			t.Errorf("%+v: Decide %v %v", tc, late, d)
		}
		if counted := h.Count(Accept)+h.Count(Drop) > before; counted != late {
			t.Errorf("%+v: counted %v by Handle, want %v", tc, counted, late)
		}
	}
}
