package eventtime

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// DueKeySize is the fixed part of a due key: the window's end.
const DueKeySize = 8

// AppendDueKey appends the ordered encoding of an open window for key:
//
//	end (8 bytes, big-endian, sign bit flipped) | key
//
// Byte order equals (end, key) order, negative times included, so a store
// that keeps keys sorted (Pebble) lists the windows a watermark closes as
// one prefix scan from the start. The window's start goes in the value
// (AppendDueValue): for every window kind a key has at most one open window
// per end.
func AppendDueKey(dst []byte, end Time, key []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(end)^(1<<63))
	return append(dst, key...)
}

// DecodeDueKey splits a due key into the window's end and the key (which
// aliases b).
func DecodeDueKey(b []byte) (end Time, key []byte, err error) {
	if len(b) < DueKeySize {
		return 0, nil, fmt.Errorf("due key of %d bytes, want at least %d", len(b), DueKeySize)
	}
	return Time(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[DueKeySize:], nil
}

// AppendDueValue appends the value stored under a due key: the start.
func AppendDueValue(dst []byte, start Time) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(start))
}

// DecodeDueValue decodes AppendDueValue's encoding.
func DecodeDueValue(b []byte) (Time, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("due value of %d bytes, want 8", len(b))
	}
	return Time(binary.BigEndian.Uint64(b)), nil
}

// CloseBefore returns the bound below which window ends are due: a window
// closes when watermark >= end + allowedLateness, i.e. end <= the result.
func CloseBefore(watermark Time, allowedLateness time.Duration) Time {
	return watermark.Add(-allowedLateness)
}

// KeyedWindow is a window open for one key.
type KeyedWindow struct {
	Key    []byte
	Window Window
}

// OpenWindows is the ordered index of open (key, window) pairs, in due-key
// order. This implementation keeps it in memory (a map and a heap); its
// keys and values are the due encoding above, so a Pebble-backed index is a
// range of those keys with the same semantics.
//
// OpenWindows is safe for concurrent use.
type OpenWindows struct {
	mu    sync.Mutex
	start map[string]Time // due key -> window start
	order dueHeap         // due keys; may hold stale keys (removed since)
}

// NewOpenWindows returns an empty index.
func NewOpenWindows() *OpenWindows { return &OpenWindows{start: map[string]Time{}} }

// Add opens w for key. Adding an open window again is a no-op; adding a
// different window with the same end for the same key is an error (no
// window kind produces one).
func (o *OpenWindows) Add(key []byte, w Window) error {
	k := string(AppendDueKey(nil, w.End, key))
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.start[k]; ok {
		if s != w.Start {
			return fmt.Errorf("key %q already has window %v open, cannot open %v with the same end", key, Window{s, w.End}, w)
		}
		return nil
	}
	o.start[k] = w.Start
	heap.Push(&o.order, k)
	return nil
}

// Remove closes w for key without reporting it due (a session merged into
// another); it reports whether w was open.
func (o *OpenWindows) Remove(key []byte, w Window) bool {
	k := string(AppendDueKey(nil, w.End, key))
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.start[k]; !ok || s != w.Start {
		return false
	}
	delete(o.start, k)
	if len(o.order) > 2*len(o.start)+64 { // drop stale keys
		o.order = o.order[:0]
		for k := range o.start {
			o.order = append(o.order, k)
		}
		heap.Init(&o.order)
	}
	return true
}

// Len returns the number of open windows.
func (o *OpenWindows) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.start)
}

// PopDue removes and returns the windows with end <= before (see
// CloseBefore), in (end, key) order.
func (o *OpenWindows) PopDue(before Time) []KeyedWindow {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []KeyedWindow
	for len(o.order) > 0 {
		end, key, _ := DecodeDueKey([]byte(o.order[0]))
		if end > before {
			break
		}
		k := heap.Pop(&o.order).(string)
		start, ok := o.start[k]
		if !ok {
			continue // stale: removed or popped already
		}
		delete(o.start, k)
		out = append(out, KeyedWindow{Key: key, Window: Window{start, end}})
	}
	return out
}

// MarshalBinary encodes the open windows in due-key order.
func (o *OpenWindows) MarshalBinary() ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	keys := slices.Sorted(maps.Keys(o.start))
	b := appendHeader(nil, tagOpenWindows)
	b = appendU32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendBytes(b, []byte(k))
		b = appendI64(b, int64(o.start[k]))
	}
	return b, nil
}

// UnmarshalBinary replaces the index with a snapshot from MarshalBinary.
func (o *OpenWindows) UnmarshalBinary(data []byte) error {
	r := newReader(data, tagOpenWindows, "open windows")
	n := r.count(4 + DueKeySize + 8)
	start := make(map[string]Time, n)
	order := make(dueHeap, 0, n)
	for range n {
		k := r.bytes()
		s := Time(r.i64())
		if r.err == nil && len(k) < DueKeySize {
			r.fail("due key of %d bytes", len(k))
		}
		if _, dup := start[string(k)]; dup {
			r.fail("due key %x twice", k)
		}
		start[string(k)] = s
		order = append(order, string(k))
	}
	if err := r.done(); err != nil {
		return err
	}
	heap.Init(&order)
	o.mu.Lock()
	o.start, o.order = start, order
	o.mu.Unlock()
	return nil
}

// dueHeap is a min-heap of due keys.
type dueHeap []string

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
