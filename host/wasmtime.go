//go:build wasmtime

package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/tetratelabs/wazero/api"

	"github.com/heliosdb/helios-wasm/abi"
)

func init() { engines[EngineWasmtime] = newWasmtime }

// wasmtimeVersion names the cache directory: serialized modules are only
// valid for the wasmtime that wrote them (Deserialize checks it too).
const wasmtimeVersion = "v39.0.1"

// wasmtimeEngine runs plugins with wasmtime (Cranelift) through cgo.
//
// Runaway calls are stopped as with wazero, by the tick import that
// instrument adds (see interrupt.go and RATIONALE.md, "Why the tick import
// and not epochs or fuel under wasmtime?"). Memory is capped per store by
// its limiter. WASI is the host's own deterministic preview 1
// (wasmtime_wasi.go), not wasmtime's, which reads the real clocks and
// random source.
type wasmtimeEngine struct {
	cfg      Config
	validate wasmEngine // wazero, which decides what abi.md allows
	engine   *wasmtime.Engine
	linker   *wasmtime.Linker
	cacheDir string // empty: no on-disk cache
}

func newWasmtime(ctx context.Context, cfg Config) (wasmEngine, error) {
	// wazero validates every module before wasmtime compiles it, so that
	// both engines accept the same modules (the WebAssembly features of
	// abi.md) and report the same load errors. Cached modules were
	// validated when they were cached.
	v, err := newWazero(ctx, Config{MemoryLimitMiB: cfg.MemoryLimitMiB, interpreter: true})
	if err != nil {
		return nil, err
	}
	c := wasmtime.NewConfig()
	// The features abi.md allows, as wazero runs them; the others refused.
	c.SetWasmThreads(false)
	c.SetWasmMultiMemory(false)
	c.SetWasmMemory64(false)
	c.SetWasmTailCall(false)
	c.SetWasmRelaxedSIMD(false)
	c.SetWasmGC(false)
	c.SetWasmFunctionReferences(false)
	c.SetWasmWideArithmetic(false)
	c.SetCraneliftOptLevel(wasmtime.OptLevelSpeed)
	e := &wasmtimeEngine{cfg: cfg, validate: v, engine: wasmtime.NewEngineWithConfig(c)}
	if cfg.CacheDir != "" {
		e.cacheDir = filepath.Join(cfg.CacheDir, fmt.Sprintf("wasmtime-%s-%s-%s", wasmtimeVersion, runtime.GOARCH, runtime.GOOS))
		if err := os.MkdirAll(e.cacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", cfg.CacheDir, err)
		}
	}
	e.linker = wasmtime.NewLinker(e.engine)
	for mod, funcs := range map[string][]hostFunc{abi.InternalModule: internalFuncs, abi.HostModule: hostFuncs, wasiModule: wasiFuncs} {
		for _, f := range funcs {
			if err := e.linker.FuncNew(mod, f.name, wasmtimeFuncType(f.params, f.results), wasmtimeHostFunc(f)); err != nil {
				return nil, fmt.Errorf("host: wasmtime: defining %s.%s: %w", mod, f.name, err)
			}
		}
	}
	return e, nil
}

func (e *wasmtimeEngine) close(ctx context.Context) error {
	e.linker.Close()
	e.engine.Close()
	return e.validate.close(ctx)
}

func (e *wasmtimeEngine) hasWASI(_ context.Context, name string) (bool, error) {
	for _, f := range wasiFuncs {
		if f.name == name {
			return true, nil
		}
	}
	return false, nil
}

