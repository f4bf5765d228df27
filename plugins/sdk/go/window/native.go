//go:build !wasip1

package window

import (
	"encoding/binary"

	"github.com/heliosdb/helios-wasm/abi"
)

// Outside WebAssembly (unit tests with helios.NativeProcess), the window
// of the calls is set with NativeWindow.

var native struct {
	set bool
	d   [abi.WindowInfoSize]byte
}

// NativeWindow sets the window native calls are made for (flags: the
// abi.WindowFlag* bits); ok false: calls outside any window.
func NativeWindow(start, end int64, flags uint32, ok bool) {
	native.set = ok
	le := binary.LittleEndian
	le.PutUint64(native.d[abi.OffWindowStart:], uint64(start))
	le.PutUint64(native.d[abi.OffWindowEnd:], uint64(end))
	le.PutUint32(native.d[abi.OffWindowFlags:], flags)
}

// NativeClose runs helios_window_close over an encoded batch, as the host
// does in WebAssembly. The result is valid until the next call.
func NativeClose(batch []byte) []byte { return closeBatch(batch) }

func hostWindowGet(d *[abi.WindowInfoSize]byte) int32 {
	if !native.set {
		return abi.StatusNotFound
	}
	*d = native.d
	return abi.WindowInfoSize
}
