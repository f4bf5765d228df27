//go:build !wasip1

package helios

import (
	"log"
	"unsafe"

	"github.com/heliosdb/helios-wasm/abi"
)

// Outside WebAssembly the SDK runs the operator in-process against an
// in-memory state map, so that operators can be unit-tested and benchmarked
// natively with `go test`. Native state writes apply immediately (there is no
// transaction to commit them with).

var nativeState = map[string][]byte{}

// NativeInit passes cfg to the registered operator as helios_init would. It
// also clears the native state.
func NativeInit(cfg []abi.Header) error {
	nativeState = map[string][]byte{}
	if msg := initConfig(abi.AppendKVBlock(nil, cfg)); msg != "" {
		return &initError{msg}
	}
	return nil
}

type initError struct{ msg string }

func (e *initError) Error() string { return e.msg }

// NativeProcess runs the registered operator over an encoded batch and
// returns the encoded output, exactly as helios_process does in WebAssembly.
// The result is valid until the next call.
func NativeProcess(batch []byte) []byte { return processBatch(batch) }

// NativeMigrate runs the registered migrator over an encoded batch, as
// helios_migrate does in WebAssembly. The result is valid until the next call.
func NativeMigrate(batch []byte) []byte { return migrateBatch(batch) }

// NativeState returns the native state map (key -> value).
func NativeState() map[string][]byte { return nativeState }

func bytesAt(p unsafe.Pointer, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

func hostLog(level int32, p unsafe.Pointer, n uint32) {
	log.Printf("guest log level=%d: %s", level, bytesAt(p, n))
}

func hostStateGet(kp unsafe.Pointer, kl uint32, bp unsafe.Pointer, bc uint32) int32 {
	if !inBatch {
		return abi.StatusNotAllowed
	}
	v, ok := nativeState[string(bytesAt(kp, kl))]
	if !ok {
		return abi.StatusNotFound
	}
	if uint32(len(v)) <= bc {
		copy(bytesAt(bp, bc), v)
	}
	return int32(len(v))
}

func hostStatePut(kp unsafe.Pointer, kl uint32, vp unsafe.Pointer, vl uint32) int32 {
	if !inBatch {
		return abi.StatusNotAllowed
	}
	if kl > abi.MaxStateKeyLen || vl > abi.MaxStateValueLen {
		return abi.StatusTooLarge
	}
	nativeState[string(bytesAt(kp, kl))] = append([]byte(nil), bytesAt(vp, vl)...)
	return abi.StatusOK
}

func hostStateDelete(kp unsafe.Pointer, kl uint32) int32 {
	if !inBatch {
		return abi.StatusNotAllowed
	}
	delete(nativeState, string(bytesAt(kp, kl)))
	return abi.StatusOK
}
