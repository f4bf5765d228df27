// Package host loads helios-wasm operator plugins with a WebAssembly engine
// (wazero by default; wasmtime in builds with the wasmtime tag) and runs
// them batch by batch through ABI v1 (see package abi and abi.md).
//
// An Engine owns a WebAssembly engine and its compilation cache. Compile validates
// a module once; a Plugin then creates Instances, one per partition, each
// used by one goroutine at a time. A trap, a deadline or a malformed output
// discards the instance's module; the next batch gets a fresh one.
package host

import (
	"context"
	"sync/atomic"
)

// Engine compiles and runs plugins. It is safe for concurrent use.
type Engine struct {
	cfg  Config
	wasm wasmEngine // the WebAssembly engine cfg.Engine names

	live atomic.Int64 // plugins compiled and not closed
}

// NewEngine creates an engine with the WebAssembly engine cfg.Engine names.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	w, err := newWasmEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, wasm: w}, nil
}

// LivePlugins is the number of plugins compiled by e and not closed yet
// (each holds its compiled code).
func (e *Engine) LivePlugins() int64 { return e.live.Load() }

// Config returns the engine's effective configuration (defaults applied).
func (e *Engine) Config() Config { return e.cfg }

// Close releases the runtime and every plugin compiled by it.
func (e *Engine) Close(ctx context.Context) error { return e.wasm.close(ctx) }
