package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/storage"
)

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"HELIOS_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"HELIOS_LOG_FORMAT"}},
	}
}

func setupLogging(c *cli.Context) error {
	if err := checkDataDirEnv(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return usagef("--log-format %q: want text or json", c.String("log-format"))
	}
	return nil
}

func dataDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "data-dir", Value: "./helios-data", Usage: "data directory (log, offsets, state, transaction records)", EnvVars: slices.Clone(dataDirEnvVars)}
}

// openDB opens the data directory for a short command. When a long-running
// process holds it and serves its socket, it returns storage.ErrLocked at
// once (the caller goes through that process); when another short command
// holds it, it waits for it.
func openDB(c *cli.Context) (*storage.DB, error) {
	db, err := storage.Open(c.String("data-dir"), storage.Options{Logger: slog.Default()})
	if !errors.Is(err, storage.ErrLocked) || socketAnswers(c) {
		return db, readOnlyHint(err)
	}
	db, err = storage.Open(c.String("data-dir"), storage.Options{Logger: slog.Default(), LockWait: lockWait})
	return db, readOnlyHint(err)
}

// readOnlyHint names the commands that still work when the data directory
// cannot be opened for writing (a full disk, a read-only copy).
func readOnlyHint(err error) error {
	if errors.Is(err, storage.ErrDiskFull) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w; topics, consume and dlq list|show|export still work on it", err)
	}
	return err
}

// openDBReadOnly opens the data directory for a command that only reads
// (topics, consume, dlq list/show/export): it writes nothing, so it works on
// a full disk and on a read-only copy of the directory. A directory that
// does not exist yet opens as openDB does (empty).
func openDBReadOnly(c *cli.Context) (*storage.DB, error) {
	o := storage.Options{Logger: slog.Default(), ReadOnly: true}
	db, err := storage.Open(c.String("data-dir"), o)
	if errors.Is(err, storage.ErrNoStore) {
		return openDB(c)
	}
	if !errors.Is(err, storage.ErrLocked) || socketAnswers(c) {
		return db, err
	}
	o.LockWait = lockWait
	return storage.Open(c.String("data-dir"), o)
}

// lockWait is how long a command waits for another command to release the
// data directory.
const lockWait = 5 * time.Second

// socketAnswers reports whether a process serves the data directory.
func socketAnswers(c *cli.Context) bool {
	dir, _ := filepath.Abs(c.String("data-dir"))
	conn, err := net.DialTimeout("unix", admin.SocketPath(dir), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// openDBWith opens the data directory for a long-running command (run,
// serve, replay), with memtables of memtableMiB (0: the storage default),
// waiting for short commands that hold it.
func openDBWith(c *cli.Context, memtableMiB int) (*storage.DB, error) {
	db, err := storage.Open(c.String("data-dir"), storage.Options{Logger: slog.Default(), MemTableSizeMiB: memtableMiB, LockWait: lockWait})
	return db, readOnlyHint(err)
}

func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "batch-timeout", Value: host.DefaultBatchTimeout, Usage: "interrupt an operator call that runs longer (an infinite loop)"},
		&cli.DurationFlag{Name: "init-timeout", Value: host.DefaultInitTimeout, Usage: "interrupt starting a plugin instance (start function, _initialize, helios_init) that runs longer"},
		&cli.UintFlag{Name: "max-outputs-per-batch", Value: host.DefaultMaxOutputsPerBatch, Usage: "fail a batch (dead-letter its record) whose output holds more entries"},
		&cli.UintFlag{Name: "max-output-bytes", Value: host.DefaultMaxOutputBytes, Usage: "fail a batch (dead-letter its record) whose output buffer is larger, in bytes"},
		&cli.Uint64Flag{Name: "max-state-bytes-per-batch", Value: host.DefaultMaxStateBytesPerBatch, Usage: "fail a batch (dead-letter its record) whose state writes add up to more bytes"},
		&cli.UintFlag{Name: "max-memory", Value: host.DefaultMemoryLimitMiB, Usage: "linear memory limit per plugin instance, in MiB"},
		&cli.StringFlag{Name: "cache-dir", Value: defaultCacheDir(), Usage: "compiled-plugin cache (empty: none)", EnvVars: []string{"HELIOS_CACHE_DIR"}},
		&cli.StringFlag{Name: "engine", Value: host.EngineWazero, Usage: "WebAssembly engine: wazero, or wasmtime in a binary built with -tags wasmtime", EnvVars: []string{flagEnvVar("engine")}},
	}
}

func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "helios-wasm", "wazero")
}

