//go:build wasip1

package helios

import "unsafe"

//go:wasmimport helios_v1 log
func hostLog(level int32, ptr unsafe.Pointer, size uint32)

//go:wasmimport helios_v1 state_get
func hostStateGet(kp unsafe.Pointer, kl uint32, bp unsafe.Pointer, bc uint32) int32

//go:wasmimport helios_v1 state_put
func hostStatePut(kp unsafe.Pointer, kl uint32, vp unsafe.Pointer, vl uint32) int32

//go:wasmimport helios_v1 state_delete
func hostStateDelete(kp unsafe.Pointer, kl uint32) int32
