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
	total     uint64 // late records ever tracked: the next one's sequence number
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
		recent: append([]LateRecord(nil), h.recent...), next: h.next, counts: h.counts, total: h.total}
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
	if h.max == 0 {
		return
	}
	h.total++
	switch {
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
		b = appendLateRecord(b, r)
	}
	return b, nil
}

func appendLateRecord(b []byte, lr LateRecord) []byte {
	b = appendU32(b, lr.Partition)
	b = append(b, lr.ID[:]...)
	b = appendI64(b, int64(lr.EventTime))
	b = appendI64(b, int64(lr.Watermark))
	b = appendI64(b, int64(lr.Lateness))
	return append(b, byte(lr.Decision))
}

func readLateRecord(r *reader) LateRecord {
	lr := LateRecord{Partition: r.u32()}
	copy(lr.ID[:], r.take(16))
	lr.EventTime, lr.Watermark, lr.Lateness = Time(r.i64()), Time(r.i64()), time.Duration(r.i64())
	if lr.Decision = Decision(r.u8()); lr.Decision >= numDecisions {
		r.fail("bad decision %d", lr.Decision)
	}
	return lr
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
		recent = append(recent, readLateRecord(r))
	}
	if err := r.done(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts = counts
	h.recent, h.next, h.total = nil, 0, 0
	for _, lr := range recent[max(0, len(recent)-h.max):] {
		h.track(lr)
	}
	return nil
}

// A handler's committed state can also be kept as a small counters
// snapshot (MarshalCounters) plus one entry per tracked record
// (EncodeLateRecord), each stored in its slot Seq % MaxTracked: a
// transaction with late records then writes a few bytes per record instead
// of the whole ring (10,000 records by default).

// TrackedLate is a late record with its sequence number among every late
// record the handler has tracked.
type TrackedLate struct {
	Seq uint64
	LateRecord
}

// LateInput is a late record as the pipeline saw it, before Handle.
type LateInput struct {
	Partition uint32
	ID        [16]byte
	EventTime Time
	Watermark Time
}

// MaxTracked is the bound on tracked records.
func (h *LateDataHandler) MaxTracked() int { return h.max }

// Preview returns, without changing h, the counters snapshot h would have
// after Handle of every late record of in (MarshalCounters), and the
// records it would track (at most MaxTracked, the newest).
func (h *LateDataHandler) Preview(in []LateInput) ([]byte, []TrackedLate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	counts, total := h.counts, h.total
	var out []TrackedLate
	for _, r := range in {
		if !h.IsLate(r.Partition, r.EventTime, r.Watermark) {
			continue
		}
		lateness := lateBy(r.EventTime, r.Watermark)
		d := h.decideLocked(r.Partition, lateness)
		counts[d]++
		if h.max > 0 {
			out = append(out, TrackedLate{Seq: total, LateRecord: LateRecord{Partition: r.Partition, ID: r.ID, EventTime: r.EventTime,
				Watermark: r.Watermark, Lateness: lateness, Decision: d}})
			total++
		}
	}
	if len(out) > h.max {
		out = out[len(out)-h.max:]
	}
	return marshalCounters(counts, total), out
}

// MarshalCounters encodes the counters and the number of records tracked
// so far, not the records.
func (h *LateDataHandler) MarshalCounters() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return marshalCounters(h.counts, h.total)
}

func marshalCounters(counts [numDecisions]uint64, total uint64) []byte {
	b := appendHeader(make([]byte, 0, 2+8*int(numDecisions)+8), tagLateCounters)
	for _, c := range counts {
		b = appendI64(b, int64(c))
	}
	return appendI64(b, int64(total))
}

// IsCounters reports whether data is a MarshalCounters snapshot (rather
// than a MarshalBinary one).
func IsCounters(data []byte) bool { return len(data) > 0 && data[0] == tagLateCounters }

// RestoreCounters replaces h's state with a MarshalCounters snapshot and
// the tracked records it counts, which read returns by slot (seq %
// MaxTracked; found false for a slot never written).
func (h *LateDataHandler) RestoreCounters(data []byte, read func(slot uint64) ([]byte, bool, error)) error {
	r := newReader(data, tagLateCounters, "late data counters")
	var counts [numDecisions]uint64
	for i := range counts {
		counts[i] = uint64(r.i64())
	}
	total := uint64(r.i64())
	if err := r.done(); err != nil {
		return err
	}
	var recent []LateRecord
	if h.max > 0 {
		for seq := total - min(total, uint64(h.max)); seq < total; seq++ {
			b, found, err := read(seq % uint64(h.max))
			if err != nil {
				return err
			}
			if !found {
				continue // tracked under a smaller bound
			}
			lr, err := DecodeLateRecord(b)
			if err != nil {
				return err
			}
			recent = append(recent, lr)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts = counts
	h.recent, h.next, h.total = nil, 0, 0
	for _, lr := range recent {
		h.track(lr)
	}
	h.total = total
	return nil
}

// EncodeLateRecord encodes one tracked record.
func EncodeLateRecord(lr LateRecord) []byte {
	return appendLateRecord(appendHeader(make([]byte, 0, 2+lateRecordSize), tagLateRecord), lr)
}

// DecodeLateRecord decodes EncodeLateRecord's bytes.
func DecodeLateRecord(data []byte) (LateRecord, error) {
	r := newReader(data, tagLateRecord, "late record")
	lr := readLateRecord(r)
	return lr, r.done()
}
