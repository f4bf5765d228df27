// Package host loads helios-wasm operator plugins with wazero and runs them
// batch by batch through ABI v1 (see package abi and abi.md).
//
// An Engine owns a wazero runtime and its compilation cache. Compile validates
// a module once; a Plugin then creates Instances, one per partition, each
// used by one goroutine at a time. A trap, a deadline or a malformed output
// discards the instance's module; the next batch gets a fresh one.
package host

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Engine compiles and runs plugins. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	rt    wazero.Runtime
	cache wazero.CompilationCache

	wasiOnce sync.Once
	wasiErr  error
	live     atomic.Int64 // plugins compiled and not closed
}

// NewEngine creates an engine with the compiler backend.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Runaway calls are interrupted through the tick import that
	// wasmbin.InstrumentLoops adds, not with WithCloseOnContextDone: that
	// exits to Go at every loop header and costs a Go guest ~7x.
	rc := wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(cfg.MemoryLimitMiB * 16) // 64 KiB pages
	e := &Engine{cfg: cfg}
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
	if err := e.instantiateInternalModule(ctx); err != nil {
		e.Close(ctx)
		return nil, err
	}
	if err := e.instantiateHostModule(ctx); err != nil {
		e.Close(ctx)
		return nil, err
	}
	return e, nil
}

// LivePlugins is the number of plugins compiled by e and not closed yet
// (each holds its compiled code).
func (e *Engine) LivePlugins() int64 { return e.live.Load() }

// Config returns the engine's effective configuration (defaults applied).
func (e *Engine) Config() Config { return e.cfg }

// Close releases the runtime and every plugin compiled by it.
func (e *Engine) Close(ctx context.Context) error {
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
func (e *Engine) wasi(ctx context.Context) error {
	e.wasiOnce.Do(func() {
		_, e.wasiErr = wasi_snapshot_preview1.Instantiate(ctx, e.rt)
	})
	return e.wasiErr
}
