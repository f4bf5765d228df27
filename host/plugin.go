package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/heliosdb/helios-wasm/abi"
)

// Plugin is a compiled and validated operator module.
type Plugin struct {
	e        *Engine
	name     string
	hash     string
	size     int
	wasm     []byte // the original module, for versioning and rollback
	compiled compiledModule
	usesWASI bool
	info     Info
	closed   sync.Once
}

// FuncInfo describes one imported or exported function.
type FuncInfo struct {
	Module string // import module; empty for exports
	Name   string
	Params []string
	Result []string
}

func (f FuncInfo) String() string {
	n := f.Name
	if f.Module != "" {
		n = f.Module + "." + n
	}
	return fmt.Sprintf("%s(%s) -> (%s)", n, strings.Join(f.Params, ", "), strings.Join(f.Result, ", "))
}

// Info is what `helios-wasm plugin inspect` shows about a plugin.
type Info struct {
	Name       string
	Hash       string // SHA-256 of the module bytes, hex
	Size       int
	ABIVersion uint32
	Exports    []FuncInfo
	Imports    []FuncInfo
	Memory     string // e.g. "min 17 pages, max none"
	Migrator   bool   // exports helios_migrate
	// WindowClose: exports helios_window_close, so it can run under windows
	WindowClose bool
}

// Name is the plugin's name (as given to Compile).
func (p *Plugin) Name() string { return p.name }

// Hash is the hex SHA-256 of the module bytes. Commits record it so that the
// output says which plugin version produced it.
func (p *Plugin) Hash() string { return p.hash }

// ShortHash is the first 12 hex digits of Hash.
func (p *Plugin) ShortHash() string { return p.hash[:12] }

// Info describes the plugin.
func (p *Plugin) Info() Info { return p.info }

// Bytes returns the module as it was given to Compile (do not modify it).
func (p *Plugin) Bytes() []byte { return p.wasm }

// Engine returns the engine that compiled the plugin.
func (p *Plugin) Engine() *Engine { return p.e }

// Close releases the compiled code. Instances must be closed first. Closing
// again does nothing.
func (p *Plugin) Close(ctx context.Context) (err error) {
	p.closed.Do(func() {
		p.e.live.Add(-1)
		err = p.compiled.close(ctx)
	})
	return err
}

type signature struct{ params, results []api.ValueType }

var i64 = api.ValueTypeI64

