package host

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Config configures an Engine. The zero value is usable: every field has a
// documented default.
type Config struct {
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
	// MaxOutputBytes refuses an output buffer larger than this. Default 256 MiB.
	MaxOutputBytes uint32
	// Logger receives guest log lines and captured guest stderr.
	// Default: discard.
	Logger *slog.Logger
}

const (
	DefaultMemoryLimitMiB = 128
	DefaultBatchTimeout   = 10 * time.Second
	DefaultInitTimeout    = 10 * time.Second
	defaultMaxOutput      = 256 << 20
	maxMemoryLimitMiB     = 4096 // the wasm32 address space
)

// withDefaults validates c and fills in defaults, reporting every problem.
func (c Config) withDefaults() (Config, error) {
	var errs []error
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
		c.MaxOutputBytes = defaultMaxOutput
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, errors.Join(errs...)
}
