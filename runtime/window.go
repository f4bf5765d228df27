package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
)

// Event-time windows (EventTimeConfig.Window; abi.md, "Windows"). The host
// assigns each kept record to its windows and calls helios_process once per
// window of a batch; during such a call the operator's state is scoped to
// the window: key K of window W is stored as
//
//	W.end (8 bytes) | W.start (8 bytes) | K
//
// both big-endian with the sign bit flipped, so that byte order is time
// order, negative times included. All state of a windowed pipeline thus
// sorts by window end, and the (key, window) pairs a watermark closes are a
// range scan of the partition's state up to an end bound: no index, nothing
// on the heap per open window. Closing calls helios_window_close per
// window and batch of due keys and deletes their state in the same
// transaction as the results (RATIONALE.md, "Why are windows host-owned
// with the accumulator in WASM state?").

// windowIdleTick is how often a following partition without input wakes
// up to close the windows the pipeline watermark has passed.
const windowIdleTick = time.Second

// windowPrefixSize is the length of a window-scoped key's window part.
const windowPrefixSize = 16

// windowing is a windowed pipeline's configuration.
type windowing struct {
	spec    eventtime.WindowSpec
	updates bool // Emit "updates"
}

func orderedTime(t eventtime.Time) uint64 { return uint64(t) ^ (1 << 63) }

// appendWindowPrefix appends w's part of a window-scoped state key.
func appendWindowPrefix(dst []byte, w eventtime.Window) []byte {
	dst = binary.BigEndian.AppendUint64(dst, orderedTime(w.End))
	return binary.BigEndian.AppendUint64(dst, orderedTime(w.Start))
}

// decodeWindowKey splits a window-scoped state key; key aliases b.
func decodeWindowKey(b []byte) (w eventtime.Window, key []byte, ok bool) {
	if len(b) < windowPrefixSize {
		return w, nil, false
	}
	w.End = eventtime.Time(binary.BigEndian.Uint64(b) ^ (1 << 63))
	w.Start = eventtime.Time(binary.BigEndian.Uint64(b[8:]) ^ (1 << 63))
	return w, b[windowPrefixSize:], true
}

// windowCall is what the operator calls made for one window share: the
// window their descriptor shows and the prefix that scopes their state.
type windowCall struct {
	win   eventtime.Window
	scope []byte
}

// fixedWindowCall is the call of a tumbling or sliding window, whose state
// is scoped by the window itself.
func fixedWindowCall(w eventtime.Window) *windowCall {
	return &windowCall{win: w, scope: appendWindowPrefix(nil, w)}
}

// scopedState is the state view of one window call: it prefixes every key
// with the call's scope (host.StateStore).
type scopedState struct {
	ws    *writeSet
	buf   []byte // the scope, then the current key
	scope int
}

func newScopedState(ws *writeSet, scope []byte) *scopedState {
	return &scopedState{ws: ws, buf: append(make([]byte, 0, len(scope)+32), scope...), scope: len(scope)}
}

// key returns the scoped key; valid until the next call (the write set
// copies what it keeps).
func (s *scopedState) key(k []byte) []byte {
	s.buf = append(s.buf[:s.scope], k...)
	return s.buf
}

func (s *scopedState) Get(k []byte) ([]byte, bool, error) { return s.ws.Get(s.key(k)) }
func (s *scopedState) Put(k, v []byte) error              { return s.ws.Put(s.key(k), v) }
func (s *scopedState) Delete(k []byte) error              { return s.ws.Delete(s.key(k)) }

// windowGroup is the records of a batch that belong to one window, in
// batch order.
type windowGroup struct {
	win  eventtime.Window
	recs []abi.Record
}

// groupByWindow assigns each record (its event time in times) to its
// windows and returns one group per window, in window order (start, then
// end). A sliding window's record appears in several groups.
func (wi *windowing) groupByWindow(recs []abi.Record, times []eventtime.Time) []windowGroup {
	var groups []windowGroup
	index := map[eventtime.Window]int{}
	var wins []eventtime.Window
	for i := range recs {
		wins = wi.spec.AppendWindows(wins[:0], times[i])
		for _, w := range wins {
			g, ok := index[w]
			if !ok {
				g = len(groups)
				index[w] = g
				groups = append(groups, windowGroup{win: w})
			}
			groups[g].recs = append(groups[g].recs, recs[i])
		}
	}
	sort.SliceStable(groups, func(i, j int) bool {
		a, b := groups[i].win, groups[j].win
		return a.Start < b.Start || a.Start == b.Start && a.End < b.End
	})
	return groups
}

