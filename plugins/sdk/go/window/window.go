// Package window is the Go SDK's API for event-time window operators
// (abi.md, "Windows"). The host assigns records to windows, calls the
// operator once per window of a batch with its state scoped to that window,
// and calls helios_window_close (exported by this package) when a window
// closes. An aggregate is then two functions:
//
//	func init() {
//		window.Handle(window.Aggregate{
//			Add:    func(r *helios.Record, w *window.Window) ([]byte, error) { /* read, update, write the key's state */ },
//			Result: func(key []byte, w *window.Window, out *helios.Emitter) error { /* emit the key's result from its state */ },
//		})
//	}
//
// State calls (helios.StateGet, StatePut, StateDelete) inside Add and
// Result reach the current window's state only; keep one state entry per
// key (its accumulator): Result is called once per state key of a closing
// window. Importing this package adds the helios_window_close export and
// the window_get import to the module.
package window

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
	"github.com/heliosdb/helios-wasm/plugins/sdk/go/internal/hook"
)

// Window is the event-time window of the current operator call.
type Window struct {
	Start, End     time.Time // [Start, End), UTC
	StartMs, EndMs int64     // the same in Unix milliseconds
	// Updates: the pipeline emits updates (--emit updates): the result
	// after every record, nothing at close.
	Updates bool
	// Closing: this is the window's close call (Result), not Add's.
	Closing bool
}

var (
	cur      Window
	curOK    bool
	curValid bool // cur was read during the current call
	desc     [abi.WindowInfoSize]byte
)

func init() { hook.OnBatch = func() { curValid = false } }

// Current returns the window of the current call, read from the host once
// per call; ok is false outside a window call (a pipeline without windows,
// or outside the operator).
func Current() (w Window, ok bool) {
	if !curValid {
		curValid = true
		curOK = hostWindowGet(&desc) == abi.WindowInfoSize
		if curOK {
			le := binary.LittleEndian
			start, end := int64(le.Uint64(desc[abi.OffWindowStart:])), int64(le.Uint64(desc[abi.OffWindowEnd:]))
			flags := le.Uint32(desc[abi.OffWindowFlags:])
			cur = Window{Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(end).UTC(), StartMs: start, EndMs: end,
				Updates: flags&abi.WindowFlagUpdates != 0, Closing: flags&abi.WindowFlagClosing != 0}
		}
	}
	return cur, curOK
}

// Aggregate is a window operator.
type Aggregate struct {
	// Add folds r into its key's accumulator in window w (state read and
	// written through the helios state API) and returns that key (the
	// state key), which Result gets under updates. An error fails r.
	Add func(r *helios.Record, w *Window) (key []byte, err error)
	// Result emits key's result in w from its state: when w closes (for
	// every state key of the window), or, under updates, after every Add.
	// An error fails the record the call is for.
	Result func(key []byte, w *Window, out *helios.Emitter) error
}

var agg Aggregate

// ErrNoWindow fails the records of a call made outside a window.
var ErrNoWindow = errors.New("window operator: this call has no window: run the pipeline with --window (and --event-time)")

// Handle registers a as the module's operator. Call it from an init
// function.
func Handle(a Aggregate) {
	agg = a
	helios.Handle(add)
}

func add(r *helios.Record, out *helios.Emitter) error {
	w, ok := Current()
	if !ok {
		return ErrNoWindow
	}
	key, err := agg.Add(r, &w)
	if err != nil || !w.Updates {
		return err
	}
	return agg.Result(key, &w, out)
}

// closeKey is the operator of a close call: each record stands for one
// state key of the closing window.
func closeKey(r *helios.Record, out *helios.Emitter) error {
	w, ok := Current()
	if !ok {
		return ErrNoWindow
	}
	if w.Updates {
		return nil // every result was emitted as it changed
	}
	return agg.Result(r.Key, &w, out)
}

// closeBatch runs helios_window_close over an encoded batch.
func closeBatch(in []byte) []byte { return hook.RunBatch(in, helios.Operator(closeKey)) }

// AppendTime appends a window bound in the examples' format: RFC 3339 in
// UTC, "2006-01-02T15:04:05Z", with ".000" milliseconds only when they are
// not zero, so every language's window examples print the same bytes.
func AppendTime(dst []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	if t.Nanosecond() == 0 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05Z")
	}
	return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
}
