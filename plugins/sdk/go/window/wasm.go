//go:build wasip1

package window

import (
	"runtime"
	"unsafe"

	"github.com/heliosdb/helios-wasm/abi"
)

//go:wasmimport helios_v1 window_get
func hostWindowGetRaw(bp unsafe.Pointer, bc uint32) int32

func hostWindowGet(d *[abi.WindowInfoSize]byte) int32 {
	return hostWindowGetRaw(unsafe.Pointer(&d[0]), uint32(len(d)))
}

//go:wasmexport helios_window_close
func exportWindowClose(ptr, size uint32) uint64 {
	var in []byte
	if size > 0 {
		in = unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), size)
	}
	out := closeBatch(in)
	runtime.Gosched() // let the GC's workers run, as helios_process does
	if len(out) == 0 {
		return 0
	}
	return abi.PackResult(uint32(uintptr(unsafe.Pointer(&out[0]))), uint32(len(out)))
}
