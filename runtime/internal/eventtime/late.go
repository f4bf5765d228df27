package eventtime

import (
	"fmt"
	"strconv"
	"sync"
	"time"
)

const (
	// DefaultAllowedLateness is how far behind the watermark a record may be
	// and still be accepted.
	DefaultAllowedLateness = 5 * time.Minute
	// DefaultMaxTracked is how many recent late records a handler keeps for
	// inspection.
	DefaultMaxTracked = 10_000
	// maxTrackedLimit bounds maxTracked so a typo cannot reserve gigabytes.
	maxTrackedLimit = 1_000_000
)

// Decision is what happens to a late record.
type Decision uint8

const (
	// Accept processes the record: its window's result is updated.
	Accept Decision = iota
	// Drop sends the record to the late output (DLQ, log, ...) instead.
	Drop
	numDecisions
)

func (d Decision) String() string {
	switch d {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// LateRecord is a late record as tracked for inspection.
type LateRecord struct {
	Partition uint32
	ID        [16]byte
	EventTime Time
	Watermark Time
	Lateness  time.Duration // Watermark - EventTime
	Decision  Decision
}

// LateDataHandler decides what happens to records behind the watermark:
// within the allowed lateness (per partition, with a default) they are
// accepted, beyond it dropped (to the late output). It counts decisions and
// keeps the most recent late records, evicting the oldest beyond its bound.
// Counters and tracked records are state: they commit with the offsets
// (MarshalBinary), so a replay neither double-counts nor forgets.
//
// LateDataHandler is safe for concurrent use.
type LateDataHandler struct {
	mu        sync.Mutex
	allowed   time.Duration
	overrides map[uint32]time.Duration
	max       int
	recent    []LateRecord // ring buffer, len <= max
	next      int          // index of the oldest entry once len(recent) == max
	counts    [numDecisions]uint64
}

// NewLateDataHandler returns a handler with the default allowed lateness
// (>= 0) and a bound on tracked late records (0 tracks none, at most
// 1,000,000).
func NewLateDataHandler(allowedLateness time.Duration, maxTracked int) (*LateDataHandler, error) {
	if allowedLateness < 0 {
		return nil, fmt.Errorf("allowed lateness %v is negative", allowedLateness)
	}
	if maxTracked < 0 || maxTracked > maxTrackedLimit {
		return nil, fmt.Errorf("late records tracked %d is outside 0..%d", maxTracked, maxTrackedLimit)
	}
	return &LateDataHandler{allowed: allowedLateness, overrides: map[uint32]time.Duration{}, max: maxTracked}, nil
}

// SetAllowedLateness overrides the allowed lateness for one partition.
func (h *LateDataHandler) SetAllowedLateness(partition uint32, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("allowed lateness %v for partition %d is negative", d, partition)
	}
	h.mu.Lock()
	h.overrides[partition] = d
	h.mu.Unlock()
	return nil
}

// AllowedLateness returns the allowed lateness of a partition.
func (h *LateDataHandler) AllowedLateness(partition uint32) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.allowedLocked(partition)
}

func (h *LateDataHandler) allowedLocked(partition uint32) time.Duration {
	if d, ok := h.overrides[partition]; ok {
		return d
	}
	return h.allowed
}

// IsLate reports whether a record with this event time is behind the
// watermark. Lateness does not depend on the partition; the parameter keeps
// the call symmetric with Handle.
func (h *LateDataHandler) IsLate(partition uint32, eventTime, watermark Time) bool {
	return eventTime < watermark
}

