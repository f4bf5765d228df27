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
// A schema migrator (abi.md, "Schema migrators") registers its function with
// HandleMigrate instead: helios_migrate calls it with each record at schema
// version N, and it emits the record at version N+1.
//
// The SDK implements ABI v1 (see abi.md): it exports helios_abi_version,
// helios_alloc, helios_dealloc, helios_init, helios_process and
// helios_migrate (which fails every batch without HandleMigrate), decodes each
// batch without per-record allocation, and yields to the Go scheduler at the
// end of every export so that the guest's garbage collector keeps up over
// long runs.
package helios