// compile compiles wasm, or deserializes it from the cache: one file per
// module, named by the SHA-256 of the instrumented bytes, in a directory
// named by the wasmtime version and platform (as wazero keys its cache).
func (e *wasmtimeEngine) compile(ctx context.Context, wasm []byte) (compiledModule, error) {
	var path string
	if e.cacheDir != "" {
		sum := sha256.Sum256(wasm)
		path = filepath.Join(e.cacheDir, hex.EncodeToString(sum[:]))
		// Read, not mapped (NewModuleDeserializeFile): a file truncated
		// under a mapping kills the process with SIGBUS.
		if b, err := os.ReadFile(path); err == nil {
			if m, err := wasmtime.NewModuleDeserialize(e.engine, b); err == nil {
				return e.checked(m)
			}
		}
		// Missing or unreadable (another version, damaged): compile.
	}
	v, err := e.validate.compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	v.close(ctx)
	m, err := wasmtime.NewModule(e.engine, wasm)
	if err != nil {
		return nil, err
	}
	if path != "" {
		if b, err := m.Serialize(); err == nil {
			writeFileAtomic(path, b) // best effort, like wazero's cache
		}
	}
	return e.checked(m)
}

// checked refuses a module whose initial memory exceeds the limit, as wazero
// does at compile time (the store's limiter would refuse it at instantiation).
func (e *wasmtimeEngine) checked(m *wasmtime.Module) (compiledModule, error) {
	c := &wasmtimeCompiled{m: m}
	limit := uint64(e.cfg.MemoryLimitMiB) * 16
	for _, imp := range m.Imports() {
		if mt := imp.Type().MemoryType(); mt != nil && mt.Minimum() > limit {
			m.Close()
			return nil, kindError{ErrMemoryTooLarge, fmt.Errorf("min %d pages (%d Mi) over limit of %d pages", mt.Minimum(), mt.Minimum()/16, limit)}
		}
	}
	for _, exp := range m.Exports() {
		if mt := exp.Type().MemoryType(); mt != nil && mt.Minimum() > limit {
			m.Close()
			return nil, kindError{ErrMemoryTooLarge, fmt.Errorf("min %d pages (%d Mi) over limit of %d pages", mt.Minimum(), mt.Minimum()/16, limit)}
		}
	}
	return c, nil
}

func writeFileAtomic(path string, b []byte) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr == nil && cerr == nil {
		if os.Rename(tmp.Name(), path) == nil {
			return
		}
	}
	os.Remove(tmp.Name())
}

// wasmtimeStore is the data of an instance's store, which host functions
// reach through their caller.
type wasmtimeStore struct {
	inst *Instance
	ctx  context.Context  // of the call in progress
	exit *exitError       // set by proc_exit
	mem  *wasmtime.Memory // the module's exported memory, if any
}

func (e *wasmtimeEngine) instantiate(ctx context.Context, c compiledModule, inst *Instance) (liveModule, error) {
	data := &wasmtimeStore{inst: inst, ctx: ctx}
	store := wasmtime.NewStoreWithData(e.engine, data)
	store.Limiter(int64(e.cfg.MemoryLimitMiB)<<20, -1, -1, -1, -1)
	in, err := e.linker.Instantiate(store, c.(*wasmtimeCompiled).m)
	if err != nil {
		store.Close()
		return nil, err
	}
	m := &wasmtimeModule{store: store, data: data, inst: in, fns: map[string]*wasmtimeFunc{}}
	if ext := in.GetExport(store, "memory"); ext != nil && ext.Memory() != nil {
		m.mem = &wasmtimeMemory{mem: ext.Memory(), store: store}
		data.mem = m.mem.mem
	}
	return m, nil
}

type wasmtimeCompiled struct{ m *wasmtime.Module }

func valueTypes(vs []*wasmtime.ValType) []api.ValueType {
	out := make([]api.ValueType, len(vs))
	for i, v := range vs {
		switch v.Kind() {
		case wasmtime.KindI32:
			out[i] = api.ValueTypeI32
		case wasmtime.KindI64:
			out[i] = api.ValueTypeI64
		case wasmtime.KindF32:
			out[i] = api.ValueTypeF32
		case wasmtime.KindF64:
			out[i] = api.ValueTypeF64
		case wasmtime.KindExternref:
			out[i] = api.ValueTypeExternref
		case wasmtime.KindFuncref:
			out[i] = 0x70 // funcref
		default:
			out[i] = 0x7b // v128
		}
	}
	return out
}

