//go:build wasip1

package helios

import (
	"runtime"
	"unsafe"

	"github.com/heliosdb/helios-wasm/abi"
)

// live keeps every buffer handed to the host referenced, so that the guest's
// garbage collector does not free memory the host is about to write into.
var live = map[uintptr][]byte{}

//go:wasmexport helios_abi_version
func exportABIVersion() uint32 { return abi.Version }

//go:wasmexport helios_alloc
func exportAlloc(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	p := uintptr(unsafe.Pointer(&b[0]))
	live[p] = b
	return uint32(p)
}

//go:wasmexport helios_dealloc
func exportDealloc(ptr, _ uint32) {
	delete(live, uintptr(ptr))
}

//go:wasmexport helios_init
func exportInit(ptr, size uint32) uint64 {
	defer runtime.Gosched()
	if msg := initConfig(guestBytes(ptr, size)); msg != "" {
		return resultOf(keep([]byte(msg)))
	}
	return 0
}

//go:wasmexport helios_process
func exportProcess(ptr, size uint32) uint64 {
	out := processBatch(guestBytes(ptr, size))
	// In a single-threaded guest the GC's background workers only run when
	// the goroutine yields; without this the heap grows without bound.
	runtime.Gosched()
	return resultOf(out)
}

// helios_migrate is exported by every module built with the SDK; without a
// migrator (HandleMigrate) it fails every batch, and registration refuses
// the module.
//
//go:wasmexport helios_migrate
func exportMigrate(ptr, size uint32) uint64 {
	out := migrateBatch(guestBytes(ptr, size))
	runtime.Gosched()
	return resultOf(out)
}

func guestBytes(ptr, size uint32) []byte {
	if size == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), size)
}

var initMsg []byte

func keep(b []byte) []byte { initMsg = b; return b }

func resultOf(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return abi.PackResult(uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)))
}