// Handle decides a record's fate: Accept if it is not late or at most the
// partition's allowed lateness behind the watermark, Drop otherwise. Late
// records are counted and tracked; on-time ones are neither.
func (h *LateDataHandler) Handle(partition uint32, id [16]byte, eventTime, watermark Time) Decision {
	if !h.IsLate(partition, eventTime, watermark) {
		return Accept
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	lateness := lateBy(eventTime, watermark)
	d := h.decideLocked(partition, lateness)
	h.counts[d]++
	h.track(LateRecord{Partition: partition, ID: id, EventTime: eventTime, Watermark: watermark, Lateness: lateness, Decision: d})
	return d
}

// Decide returns what Handle would decide, without counting or tracking:
// late reports whether the record is behind the watermark at all. The
// pipeline routes records with Decide and counts them with Handle when the
// transaction holding them commits.
func (h *LateDataHandler) Decide(partition uint32, eventTime, watermark Time) (late bool, d Decision) {
	if !h.IsLate(partition, eventTime, watermark) {
		return false, Accept
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return true, h.decideLocked(partition, lateBy(eventTime, watermark))
}

func (h *LateDataHandler) decideLocked(partition uint32, lateness time.Duration) Decision {
	if lateness > h.allowedLocked(partition) {
		return Drop
	}
	return Accept
}

// Clone returns an independent copy (configuration, counters and tracked
// records).
func (h *LateDataHandler) Clone() *LateDataHandler {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &LateDataHandler{allowed: h.allowed, overrides: make(map[uint32]time.Duration, len(h.overrides)), max: h.max,
		recent: append([]LateRecord(nil), h.recent...), next: h.next, counts: h.counts}
	for p, d := range h.overrides {
		c.overrides[p] = d
	}
	return c
}

// lateBy is watermark - eventTime as a Duration, saturating (a watermark at
// EndOfTime makes every record very late, not negatively late).
func lateBy(eventTime, watermark Time) time.Duration {
	const maxMs = int64(1<<63-1) / int64(time.Millisecond)
	ms := int64(watermark) - int64(eventTime)
	if ms < 0 || ms > maxMs { // ms < 0: the subtraction overflowed
		return time.Duration(1<<63 - 1)
	}
	return time.Duration(ms) * time.Millisecond
}

func (h *LateDataHandler) track(r LateRecord) {
	switch {
	case h.max == 0:
	case len(h.recent) < h.max:
		h.recent = append(h.recent, r)
	default:
		h.recent[h.next] = r
		h.next = (h.next + 1) % h.max
	}
}

// Count returns how many late records got decision d.
func (h *LateDataHandler) Count(d Decision) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d >= numDecisions {
		return 0
	}
	return h.counts[d]
}

// Recent returns the tracked late records, oldest first.
func (h *LateDataHandler) Recent() []LateRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recentLocked()
}

func (h *LateDataHandler) recentLocked() []LateRecord {
	out := make([]LateRecord, 0, len(h.recent))
	out = append(out, h.recent[h.next:]...)
	return append(out, h.recent[:h.next]...)
}

// MarshalBinary encodes the counters and the tracked records (not the
// configuration).
func (h *LateDataHandler) MarshalBinary() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	recent := h.recentLocked()
	b := appendHeader(make([]byte, 0, 2+8*int(numDecisions)+4+len(recent)*lateRecordSize), tagLate)
	for _, c := range h.counts {
		b = appendI64(b, int64(c))
	}
	b = appendU32(b, uint32(len(recent)))
	for _, r := range recent {
		b = appendU32(b, r.Partition)
		b = append(b, r.ID[:]...)
		b = appendI64(b, int64(r.EventTime))
		b = appendI64(b, int64(r.Watermark))
		b = appendI64(b, int64(r.Lateness))
		b = append(b, byte(r.Decision))
	}
	return b, nil
}

const lateRecordSize = 4 + 16 + 8 + 8 + 8 + 1

// UnmarshalBinary replaces the counters and tracked records with a snapshot
// from MarshalBinary. If the snapshot tracks more records than this
// handler's bound, the oldest are evicted.
func (h *LateDataHandler) UnmarshalBinary(data []byte) error {
	r := newReader(data, tagLate, "late data")
	var counts [numDecisions]uint64
	for i := range counts {
		counts[i] = uint64(r.i64())
	}
	n := r.count(lateRecordSize)
	recent := make([]LateRecord, 0, n)
	for range n {
		lr := LateRecord{Partition: r.u32()}
		copy(lr.ID[:], r.take(16))
		lr.EventTime, lr.Watermark, lr.Lateness = Time(r.i64()), Time(r.i64()), time.Duration(r.i64())
		if lr.Decision = Decision(r.u8()); lr.Decision >= numDecisions {
			r.fail("bad decision %d", lr.Decision)
		}
		recent = append(recent, lr)
	}
	if err := r.done(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts = counts
	h.recent, h.next = nil, 0
	for _, lr := range recent[max(0, len(recent)-h.max):] {
		h.track(lr)
	}
	return nil
}
