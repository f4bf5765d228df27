package eventtime

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Watermarks tracks a watermark per partition with bounded out-of-orderness
// and the pipeline's watermark derived from them. A watermark W asserts that
// records with event time < W have all been seen: a record below it is late,
// and a window [start, end) is complete once W >= end.
//
//   - A partition's watermark is (max event time seen) - delay, and never
//     moves back.
//   - A partition that got no record for the idle timeout (processing time,
//     passed to Tick) is idle and stops holding the pipeline watermark back;
//     a record makes it active again.
//   - The pipeline watermark is max(previous pipeline watermark, min over
//     active partitions). It never moves back: a partition that rejoins
//     behind it holds it where it is until it catches up (its records below
//     it are late), which is Flink's rule. With every partition idle it
//     stays where it is.
//
// Processing time is never read here: the caller passes it, so a replay
// that passes the same times makes the same decisions.
//
// Watermarks is safe for concurrent use.
type Watermarks struct {
	mu     sync.Mutex
	delay  time.Duration
	idle   time.Duration // 0: partitions never become idle
	parts  map[uint32]*partitionMark
	global Time
}

type partitionMark struct {
	maxEvent   Time // NoWatermark until a record is seen
	mark       Time
	lastActive Time // processing time of the last record; unknownTime after a restore
	idle       bool
}

// unknownTime marks a processing time not yet seen since a restore: the
// idle clock restarts then, so downtime does not count as idleness.
const unknownTime = NoWatermark

// NewWatermarks returns watermarks with the given bounded out-of-orderness
// (delay, >= 0, truncated to the millisecond) and idle timeout (>= 0; 0
// means a partition is never considered idle).
func NewWatermarks(delay, idleTimeout time.Duration) (*Watermarks, error) {
	if delay < 0 {
		return nil, fmt.Errorf("watermark delay %v is negative", delay)
	}
	if idleTimeout < 0 {
		return nil, fmt.Errorf("idle timeout %v is negative", idleTimeout)
	}
	return &Watermarks{delay: delay, idle: idleTimeout, parts: map[uint32]*partitionMark{}, global: NoWatermark}, nil
}

func (w *Watermarks) part(p uint32, now Time) *partitionMark {
	pm := w.parts[p]
	if pm == nil {
		pm = &partitionMark{maxEvent: NoWatermark, mark: NoWatermark, lastActive: now}
		w.parts[p] = pm
	}
	return pm
}

// Register makes partition p known before it has records, so that it holds
// the pipeline watermark back (at NoWatermark) until it gets records or
// becomes idle. now is the processing time.
func (w *Watermarks) Register(p uint32, now Time) {
	w.mu.Lock()
	w.part(p, now)
	w.mu.Unlock()
}

// Observe records an event time seen on partition p at processing time now.
// The partition becomes active. The pipeline watermark changes on Tick.
func (w *Watermarks) Observe(p uint32, eventTime, now Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pm := w.part(p, now)
	pm.lastActive, pm.idle = now, false
	if eventTime > pm.maxEvent {
		pm.maxEvent = eventTime
		if m := eventTime.Add(-w.delay); m > pm.mark {
			pm.mark = m
		}
	}
}

// Raise moves partition p's watermark up to mark, and the pipeline
// watermark up to pipeline, where they are below: watermarks committed
// elsewhere (by the partition's previous owner in a consumer group, which
// judged the partition's records against its pipeline watermark).
func (w *Watermarks) Raise(p uint32, mark, pipeline, now Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pm := w.part(p, now)
	if mark > pm.mark {
		pm.mark = mark
		pm.maxEvent = max(pm.maxEvent, mark.Add(w.delay))
	}
	w.global = max(w.global, pipeline)
}

// Tick marks partitions idle whose last record is at least the idle timeout
// before now, recomputes the pipeline watermark and returns it. Call it once
// per batch, after Observe for the batch's records.
func (w *Watermarks) Tick(now Time) Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	low, active := EndOfTime, false
	for _, pm := range w.parts {
		if pm.lastActive == unknownTime {
			pm.lastActive = now
		}
		if !pm.idle && w.idle > 0 && now >= pm.lastActive.Add(w.idle) {
			pm.idle = true
		}
		if !pm.idle {
			low, active = min(low, pm.mark), true
		}
	}
	if active && low > w.global {
		w.global = low
	}
	return w.global
}

// Current returns the pipeline watermark as of the last Tick.
func (w *Watermarks) Current() Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.global
}

// Partition returns partition p's watermark and whether it is idle; ok is
// false for a partition never registered or observed.
func (w *Watermarks) Partition(p uint32) (mark Time, idle, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pm := w.parts[p]
	if pm == nil {
		return NoWatermark, false, false
	}
	return pm.mark, pm.idle, true
}

// AdvanceToEnd moves every watermark to EndOfTime: the input is bounded and
// fully read, so every open window can be closed.
func (w *Watermarks) AdvanceToEnd() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, pm := range w.parts {
		pm.mark = EndOfTime
	}
	w.global = EndOfTime
}

// MarshalBinary encodes the watermarks (not the configuration, and not the
// processing times: the idle clock restarts on restore).
func (w *Watermarks) MarshalBinary() ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]uint32, 0, len(w.parts))
	for p := range w.parts {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	b := appendHeader(make([]byte, 0, 2+8+4+len(ids)*21), tagWatermarks)
	b = appendI64(b, int64(w.global))
	b = appendU32(b, uint32(len(ids)))
	for _, p := range ids {
		pm := w.parts[p]
		b = appendU32(b, p)
		b = appendI64(b, int64(pm.maxEvent))
		b = appendI64(b, int64(pm.mark))
		idle := byte(0)
		if pm.idle {
			idle = 1
		}
		b = append(b, idle)
	}
	return b, nil
}

// UnmarshalBinary replaces the state with a snapshot from MarshalBinary.
func (w *Watermarks) UnmarshalBinary(data []byte) error {
	r := newReader(data, tagWatermarks, "watermarks")
	global := Time(r.i64())
	n := r.count(21)
	parts := make(map[uint32]*partitionMark, n)
	for range n {
		p := r.u32()
		pm := &partitionMark{maxEvent: Time(r.i64()), mark: Time(r.i64()), lastActive: unknownTime}
		switch r.u8() {
		case 0:
		case 1:
			pm.idle = true
		default:
			r.fail("partition %d: bad idle flag", p)
		}
		if _, dup := parts[p]; dup {
			r.fail("partition %d twice", p)
		}
		parts[p] = pm
	}
	if err := r.done(); err != nil {
		return err
	}
	w.mu.Lock()
	w.global, w.parts = global, parts
	w.mu.Unlock()
	return nil
}

// Clone returns an independent copy, processing times included: the
// pipeline computes the snapshot a transaction commits on a clone and
// applies the same calls to the original once the transaction is durable.
func (w *Watermarks) Clone() *Watermarks {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := &Watermarks{delay: w.delay, idle: w.idle, parts: make(map[uint32]*partitionMark, len(w.parts)), global: w.global}
	for p, pm := range w.parts {
		cp := *pm
		c.parts[p] = &cp
	}
	return c
}
