package host

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/heliosdb/helios-wasm/abi"
)

// wazeroEngine is the default engine: pure Go, no cgo.
type wazeroEngine struct {
	rt    wazero.Runtime
	cache wazero.CompilationCache

	wasiOnce sync.Once
	wasiErr  error
}

func newWazero(ctx context.Context, cfg Config) (wasmEngine, error) {
	// Runaway calls are interrupted through the tick import that
	// wasmbin.InstrumentLoops adds, not with WithCloseOnContextDone: that
	// exits to Go at every loop header and costs a Go guest ~7x.
	rc := wazero.NewRuntimeConfigCompiler()
	if cfg.interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithMemoryLimitPages(cfg.MemoryLimitMiB * 16) // 64 KiB pages
	e := &wazeroEngine{}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", cfg.CacheDir, err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", cfg.CacheDir, err)
		}
		e.cache = c
		rc = rc.WithCompilationCache(c)
	}
	e.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	for mod, funcs := range map[string][]hostFunc{abi.InternalModule: internalFuncs, abi.HostModule: hostFuncs} {
		b := e.rt.NewHostModuleBuilder(mod)
		for _, f := range funcs {
			b.NewFunctionBuilder().WithGoModuleFunction(wazeroHostFunc(f.fn), f.params, f.results).Export(f.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			e.close(ctx)
			return nil, err
		}
	}
	return e, nil
}

// wazeroHostFunc adapts a host function; wazero turns its panics into call
// errors.
func wazeroHostFunc(fn hostFn) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		fn(ctx, callerOf(ctx), mod.Memory(), stack)
	}
}

func (e *wazeroEngine) close(ctx context.Context) error {
	err := e.rt.Close(ctx)
	if e.cache != nil {
		if cerr := e.cache.Close(ctx); err == nil {
			err = cerr
		}
	}
	return err
}

// wasi instantiates WASI preview 1 on first use: modules that do not import it
// never see it. Its clocks and random source are configured per instance.
func (e *wazeroEngine) wasi(ctx context.Context) error {
	e.wasiOnce.Do(func() {
		_, e.wasiErr = wasi_snapshot_preview1.Instantiate(ctx, e.rt)
	})
	return e.wasiErr
}

func (e *wazeroEngine) hasWASI(ctx context.Context, name string) (bool, error) {
	if err := e.wasi(ctx); err != nil {
		return false, err
	}
	_, ok := e.rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()[name]
	return ok, nil
}

func (e *wazeroEngine) compile(ctx context.Context, wasm []byte) (compiledModule, error) {
	c, err := e.rt.CompileModule(ctx, wasm)
	if err != nil {
		// wazero's "min|max|capacity N pages (...) over limit of M pages":
		// not any error that names memory and limits (a 64-bit memory's is
		// "section memory: invalid byte for limits").
		if strings.Contains(err.Error(), "pages") && strings.Contains(err.Error(), "over limit of") {
			return nil, kindError{ErrMemoryTooLarge, err}
		}
		if strings.Contains(err.Error(), "as feature") {
			err = fmt.Errorf("%w (abi.md, section WebAssembly features, lists the features the host runs)", err)
		}
		return nil, err
	}
	return wazeroCompiled{c}, nil
}

func (e *wazeroEngine) instantiate(ctx context.Context, c compiledModule, inst *Instance) (liveModule, error) {
	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithStartFunctions().
		WithStderr(&inst.stderr).
		WithStdout(&inst.stderr).
		WithRandSource(&inst.det).
		WithWalltime(inst.det.walltime, 1).
		WithNanotime(inst.det.nanotime, 1)
	// No WithFS, WithEnv, WithArgs, WithSys*: the guest sees no filesystem,
	// environment, arguments, real clock or real randomness.
	mod, err := e.rt.InstantiateModule(ctx, c.(wazeroCompiled).c, mc)
	if err != nil {
		return nil, err
	}
	return &wazeroModule{mod: mod, fns: map[string]api.Function{}}, nil
}

type wazeroCompiled struct{ c wazero.CompiledModule }

func (c wazeroCompiled) exportedFuncs() map[string]funcDef {
	out := map[string]funcDef{}
	for name, def := range c.c.ExportedFunctions() {
		out[name] = funcDef{name: name, params: def.ParamTypes(), results: def.ResultTypes()}
	}
	return out
}

func (c wazeroCompiled) exportedMemories() map[string]memDef {
	out := map[string]memDef{}
	for name, m := range c.c.ExportedMemories() {
		max, hasMax := m.Max()
		out[name] = memDef{min: m.Min(), max: max, hasMax: hasMax}
	}
	return out
}

func (c wazeroCompiled) importedFuncs() []funcDef {
	var out []funcDef
	for _, def := range c.c.ImportedFunctions() {
		mod, name, _ := def.Import()
		out = append(out, funcDef{module: mod, name: name, params: def.ParamTypes(), results: def.ResultTypes()})
	}
	return out
}

func (c wazeroCompiled) close(ctx context.Context) error { return c.c.Close(ctx) }

type wazeroModule struct {
	mod api.Module
	fns map[string]api.Function // exports looked up so far
}

func (m *wazeroModule) fn(name string) api.Function {
	f, ok := m.fns[name]
	if !ok {
		f = m.mod.ExportedFunction(name)
		m.fns[name] = f
	}
	return f
}

func (m *wazeroModule) call(ctx context.Context, name string, stack []uint64) error {
	f := m.fn(name)
	if f == nil {
		return fmt.Errorf("the module has no export %s", name)
	}
	err := f.CallWithStack(ctx, stack)
	if exit, ok := err.(*sys.ExitError); ok {
		return exitError(exit.ExitCode())
	}
	return err
}

func (m *wazeroModule) hasExport(name string) bool { return m.fn(name) != nil }
func (m *wazeroModule) memory() guestMemory        { return m.mod.Memory() }
func (m *wazeroModule) close(ctx context.Context)  { m.mod.Close(ctx) }
