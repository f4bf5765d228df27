package host

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Config configures an Engine. The zero value is usable: every field has a
// documented default.
type Config struct {
	// Engine is the WebAssembly engine: EngineWazero (default: pure Go, in
	// every build) or EngineWasmtime (only in builds with the wasmtime tag,
	// which need cgo).
	Engine string
	// CacheDir holds compiled machine code between runs (a Go guest takes
	// ~0.5 s to compile, ~26 ms from the cache). Empty: no on-disk cache.
	CacheDir string
	// MemoryLimitMiB caps each instance's linear memory. Default 128.
	MemoryLimitMiB uint32
	// BatchTimeout interrupts a helios_process call that runs longer
	// (an infinite loop). Default 10s.
	BatchTimeout time.Duration
	// InitTimeout bounds starting an instance: the module's start function,
	// _initialize and helios_init together (plugin validation, swaps and
	// restarts after a trap included). Default 10s.
	InitTimeout time.Duration
	// MaxOutputBytes fails a batch whose output buffer is larger than this
	// (ErrOutputLimit). Default 256 MiB.
	MaxOutputBytes uint32
	// MaxOutputsPerBatch fails a batch whose output holds more entries
	// (ErrOutputLimit), before the host decodes any: each costs the host
	// memory however small it is. Default 1,000,000.
	MaxOutputsPerBatch uint32
	// MaxStateBytesPerBatch fails a batch as soon as its state writes (key
	// and value bytes of every state_put, key bytes of every state_delete)
	// add up to more (ErrStateLimit): the host keeps a batch's writes until
	// it commits. Default 64 MiB.
	MaxStateBytesPerBatch uint64
	// Logger receives guest log lines and captured guest stderr.
	// Default: discard.
	Logger *slog.Logger

	interpreter bool // wazero: interpret, do not compile (validation only)
}

const (
	DefaultMemoryLimitMiB        = 128
	DefaultBatchTimeout          = 10 * time.Second
	DefaultInitTimeout           = 10 * time.Second
	DefaultMaxOutputBytes        = 256 << 20
	DefaultMaxOutputsPerBatch    = 1_000_000
	DefaultMaxStateBytesPerBatch = 64 << 20
	maxMemoryLimitMiB            = 4096 // the wasm32 address space
)

// withDefaults validates c and fills in defaults, reporting every problem.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Engine == "" {
		c.Engine = EngineWazero
	}
	if _, ok := engines[c.Engine]; !ok {
		if c.Engine == EngineWasmtime {
			errs = append(errs, fmt.Errorf("host: engine %q is not in this build: rebuild with `go build -tags wasmtime` (it needs cgo and a C compiler)", c.Engine))
		} else {
			errs = append(errs, fmt.Errorf("host: unknown engine %q; this build has %s", c.Engine, strings.Join(Engines(), ", ")))
		}
	}
	if c.MemoryLimitMiB == 0 {
		c.MemoryLimitMiB = DefaultMemoryLimitMiB
	}
	if c.MemoryLimitMiB > maxMemoryLimitMiB {
		errs = append(errs, fmt.Errorf("host: MemoryLimitMiB %d exceeds the wasm32 maximum of %d", c.MemoryLimitMiB, maxMemoryLimitMiB))
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.BatchTimeout < 0 {
		errs = append(errs, fmt.Errorf("host: BatchTimeout %v is negative", c.BatchTimeout))
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.InitTimeout < 0 {
		errs = append(errs, fmt.Errorf("host: InitTimeout %v is negative", c.InitTimeout))
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MaxOutputsPerBatch == 0 {
		c.MaxOutputsPerBatch = DefaultMaxOutputsPerBatch
	}
	if c.MaxStateBytesPerBatch == 0 {
		c.MaxStateBytesPerBatch = DefaultMaxStateBytesPerBatch
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, errors.Join(errs...)
}
