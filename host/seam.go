package host

import (
	"context"
	"fmt"
	"sort"

	"github.com/tetratelabs/wazero/api"
)

// The engine seam: everything the host needs from a WebAssembly engine.
// Types are given in the binary encoding of the spec (api.ValueTypeI32...),
// whatever the engine. Each engine lives in its own file (wazero.go, and
// wasmtime.go behind the wasmtime build tag) and registers a constructor in
// engines.

// wasmEngine compiles and instantiates modules. It provides the helios_v1
// host functions (hostFuncs), the internal tick import and a deterministic
// wasi_snapshot_preview1 (no filesystem, environment or arguments; clocks and
// random bytes from the instance's determinism; stdout and stderr to its
// tailWriter).
type wasmEngine interface {
	// compile compiles an instrumented module. An error wrapped in a
	// kindError carries its sentinel; any other is ErrInvalidModule.
	compile(ctx context.Context, wasm []byte) (compiledModule, error)
	// hasWASI reports whether the engine's wasi_snapshot_preview1 provides
	// the function name.
	hasWASI(ctx context.Context, name string) (bool, error)
	// instantiate creates an instance of c for inst without running any
	// guest code (instrument turned the start function into an export).
	instantiate(ctx context.Context, c compiledModule, inst *Instance) (liveModule, error)
	close(ctx context.Context) error
}

// funcDef is an imported or exported function's name and type.
type funcDef struct {
	module, name    string // module: empty for exports
	params, results []api.ValueType
}

// memDef is an exported memory's limits, in 64 KiB pages.
type memDef struct {
	min, max uint32
	hasMax   bool
}

// compiledModule is a compiled module, ready to instantiate.
type compiledModule interface {
	exportedFuncs() map[string]funcDef
	exportedMemories() map[string]memDef
	importedFuncs() []funcDef
	close(ctx context.Context) error
}

// liveModule is an instantiated module.
type liveModule interface {
	// call calls the export name with its parameters in stack; results
	// replace them. ctx carries the calling Instance (callerOf). A host
	// function that panics with errInterrupted stops the call with an error.
	call(ctx context.Context, name string, stack []uint64) error
	hasExport(name string) bool
	memory() guestMemory
	close(ctx context.Context)
}

// guestMemory is a module's linear memory. Views alias it: they are valid
// until the guest runs again.
type guestMemory interface {
	Read(ptr, n uint32) ([]byte, bool)
	Write(ptr uint32, b []byte) bool
	Size() uint32
}

// exitCoder is an error that says the guest called proc_exit.
type exitCoder interface{ ExitCode() uint32 }

// Engine names, for Config.Engine.
const (
	EngineWazero   = "wazero"
	EngineWasmtime = "wasmtime"
)

// engines holds the engines compiled into this binary.
var engines = map[string]func(ctx context.Context, cfg Config) (wasmEngine, error){
	EngineWazero: newWazero,
}

// Engines lists the engines compiled into this binary, sorted.
func Engines() []string {
	names := make([]string, 0, len(engines))
	for n := range engines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// newWasmEngine creates the engine cfg.Engine names (validated by
// withDefaults).
func newWasmEngine(ctx context.Context, cfg Config) (wasmEngine, error) {
	return engines[cfg.Engine](ctx, cfg)
}

// exitError is the call error of a guest that called proc_exit.
type exitError uint32

func (e exitError) Error() string    { return fmt.Sprintf("module closed with exit_code(%d)", uint32(e)) }
func (e exitError) ExitCode() uint32 { return uint32(e) }