// hostWindow is the descriptor of a call made for w.
func (wi *windowing) hostWindow(w eventtime.Window) *host.Window {
	return &host.Window{Start: int64(w.Start), End: int64(w.End), Updates: wi.updates}
}

// processWindows runs a batch through the operator one window group at a
// time (each with its own retries), into one work.
func (p *Pipeline) processWindows(ctx context.Context, part uint32, gen *generation, inst *host.Instance, recs []abi.Record, times []eventtime.Time, lines []lineAt) (*work, error) {
	w := &work{part: part, gen: gen, lines: lines}
	if p.windows.spec.Kind == eventtime.Session {
		return p.processSessions(ctx, part, gen, inst, recs, times, lines)
	}
	for _, g := range p.windows.groupByWindow(recs, times) {
		w.win = fixedWindowCall(g.win)
		if err := p.processInto(ctx, w, inst, g.recs); err != nil {
			return nil, err
		}
		if err := p.retryRecords(ctx, inst, w); err != nil {
			return nil, err
		}
	}
	w.win = nil
	w.dead = uniqueDead(w.dead)
	return w, nil
}

// uniqueDead keeps the first dead letter of each record: a record of
// several (sliding) windows may fail in more than one.
func uniqueDead(dead []DLQEntry) []DLQEntry {
	if len(dead) < 2 {
		return dead
	}
	type at struct {
		id     string
		offset int64
	}
	seen := map[at]bool{}
	out := dead[:0]
	for _, d := range dead {
		k := at{d.MessageID, d.Offset}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

// windowInputID is the id an input record has within window w's call, from
// which its outputs' ids derive: a record of several windows gets distinct
// output ids in each.
func windowInputID(id [16]byte, w eventtime.Window) [16]byte {
	a := outputID(id, uint32(orderedTime(w.Start)>>32)^uint32(orderedTime(w.Start)))
	return outputID(a, uint32(orderedTime(w.End)>>32)^uint32(orderedTime(w.End)))
}

// closeRecordID is the id of the record standing for key in the close
// call of the window whose state scope is scope: the same on every replay.
func closeRecordID(part uint32, scope, key []byte) (id [16]byte) {
	h := fnv.New128a()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], part)
	h.Write(b[:])
	h.Write(scope)
	h.Write(key)
	h.Sum(id[:0])
	setUUIDBits(&id)
	return id
}

// dueUpper is the exclusive upper bound of the scoped keys of windows
// ending at or before bound; nil: every key.
func dueUpper(bound eventtime.Time) []byte {
	if bound == eventtime.EndOfTime {
		return nil
	}
	return binary.BigEndian.AppendUint64(nil, orderedTime(bound+1))
}

// errEnough stops a scan that has found what it needs.
var errEnough = errors.New("enough")

// scanDue returns, in key order, up to limit window-scoped keys of part
// from from (inclusive; nil: the first) whose window ends at or before
// bound (scanRange).
func (s *stateStore) scanDue(part uint32, from []byte, bound eventtime.Time, limit int) ([][]byte, error) {
	return s.scanRange(part, from, dueUpper(bound), limit)
}