func (c *wasmtimeCompiled) exportedFuncs() map[string]funcDef {
	out := map[string]funcDef{}
	for _, exp := range c.m.Exports() {
		if ft := exp.Type().FuncType(); ft != nil {
			out[exp.Name()] = funcDef{name: exp.Name(), params: valueTypes(ft.Params()), results: valueTypes(ft.Results())}
		}
	}
	return out
}

func (c *wasmtimeCompiled) exportedMemories() map[string]memDef {
	out := map[string]memDef{}
	for _, exp := range c.m.Exports() {
		if mt := exp.Type().MemoryType(); mt != nil {
			hasMax, max := mt.Maximum()
			out[exp.Name()] = memDef{min: uint32(mt.Minimum()), max: uint32(max), hasMax: hasMax}
		}
	}
	return out
}

func (c *wasmtimeCompiled) importedFuncs() []funcDef {
	var out []funcDef
	for _, imp := range c.m.Imports() {
		if ft := imp.Type().FuncType(); ft != nil {
			name := ""
			if imp.Name() != nil {
				name = *imp.Name()
			}
			out = append(out, funcDef{module: imp.Module(), name: name, params: valueTypes(ft.Params()), results: valueTypes(ft.Results())})
		}
	}
	return out
}

func (c *wasmtimeCompiled) close(context.Context) error {
	c.m.Close()
	return nil
}

type wasmtimeFunc struct {
	f      *wasmtime.Func
	params []api.ValueType
}

type wasmtimeModule struct {
	store *wasmtime.Store
	data  *wasmtimeStore
	inst  *wasmtime.Instance
	mem   *wasmtimeMemory
	fns   map[string]*wasmtimeFunc // exports looked up so far; nil: none
	args  []any
}

func (m *wasmtimeModule) fn(name string) *wasmtimeFunc {
	f, ok := m.fns[name]
	if !ok {
		if wf := m.inst.GetFunc(m.store, name); wf != nil {
			f = &wasmtimeFunc{f: wf, params: valueTypes(wf.Type(m.store).Params())}
		}
		m.fns[name] = f
	}
	return f
}

func (m *wasmtimeModule) hasExport(name string) bool { return m.fn(name) != nil }

func (m *wasmtimeModule) call(ctx context.Context, name string, stack []uint64) error {
	f := m.fn(name)
	if f == nil {
		return fmt.Errorf("the module has no export %s", name)
	}
	m.args = m.args[:0]
	for i, t := range f.params {
		switch t {
		case api.ValueTypeI32:
			m.args = append(m.args, int32(uint32(stack[i])))
		case api.ValueTypeI64:
			m.args = append(m.args, int64(stack[i]))
		default:
			return fmt.Errorf("export %s: parameter %d of type %s is not part of the ABI", name, i, api.ValueTypeName(t))
		}
	}
	m.data.ctx, m.data.exit = ctx, nil
	res, err := f.f.Call(m.store, m.args...)
	m.data.ctx = nil
	if err != nil {
		if m.data.exit != nil {
			return *m.data.exit
		}
		var trap *wasmtime.Trap
		if errors.As(err, &trap) {
			return trapError(trap)
		}
		return err
	}
	switch r := res.(type) {
	case int32:
		stack[0] = uint64(uint32(r))
	case int64:
		stack[0] = uint64(r)
	}
	return nil
}

// trapMessages describe wasmtime's trap codes, indexed by the C header's
// values (in v39 the Go constants after Interrupt are off by one: out of
// fuel is 12 in the header, 11 in Go).
var trapMessages = []string{
	"stack overflow", "out of bounds memory access", "unaligned atomic", "invalid table access",
	"invalid table access (null)", "indirect call type mismatch", "integer overflow", "integer divide by zero",
	"invalid conversion to integer", "unreachable", "interrupted", "always trap adapter", "out of fuel",
}