var exportSigs = map[string]signature{
	abi.ExportABIVersion:  {nil, []api.ValueType{i32}},
	abi.ExportAlloc:       {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportDealloc:     {[]api.ValueType{i32, i32}, nil},
	abi.ExportInit:        {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	abi.ExportProcess:     {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	abi.ExportMigrate:     {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	abi.ExportWindowClose: {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	abi.ExportInitialize:  {nil, nil},
}

var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// Compile compiles wasm (using the on-disk cache), validates its exports,
// imports and ABI version, and returns the plugin. name identifies the plugin
// in errors and logs (usually its file name).
func (e *Engine) Compile(ctx context.Context, name string, wasm []byte) (*Plugin, error) {
	sum := sha256.Sum256(wasm)
	p := &Plugin{e: e, name: name, hash: hex.EncodeToString(sum[:]), size: len(wasm), wasm: wasm}
	fail := func(kind, detail error) error {
		return &PluginError{Plugin: name, Hash: p.ShortHash(), Op: "compile", Partition: -1, Kind: kind, Detail: detail}
	}
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return nil, fail(ErrNotWasm, fmt.Errorf("the file does not start with the \\0asm magic (got %q); build the operator for a wasm target", head(wasm)))
	}
	instrumented, err := instrument(wasm)
	if err != nil {
		return nil, fail(ErrInvalidModule, fmt.Errorf("cannot parse the code: %w", err))
	}
	compiled, err := e.wasm.compile(ctx, instrumented)
	if err != nil {
		if k, ok := err.(kindError); ok {
			return nil, fail(k.kind, k.detail)
		}
		return nil, fail(ErrInvalidModule, err)
	}
	p.compiled = compiled
	if err := p.validate(ctx); err != nil {
		compiled.close(ctx)
		return nil, fail(err.(kindError).kind, err.(kindError).detail)
	}
	v, err := p.probeVersion(ctx)
	if err != nil {
		compiled.close(ctx)
		var pe *PluginError
		if errors.As(err, &pe) {
			pe.Op = "compile"
			return nil, pe
		}
		return nil, fail(ErrInstantiate, err)
	}
	p.info.ABIVersion = v
	if v != abi.Version {
		compiled.close(ctx)
		return nil, fail(ErrABIVersion, fmt.Errorf("the module speaks ABI v%d, this host speaks v%d; rebuild it with an SDK for ABI v%d", v, abi.Version, abi.Version))
	}
	e.live.Add(1)
	return p, nil
}

type kindError struct{ kind, detail error }

func (k kindError) Error() string { return k.detail.Error() }

func head(b []byte) []byte { return b[:min(len(b), 4)] }

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}

func sameTypes(a, b []api.ValueType) bool { return bytes.Equal(a, b) }

// validate checks exports and imports against ABI v1 and fills p.info.
func (p *Plugin) validate(ctx context.Context) error {
	c := p.compiled
	p.info = Info{Name: p.name, Hash: p.hash, Size: p.size}
	exports := c.exportedFuncs()
	var problems []string
	for _, name := range abi.RequiredExports {
		if _, ok := exports[name]; !ok {
			problems = append(problems, "missing export "+name)
		}
	}
	for name, def := range exports {
		if name == startExport {
			continue // added by instrument
		}
		p.info.Exports = append(p.info.Exports, FuncInfo{Name: name, Params: typeNames(def.params), Result: typeNames(def.results)})
		want, known := exportSigs[name]
		if !known {
			continue
		}
		if !sameTypes(def.params, want.params) || !sameTypes(def.results, want.results) {
			problems = append(problems, fmt.Sprintf("export %s has type (%s) -> (%s), want (%s) -> (%s)", name,
				strings.Join(typeNames(def.params), ","), strings.Join(typeNames(def.results), ","),
				strings.Join(typeNames(want.params), ","), strings.Join(typeNames(want.results), ",")))
		}
	}
	sort.Slice(p.info.Exports, func(i, j int) bool { return p.info.Exports[i].Name < p.info.Exports[j].Name })
	_, p.info.Migrator = exports[abi.ExportMigrate]
	_, p.info.WindowClose = exports[abi.ExportWindowClose]
	mems := c.exportedMemories()
	if m, ok := mems["memory"]; ok {
		p.info.Memory = fmt.Sprintf("min %d pages (%d KiB)", m.min, m.min*64)
		if m.hasMax {
			p.info.Memory += fmt.Sprintf(", max %d pages", m.max)
		}
	} else {
		problems = append(problems, `missing exported memory "memory"`)
	}
	if len(problems) > 0 {
		return kindError{ErrMissingExport, fmt.Errorf("%s (see abi.md, section Exports)", strings.Join(problems, "; "))}
	}

	var unknown []string
	for _, def := range c.importedFuncs() {
		mod, name := def.module, def.name
		if mod == abi.InternalModule {
			continue // added by instrument
		}
		p.info.Imports = append(p.info.Imports, FuncInfo{Module: mod, Name: name, Params: typeNames(def.params), Result: typeNames(def.results)})
		switch mod {
		case abi.HostModule:
			sig := fmt.Sprintf("%s.%s(%s) -> (%s)", mod, name, strings.Join(typeNames(def.params), ","), strings.Join(typeNames(def.results), ","))
			switch want, known := hostFuncSig(name); {
			case !known:
				unknown = append(unknown, sig)
			case !sameTypes(def.params, want.params) || !sameTypes(def.results, want.results):
				unknown = append(unknown, fmt.Sprintf("%s has the wrong signature, want (%s) -> (%s)", sig,
					strings.Join(typeNames(want.params), ","), strings.Join(typeNames(want.results), ",")))
			}
		case "wasi_snapshot_preview1":
			p.usesWASI = true
		default:
			unknown = append(unknown, mod+"."+name)
		}
	}
	for _, f := range p.info.Imports {
		if f.Module == "wasi_snapshot_preview1" {
			ok, err := p.e.wasm.hasWASI(ctx, f.Name)
			if err != nil {
				return kindError{ErrInstantiate, err}
			}
			if !ok {
				unknown = append(unknown, f.Module+"."+f.Name)
			}
		}
	}
	if len(unknown) > 0 {
		return kindError{ErrUnknownImport, fmt.Errorf("%s; the host provides %s.{log,state_get,state_put,state_delete,config_get,window_get} and wasi_snapshot_preview1", strings.Join(unknown, ", "), abi.HostModule)}
	}
	return nil
}

// hostFuncSig is the signature of the helios_v1 function name, if it exists.
func hostFuncSig(name string) (signature, bool) {
	for _, f := range hostFuncs {
		if f.name == name {
			return signature{f.params, f.results}, true
		}
	}
	return signature{}, false
}

// probeVersion instantiates the module once to read helios_abi_version.
func (p *Plugin) probeVersion(ctx context.Context) (uint32, error) {
	inst := &Instance{p: p, cfg: InstanceConfig{Partition: -1}, logger: p.e.cfg.Logger}
	inst.deadline = time.Now().Add(p.e.cfg.InitTimeout)
	if err := inst.instantiate(ctx); err != nil {
		return 0, err
	}
	defer inst.Close(ctx)
	if err := inst.call(ctx, abi.ExportABIVersion, inst.stack[:]); err != nil {
		return 0, inst.classify("instantiate", err)
	}
	return api.DecodeU32(inst.stack[0]), nil
}