// scanRange returns, in key order, up to limit state keys of part in [from,
// upper) (nil: unbounded), as the partition's later batches see state:
// committed state merged with the write sets of batches handed over and not
// committed yet (newest first; a deletion hides the key). The keys are
// copies.
func (s *stateStore) scanRange(part uint32, from, upper []byte, limit int) ([][]byte, error) {
	in := func(k string) bool { return k >= string(from) && (upper == nil || k < string(upper)) }
	// The overlay first, then the committed state: a write set leaves the
	// overlay only once it is committed, so whatever commits in between is
	// seen in one of the two.
	overlay := map[string]bool{} // key -> present
	s.mu.Lock()
	pend := s.pending[part]
	for i := len(pend) - 1; i >= 0; i-- {
		for k, v := range pend[i].vals {
			if _, seen := overlay[k]; !seen && in(k) {
				overlay[k] = v != nil
			}
		}
	}
	s.mu.Unlock()
	keys := make([]string, 0, len(overlay))
	for k := range overlay {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out [][]byte
	next := 0
	// overlayBefore takes the overlay's present keys below k (all, for nil).
	overlayBefore := func(k []byte) error {
		for ; next < len(keys) && (k == nil || keys[next] < string(k)); next++ {
			if len(out) == limit {
				return errEnough
			}
			if overlay[keys[next]] {
				out = append(out, []byte(keys[next]))
			}
		}
		return nil
	}
	// A fresh iterator per call: one kept open across the commits of a
	// long close would pin every memtable written meanwhile.
	err := s.db.ScanStateRange(s.pipeline, part, from, upper, func(k, _ []byte) error {
		if err := overlayBefore(k); err != nil {
			return err
		}
		if next < len(keys) && keys[next] == string(k) {
			next++
			if !overlay[string(k)] {
				return nil // deleted by an uncommitted batch
			}
		}
		if len(out) == limit {
			return errEnough
		}
		out = append(out, bytes.Clone(k))
		return nil
	})
	if err == nil {
		err = overlayBefore(nil)
	}
	if err != nil && err != errEnough {
		return nil, err
	}
	return out, nil
}

// fireWindows closes the windows of part that end at or before bound: for
// each window it calls helios_window_close over the window's keys (at most
// a batch size at a time) and hands each call's outputs, with the deletion
// of the keys it closed, to the committer as a work at position pos (the
// partition's position does not move). The close calls of a window see its
// state as the partition's next batch would.
func (p *Pipeline) fireWindows(ctx, readCtx context.Context, part uint32, gen *generation, inst *host.Instance, pos Position, assignment uint64,
	bound eventtime.Time, ch chan<- *work) (stopped bool, err error) {
	if p.windows.spec.Kind == eventtime.Session {
		return p.fireSessions(ctx, readCtx, part, gen, inst, pos, assignment, bound, ch)
	}
	var from []byte
	for {
		due, err := p.state.scanDue(part, from, bound, p.cfg.BatchSize)
		if err != nil || len(due) == 0 {
			return false, err
		}
		from = append(bytes.Clone(due[len(due)-1]), 0) // the next key after the last
		for len(due) > 0 {
			win, _, ok := decodeWindowKey(due[0])
			if !ok {
				return false, fmt.Errorf("state key %x is not window-scoped (%d bytes): the pipeline's state was written without windows; "+
					"run windows under another pipeline name", due[0], len(due[0]))
			}
			n := 1
			for n < len(due) && bytes.HasPrefix(due[n], due[0][:windowPrefixSize]) {
				n++
			}
			keys := make([][]byte, n)
			for i, k := range due[:n] {
				keys[i] = k[windowPrefixSize:]
			}
			due = due[n:]
		closeAgain: // again when a live retry changed state meanwhile
			epoch := p.stateEpochs[part].Load()
			w := &work{part: part, gen: gen, pos: pos, assignment: assignment, win: fixedWindowCall(win)}
			if err := p.closeWindow(ctx, w, inst, keys); err != nil {
				return false, err
			}
			w.win = nil
			stopped, err := p.handOver(ctx, readCtx, w, 0, ch, epoch)
			if errors.Is(err, errStaleState) {
				goto closeAgain
			}
			if stopped || err != nil {
				return stopped, err
			}
		}
	}
}

// closeWindow calls helios_window_close for w.win over keys and adds the
// results and the deletion of the keys' state to w. Keys the operator
// fails as retryable are closed again like retried records (MaxRetries,
// RetryBackoff). When a call makes the plugin fail (a trap, the deadline,
// ...) and there is a dead-letter queue, its keys are closed one at a
// time. A key whose close fails for good is dead-lettered with its state
// and window (window_dlq.go; its state is freed all the same); without a
// dead-letter queue the pipeline stops, the window's state kept for the
// next run.
func (p *Pipeline) closeWindow(ctx context.Context, w *work, inst *host.Instance, keys [][]byte) error {
	win := w.win.win
	recs := make([]abi.Record, len(keys))
	for i, k := range keys {
		recs[i] = abi.Record{Key: k, Partition: w.part, Timestamp: int64(win.End) - 1, ID: closeRecordID(w.part, w.win.scope, k)}
	}
	dead := len(w.dead)
	if err := p.closeKeys(ctx, w, inst, recs); err != nil {
		return err
	}
	if err := p.retryFailed(ctx, w, func(group []abi.Record) error { return p.closeKeys(ctx, w, inst, group) }); err != nil {
		if re := (*RecordError)(nil); errors.As(err, &re) { // still failing, no dead-letter queue
			return fmt.Errorf("%s partition %d: closing window %s: %w; its state is kept and the close is retried by the next run",
				p.cfg.Source.Identity(), w.part, win, err)
		}
		return err
	}
	// Every dead letter of this close is a key's: it keeps what closing
	// the key again needs, read before the deletion below.
	for i := dead; i < len(w.dead); i++ {
		if err := p.keepCloseState(&w.dead[i], w, w.dead[i].Key); err != nil {
			return err
		}
	}
	del := p.state.NewWriteSet(w.part)
	st := newScopedState(del, w.win.scope)
	for _, k := range keys {
		if err := st.Delete(k); err != nil {
			return err
		}
	}
	w.ws = append(w.ws, del)
	return nil
}

// closeKeys closes recs (close records of w.win's keys) with one call,
// or, when the call makes the plugin fail and there is a dead-letter
// queue, one call per key, dead-lettering each key that fails alone.
func (p *Pipeline) closeKeys(ctx context.Context, w *work, inst *host.Instance, recs []abi.Record) error {
	win := w.win.win
	failed := func(n int, err error) error {
		return fmt.Errorf("%s partition %d: closing window %s (%d keys): %w; its state is kept and the close is retried by the next run",
			p.cfg.Source.Identity(), w.part, win, n, err)
	}
	err := p.closeCall(ctx, w, inst, recs)
	if err == nil {
		return nil
	}
	if p.dlq == nil || !isolatable(err) {
		return failed(len(recs), err)
	}
	p.cfg.Logger.Warn("closing a window made the plugin fail: closing its keys one at a time", "pipeline", p.cfg.Name,
		"partition", w.part, "window", win.String(), "keys", len(recs), "error", err)
	for i := range recs {
		e := p.closeCall(ctx, w, inst, recs[i:i+1])
		switch {
		case e == nil:
		case isolatable(e):
			w.dead = append(w.dead, p.deadEntry(w, &recs[i], hostFailCode(e), fmt.Sprintf("closing window %s for key %q: %v", win, recs[i].Key, e)))
		default:
			return failed(1, e)
		}
	}
	return nil
}

// closeCall makes one helios_window_close call over recs and adds its
// results to w.
func (p *Pipeline) closeCall(ctx context.Context, w *work, inst *host.Instance, recs []abi.Record) error {
	ws := p.state.NewWriteSetAfter(w.part, w.ws)
	m, name, plugin := p.cfg.Metrics, p.cfg.Name, inst.Plugin().Name()
	start := time.Now()
	entries, err := inst.CloseWindow(ctx, recs, newScopedState(ws, w.win.scope), *p.windows.hostWindow(w.win.win))
	m.CallDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	m.PluginCalls.WithLabelValues(name, plugin).Inc()
	if err != nil {
		if isolatable(err) {
			m.PluginTraps.WithLabelValues(name, plugin, failKind(err)).Inc()
		}
		return err
	}
	return p.accept(w, recs, entries, ws)
}

// windowBound is the end bound of the windows of part that the committed
// watermark closes, and whether there is one.
func (p *Pipeline) windowBound(part uint32) (eventtime.Time, bool) {
	wm := p.clock.marks.Current()
	if wm == eventtime.NoWatermark {
		return 0, false
	}
	if wm == eventtime.EndOfTime {
		return wm, true
	}
	return eventtime.CloseBefore(wm, p.clock.late.AllowedLateness(part)), true
}
