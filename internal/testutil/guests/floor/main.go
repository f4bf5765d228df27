//go:build wasip1

// Command floor is the uppercase operator written against the ABI by hand
// in Go, without the SDK: no per-record structures, no interface or
// closure calls, no allocation after the first batch, no scheduler yield.
// BenchmarkUppercase's "go-floor" runs it: what Go's wasm backend costs
// for this operator with nothing else, the floor an SDK can approach.
package main

import (
	"encoding/binary"
	"unsafe"

	"github.com/heliosdb/helios-wasm/abi"
)

var (
	buffers = map[uintptr][]byte{} // handed to the host: kept alive
	out     []byte
)

func ptr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }

//go:wasmexport helios_abi_version
func abiVersion() uint32 { return abi.Version }

//go:wasmexport helios_alloc
func alloc(n uint32) uint32 {
	b := make([]byte, max(n, 1))
	buffers[uintptr(ptr(b))] = b
	return ptr(b)
}

//go:wasmexport helios_dealloc
func dealloc(p, _ uint32) { delete(buffers, uintptr(p)) }

//go:wasmexport helios_init
func initOperator(_, _ uint32) uint64 { return 0 }

//go:wasmexport helios_process
func process(p, n uint32) uint64 {
	in := unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
	if uint32(cap(out)) < max(n, abi.OutputHeaderSize) {
		// An output is never larger than its input: entry headers are
		// smaller than record headers, and headers are not copied.
		out = make([]byte, max(n, abi.OutputHeaderSize))
	}
	o := out[:cap(out)]
	le := binary.LittleEndian
	count := le.Uint32(in[abi.OffBatchCount:])
	r, w := abi.BatchHeaderSize, abi.OutputHeaderSize
	for i := range count {
		h := in[r : r+abi.RecordHeaderSize]
		kl, vl, hl := int(le.Uint32(h[abi.OffRecKeyLen:])), int(le.Uint32(h[abi.OffRecValueLen:])), int(le.Uint32(h[abi.OffRecHeadersLen:]))
		e := o[w : w+abi.EntryHeaderSize]
		le.PutUint32(e[abi.OffEntKind:], abi.EntryKindRecord)
		le.PutUint32(e[abi.OffEntInputIndex:], i)
		le.PutUint32(e[abi.OffEntKeyLen:], uint32(kl))
		le.PutUint32(e[abi.OffEntValueLen:], uint32(vl))
		le.PutUint32(e[abi.OffEntHeadersLen:], 0)
		le.PutUint32(e[abi.OffEntCode:], 0)
		le.PutUint64(e[abi.OffEntTimestamp:], le.Uint64(h[abi.OffRecTimestamp:]))
		d := r + abi.RecordHeaderSize
		w += abi.EntryHeaderSize
		w += copy(o[w:], in[d:d+kl])
		dst := o[w : w+vl]
		copy(dst, in[d+kl:d+kl+vl])
		for j, c := range dst { // the example's loop
			if c-'a' < 26 {
				dst[j] = c - ('a' - 'A')
			}
		}
		w += vl
		r = d + kl + vl + hl
	}
	le.PutUint32(o[abi.OffOutMagic:], abi.OutputMagic)
	le.PutUint32(o[abi.OffOutStatus:], abi.BatchOK)
	le.PutUint32(o[abi.OffOutCount:], count)
	le.PutUint32(o[12:], 0)
	return abi.PackResult(ptr(o), uint32(w))
}

func main() {}