func newEngine(ctx context.Context, c *cli.Context) (*host.Engine, error) {
	for _, f := range []string{"max-outputs-per-batch", "max-output-bytes"} {
		if c.Uint(f) > math.MaxUint32 {
			return nil, usagef("--%s %d: at most %d", f, c.Uint(f), uint32(math.MaxUint32))
		}
	}
	if engine := c.String("engine"); !slices.Contains(host.Engines(), engine) {
		if engine == host.EngineWasmtime {
			return nil, usagef("%s wasmtime: this binary was built without the wasmtime engine; build it with `go build -tags wasmtime ./cmd/helios-wasm` (needs cgo and gcc; `make build-wasmtime`), or use --engine wazero", flagSource(c, "engine"))
		}
		return nil, usagef("%s %q: unknown engine; this binary has %s", flagSource(c, "engine"), engine, strings.Join(host.Engines(), ", "))
	}
	return host.NewEngine(ctx, host.Config{
		Engine:                c.String("engine"),
		CacheDir:              c.String("cache-dir"),
		MemoryLimitMiB:        uint32(c.Uint("max-memory")),
		BatchTimeout:          c.Duration("batch-timeout"),
		InitTimeout:           c.Duration("init-timeout"),
		MaxOutputsPerBatch:    uint32(c.Uint("max-outputs-per-batch")),
		MaxOutputBytes:        uint32(c.Uint("max-output-bytes")),
		MaxStateBytesPerBatch: c.Uint64("max-state-bytes-per-batch"),
		Logger:                slog.Default(),
	})
}

// loadPlugin reads and compiles a plugin file.
func loadPlugin(ctx context.Context, e *host.Engine, path string) (*host.Plugin, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("plugin: %v", err)
	}
	return e.Compile(ctx, filepath.Base(path), wasm)
}

// withPluginArg compiles the PLUGIN.wasm argument on a fresh engine (as
// `run` would) and calls fn with it; the engine is closed afterwards.
func withPluginArg(c *cli.Context, fn func(ctx context.Context, p *host.Plugin) error) error {
	ctx := context.Background()
	e, err := newEngine(ctx, c)
	if err != nil {
		return usageError{err}
	}
	defer e.Close(ctx)
	p, err := loadPlugin(ctx, e, c.Args().First())
	if err != nil {
		return err
	}
	return fn(ctx, p)
}

// parseConfig turns repeated --config key=value flags into the init config.
func parseConfig(pairs []string) ([]abi.Header, error) {
	var out []abi.Header
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--config %q: want key=value", p)
		}
		out = append(out, abi.Header{Key: []byte(k), Value: []byte(v)})
	}
	return out, nil
}

func requireArgs(c *cli.Context, n int, what string) error {
	if c.NArg() != n {
		return usagef("%s: want %s, got %d argument(s) (see --help)", c.Command.FullName(), what, c.NArg())
	}
	return nil
}

// runEnv is what run and replay need: an engine with the plugin compiled,
// and the data directory open.
type runEnv struct {
	engine *host.Engine
	plugin *host.Plugin
	db     *storage.DB
}

func (r *runEnv) close(ctx context.Context) {
	if r.db != nil {
		r.db.Close()
	}
	if r.engine != nil {
		r.engine.Close(ctx)
	}
}

// openRunEnv compiles the plugin at pluginPath, then opens the data
// directory (memtables of memtableMiB, 0: default); on error everything
// opened is closed again.
func openRunEnv(ctx context.Context, c *cli.Context, pluginPath string, memtableMiB int) (*runEnv, error) {
	r := &runEnv{}
	var err error
	if r.engine, err = newEngine(ctx, c); err != nil {
		return nil, usageError{err}
	}
	if r.plugin, err = loadPlugin(ctx, r.engine, pluginPath); err != nil {
		r.close(ctx)
		return nil, err
	}
	if r.db, err = openDBWith(c, memtableMiB); err != nil {
		r.close(ctx)
		return nil, err
	}
	return r, nil
}

// Flags shared by run and replay.
func pluginFlag() cli.Flag {
	return &cli.StringFlag{Name: "plugin", Aliases: []string{"p"}, Required: true, Usage: "operator `FILE` (.wasm)"}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "sink: file:PATH, log:TOPIC or -"}
}

func configFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "config", Aliases: []string{"c"}, Usage: "operator config `key=value` (repeatable)"}
}

func batchSizeFlag() cli.Flag {
	return &cli.IntFlag{Name: "batch-size", Value: 1000, Usage: "records per operator call"}
}
