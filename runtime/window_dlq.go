package runtime

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/heliosdb/helios-wasm/host"
)

// A window close that fails for one key alone is dead-lettered with what
// running it again needs, since the close frees the key's state: the
// state as the close would have read it (the entry's value) and the window
// (the entry's metadata). `dlq retry` puts the state back under the
// window's scope for one helios_window_close call, which frees it again.

// The metadata of a window close's dead letter.
const (
	metaWindowStart   = "window_start"   // Unix milliseconds
	metaWindowEnd     = "window_end"     // Unix milliseconds, exclusive
	metaWindowScope   = "window_scope"   // hex: the state's scope (the window's bounds, or a session's identity)
	metaWindowUpdates = "window_updates" // "true" when the pipeline emits updates
)

// keepCloseState makes d, the dead letter of w's close call for key, carry
// the key's state and w's window.
func (p *Pipeline) keepCloseState(d *DLQEntry, w *work, key []byte) error {
	v, found, err := newScopedState(p.state.NewWriteSetAfter(w.part, w.ws), w.win.scope).Get(key)
	if err != nil {
		return fmt.Errorf("reading the state of the window close that failed for key %q: %w", key, err)
	}
	d.Value = nil // absent state
	if found {
		d.Value = append([]byte{}, v...)
	}
	d.Metadata = map[string]string{
		metaWindowStart: strconv.FormatInt(int64(w.win.win.Start), 10),
		metaWindowEnd:   strconv.FormatInt(int64(w.win.win.End), 10),
		metaWindowScope: hex.EncodeToString(w.win.scope),
	}
	if p.windows.updates {
		d.Metadata[metaWindowUpdates] = "true"
	}
	return nil
}

// deadClose returns the window close that dead letter d records; ok is
// false for the dead letter of a record.
func deadClose(d *DLQEntry) (win host.Window, scope []byte, ok bool, err error) {
	s, ok := d.Metadata[metaWindowScope]
	if !ok {
		return win, nil, false, nil
	}
	scope, err = hex.DecodeString(s)
	start, serr := strconv.ParseInt(d.Metadata[metaWindowStart], 10, 64)
	end, eerr := strconv.ParseInt(d.Metadata[metaWindowEnd], 10, 64)
	if err := errors.Join(err, serr, eerr); err != nil {
		return win, nil, true, fmt.Errorf("dead-letter entry %d: the window of its close: %w", d.ID, err)
	}
	return host.Window{Start: start, End: end, Updates: d.Metadata[metaWindowUpdates] == "true"}, scope, true, nil
}
