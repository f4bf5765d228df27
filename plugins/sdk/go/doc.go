// Package helios is the Go guest SDK for helios-wasm operators.
//
// An operator is an ordinary Go function over one record that emits zero or
// more output records or returns an error for that record:
//
//	package main
//
//	import helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
//
//	func init() {
//		helios.Handle(func(r *helios.Record, out *helios.Emitter) error {
//			out.Emit(r.Key, bytes.ToUpper(r.Value))
//			return nil
//		})
//	}
//
//	func main() {}
//
// Build it as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o op.wasm .
//
// The SDK implements ABI v1 (see abi.md): it exports helios_abi_version,
// helios_alloc, helios_dealloc, helios_init and helios_process, decodes each
// batch without per-record allocation, and yields to the Go scheduler at the
// end of every export so that the guest's garbage collector keeps up over
// long runs.
package helios