// trapError is a trap's cause in one line, as wazero words it: wasmtime's
// message carries a backtrace thousands of frames deep after a stack
// overflow.
func trapError(trap *wasmtime.Trap) error {
	if c := trap.Code(); c != nil {
		if int(*c) < len(trapMessages) {
			return fmt.Errorf("wasm error: %s", trapMessages[*c])
		}
		return fmt.Errorf("wasm error: trap code %d", *c)
	}
	first, _, _ := strings.Cut(trap.Message(), "\n")
	return errors.New(first)
}

func (m *wasmtimeModule) memory() guestMemory {
	if m.mem == nil {
		return noMemory{}
	}
	return m.mem
}

func (m *wasmtimeModule) close(context.Context) { m.store.Close() }

// wasmtimeMemory is a linear memory seen through a store or, inside a host
// function, through its caller.
type wasmtimeMemory struct {
	mem   *wasmtime.Memory
	store wasmtime.Storelike
}

func (w *wasmtimeMemory) Read(ptr, n uint32) ([]byte, bool) {
	data := w.mem.UnsafeData(w.store)
	if uint64(ptr)+uint64(n) > uint64(len(data)) {
		return nil, false
	}
	return data[ptr : ptr+n : ptr+n], true
}

func (w *wasmtimeMemory) Write(ptr uint32, b []byte) bool {
	data := w.mem.UnsafeData(w.store)
	if uint64(ptr)+uint64(len(b)) > uint64(len(data)) {
		return false
	}
	copy(data[ptr:], b)
	return true
}

func (w *wasmtimeMemory) Size() uint32 { return uint32(w.mem.DataSize(w.store)) }

// noMemory is the memory of a module that exports none (validate refuses
// those; this keeps the probe of a refused module safe).
type noMemory struct{}

func (noMemory) Read(_, n uint32) ([]byte, bool) { return nil, n == 0 }
func (noMemory) Write(uint32, []byte) bool       { return false }
func (noMemory) Size() uint32                    { return 0 }

func wasmtimeFuncType(params, results []api.ValueType) *wasmtime.FuncType {
	conv := func(ts []api.ValueType) []*wasmtime.ValType {
		out := make([]*wasmtime.ValType, len(ts))
		for i, t := range ts {
			if t == api.ValueTypeI64 {
				out[i] = wasmtime.NewValType(wasmtime.KindI64)
			} else {
				out[i] = wasmtime.NewValType(wasmtime.KindI32)
			}
		}
		return out
	}
	return wasmtime.NewFuncType(conv(params), conv(results))
}

// errInterruptedTrap is the message of the trap that stops an interrupted
// call (classify reads the reason from the instance, not from it).
const errInterruptedTrap = "interrupted by the host"

// wasmtimeHostFunc adapts a host function. wasmtime-go re-panics a host
// function's panic in the caller; errInterrupted becomes a trap instead.
func wasmtimeHostFunc(f hostFunc) func(*wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	return func(caller *wasmtime.Caller, args []wasmtime.Val) (results []wasmtime.Val, trap *wasmtime.Trap) {
		data := caller.Data().(*wasmtimeStore)
		var stack [16]uint64
		for i, a := range args {
			if a.Kind() == wasmtime.KindI64 {
				stack[i] = uint64(a.I64())
			} else {
				stack[i] = uint64(uint32(a.I32()))
			}
		}
		var mem guestMemory = noMemory{}
		if data.mem != nil {
			mem = &wasmtimeMemory{mem: data.mem, store: caller}
		}
		defer func() {
			if r := recover(); r != nil {
				switch r := r.(type) {
				case errInterrupted:
					results, trap = nil, wasmtime.NewTrap(errInterruptedTrap)
				case exitError:
					data.exit = &r
					results, trap = nil, wasmtime.NewTrap(r.Error())
				default:
					panic(r)
				}
			}
		}()
		ctx := data.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		f.fn(ctx, data.inst, mem, stack[:max(len(args), len(f.results))])
		results = make([]wasmtime.Val, len(f.results))
		for i, t := range f.results {
			if t == api.ValueTypeI64 {
				results[i] = wasmtime.ValI64(int64(stack[i]))
			} else {
				results[i] = wasmtime.ValI32(int32(uint32(stack[i])))
			}
		}
		return results, nil
	}
}
