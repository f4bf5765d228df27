package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/heliosdb/helios-wasm/abi"
)

// InstanceConfig configures one instance of a plugin.
type InstanceConfig struct {
	// Config is passed to helios_init, in order (--config key=value).
	Config []abi.Header
	// Partition is the partition this instance serves, for errors and logs.
	Partition int32
	// Logger receives the guest's log lines; default: the engine's logger.
	Logger *slog.Logger
}

// Instance is one instantiated plugin. It is not safe for concurrent use:
// give each partition its own.
type Instance struct {
	p      *Plugin
	cfg    InstanceConfig
	logger *slog.Logger

	mod liveModule // nil after a trap, until the next batch
	op  string     // the batch export being called: "process" or "migrate"

	inPtr, inCap uint32 // the host-owned input buffer in guest memory
	entries      []abi.Entry
	stack        [2]uint64

	intr        interrupter
	interrupted error     // why the host stopped the last call, if it did
	deadline    time.Time // while starting: when the init deadline passes

	det        determinism
	stderr     tailWriter
	state      StateStore // set only during helios_process
	win        *Window    // the window of the current call, nil outside one
	closing    bool       // the current call is helios_window_close
	hostErr    error      // a state store failure seen during the call
	stateBytes uint64     // state bytes written by the batch so far
	limitErr   error      // why a host function stopped the call, if one did
	batch      uint64
	records    []abi.Record
}

// NewInstance instantiates the plugin and calls helios_init with cfg.Config.
// A refused configuration returns an error wrapping ErrInit.
func (p *Plugin) NewInstance(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	if cfg.Logger == nil {
		cfg.Logger = p.e.cfg.Logger
	}
	inst := &Instance{p: p, cfg: cfg, logger: cfg.Logger}
	if err := inst.start(ctx); err != nil {
		return nil, err
	}
	return inst, nil
}

// Plugin returns the plugin this instance runs.
func (i *Instance) Plugin() *Plugin { return i.p }

// MemoryBytes is the size of the instance's linear memory (0 between a
// trap and the next batch, when there is no live module).
func (i *Instance) MemoryBytes() uint32 {
	if i.mod == nil {
		return 0
	}
	return i.mod.memory().Size()
}

func (i *Instance) callCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, callKey{}, i)
}

func (i *Instance) batchAttrs() []any {
	attrs := []any{"plugin", i.p.name, "plugin_hash", i.p.ShortHash(), "partition", i.cfg.Partition, "batch", i.batch}
	if len(i.records) > 0 {
		// The batch's first and last source offsets locate the line.
		attrs = append(attrs, "offset", i.records[0].Offset, "last_offset", i.records[len(i.records)-1].Offset)
	}
	return attrs
}

// instantiate creates the module without running _start, and runs its start
// function and, when the module is a WASI reactor, _initialize. The caller
// sets the init deadline (i.deadline).
func (i *Instance) instantiate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: "instantiate", Partition: i.cfg.Partition, Kind: ErrCanceled, Detail: err}
	}
	i.stderr.logger, i.stderr.attrs = i.logger, i.batchAttrs
	i.det.reset(i.p.hash)
	mod, err := i.p.e.wasm.instantiate(ctx, i.p.compiled, i)
	if err != nil {
		return &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: "instantiate", Partition: i.cfg.Partition, Kind: ErrInstantiate, Detail: err}
	}
	i.mod = mod
	i.inPtr, i.inCap = 0, 0
	// instrument turned the start section into this export: no guest code
	// ran while instantiating, where no deadline applies.
	if mod.hasExport(startExport) {
		if err := i.call(ctx, startExport, i.stack[:]); err != nil {
			e := i.classify("start", err)
			i.discard(ctx)
			return e
		}
	}
	if mod.hasExport(abi.ExportInitialize) {
		if err := i.call(ctx, abi.ExportInitialize, i.stack[:]); err != nil {
			e := i.classify("instantiate", err)
			i.discard(ctx)
			return e
		}
	}
	return nil
}

// start instantiates and runs helios_init, all under the init deadline.
func (i *Instance) start(ctx context.Context) error {
	i.deadline = time.Now().Add(i.p.e.cfg.InitTimeout)
	defer func() { i.deadline = time.Time{} }()
	if err := i.instantiate(ctx); err != nil {
		return err
	}
	cfg := abi.AppendKVBlock(nil, i.cfg.Config)
	ptr, err := i.alloc(ctx, uint32(len(cfg)))
	if err != nil {
		i.discard(ctx)
		return i.classify("init", err)
	}
	i.mod.memory().Write(ptr, cfg)
	i.stack[0], i.stack[1] = uint64(ptr), uint64(len(cfg))
	if err := i.call(ctx, abi.ExportInit, i.stack[:]); err != nil {
		e := i.classify("init", err)
		i.discard(ctx)
		return e
	}
	res := i.stack[0]
	i.stack[0], i.stack[1] = uint64(ptr), uint64(len(cfg))
	if err := i.call(ctx, abi.ExportDealloc, i.stack[:]); err != nil {
		e := i.classify("init", err)
		i.discard(ctx)
		return e
	}
	if res != 0 {
		mp, ml := abi.UnpackResult(res)
		msg, ok := i.mod.memory().Read(mp, min(ml, 4096))
		if !ok {
			msg = []byte(fmt.Sprintf("(error message at %d+%d lies outside memory)", mp, ml))
		}
		detail := errors.New(string(msg)) // a copy: discard may unmap the memory
		i.discard(ctx)
		return &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: "init", Partition: i.cfg.Partition, Kind: ErrInit, Detail: detail}
	}
	return nil
}

func (i *Instance) alloc(ctx context.Context, n uint32) (uint32, error) {
	i.stack[0] = uint64(n)
	if err := i.call(ctx, abi.ExportAlloc, i.stack[:]); err != nil {
		return 0, err
	}
	ptr := api.DecodeU32(i.stack[0])
	if _, ok := i.mod.memory().Read(ptr, n); !ok {
		return 0, fmt.Errorf("%w: helios_alloc(%d) returned %d, outside the module's %d-byte memory", ErrBadOutput, n, ptr, i.mod.memory().Size())
	}
	return ptr, nil
}

// Process runs helios_process over recs. state is the batch's transactional
// state view (nil: state calls get StatusNotAllowed). The returned entries
// alias the guest's memory: they are valid until the next call on this
// instance, and must be copied to be kept.
//
// An input the module failed is returned as its failed entry alone: records
// emitted for it are dropped (abi.md, "A failed record leaves no trace").
//
// On a trap, deadline, memory exhaustion or malformed output the instance's
// module is discarded and the next Process starts a fresh one; the caller
// must discard the batch's state writes.
func (i *Instance) Process(ctx context.Context, recs []abi.Record, state StateStore) ([]abi.Entry, error) {
	return i.callBatch(ctx, abi.ExportProcess, recs, state, nil)
}

// ProcessWindow is Process for the records of one window: during the call
// window_get describes w (abi.md, "Windows"). state is the window's scoped
// view; the host package does not scope keys itself.
func (i *Instance) ProcessWindow(ctx context.Context, recs []abi.Record, state StateStore, w Window) ([]abi.Entry, error) {
	return i.callBatch(ctx, abi.ExportProcess, recs, state, &w)
}

// CloseWindow calls helios_window_close for window w over recs, one record
// per due key (abi.md, "Windows"); window_get reports the close flag. The
// result is handled like Process's. A module without the export fails with
// ErrMissingExport.
func (i *Instance) CloseWindow(ctx context.Context, recs []abi.Record, state StateStore, w Window) ([]abi.Entry, error) {
	if !i.p.info.WindowClose {
		return nil, &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: "window_close", Partition: i.cfg.Partition, Kind: ErrMissingExport,
			Detail: fmt.Errorf("the module does not export %s (abi.md, section Windows)", abi.ExportWindowClose)}
	}
	return i.callBatch(ctx, abi.ExportWindowClose, recs, state, &w)
}

// Migrate runs helios_migrate, the schema migrator export, over recs: the
// same call as Process (encoding, limits, deadline, failure handling), with
// no state (state calls get StatusNotAllowed). A module without the export
// fails with ErrMissingExport.
func (i *Instance) Migrate(ctx context.Context, recs []abi.Record) ([]abi.Entry, error) {
	if !i.p.info.Migrator {
		return nil, &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: "migrate", Partition: i.cfg.Partition, Kind: ErrMissingExport,
			Detail: fmt.Errorf("the module does not export %s (abi.md, section Schema migrators)", abi.ExportMigrate)}
	}
	return i.callBatch(ctx, abi.ExportMigrate, recs, nil, nil)
}

// callBatch calls the batch export named export (helios_process,
// helios_migrate or helios_window_close) over recs; win is the window the
// call is made for, nil outside windows.
func (i *Instance) callBatch(ctx context.Context, export string, recs []abi.Record, state StateStore, win *Window) ([]abi.Entry, error) {
	i.batch++
	i.op = strings.TrimPrefix(export, "helios_")
	if i.mod == nil {
		if err := i.start(ctx); err != nil {
			return nil, err
		}
	}
	size := abi.BatchSize(recs)
	if uint64(size) > uint64(i.p.e.cfg.MemoryLimitMiB)<<20 {
		return nil, i.fail(ErrMemoryLimit, fmt.Errorf("the encoded batch is %d bytes, larger than the %d MiB memory limit; lower the batch size or raise the limit", size, i.p.e.cfg.MemoryLimitMiB))
	}
	if uint32(size) > i.inCap {
		if err := i.growInput(ctx, uint32(size)); err != nil {
			e := i.classify(i.op, err)
			i.discard(ctx)
			return nil, e
		}
	}
	view, _ := i.mod.memory().Read(i.inPtr, uint32(size))
	abi.EncodeBatch(view, recs)

	i.state, i.hostErr, i.records, i.stateBytes, i.limitErr = state, nil, recs, 0, nil
	i.win, i.closing = win, export == abi.ExportWindowClose
	i.det.seed(recs)
	i.stderr.reset()
	i.stack[0], i.stack[1] = uint64(i.inPtr), uint64(size)
	err := i.call(ctx, export, i.stack[:])
	i.state, i.records, i.win, i.closing = nil, nil, nil, false
	if err != nil {
		e := i.classify(i.op, err)
		i.discard(ctx)
		return nil, e
	}
	if i.hostErr != nil {
		return nil, fmt.Errorf("plugin %s partition %d batch %d: state store: %w", i.p.name, i.cfg.Partition, i.batch, i.hostErr)
	}
	ptr, n := abi.UnpackResult(i.stack[0])
	if n > i.p.e.cfg.MaxOutputBytes {
		return nil, i.fail(ErrOutputLimit, fmt.Errorf("output of %d bytes exceeds the %d-byte limit per batch", n, i.p.e.cfg.MaxOutputBytes))
	}
	out, ok := i.mod.memory().Read(ptr, n)
	if !ok {
		return nil, i.fail(ErrBadOutput, fmt.Errorf("output at %d+%d lies outside the module's %d-byte memory", ptr, n, i.mod.memory().Size()))
	}
	if c, ok := outputCount(out); ok && c > i.p.e.cfg.MaxOutputsPerBatch {
		return nil, i.fail(ErrOutputLimit, fmt.Errorf("%d outputs for a batch of %d records exceed the limit of %d outputs per batch", c, len(recs), i.p.e.cfg.MaxOutputsPerBatch))
	}
	// Entries alias guest memory, which does not change before the next
	// call into the guest: no copy.
	var failed int
	i.entries, failed, err = abi.DecodeOutputCounting(i.entries[:0], out, uint32(len(recs)))
	if err != nil {
		var bf *abi.BatchFailure
		if errors.As(err, &bf) {
			return nil, &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: i.op, Partition: i.cfg.Partition, Batch: i.batch, Kind: ErrBatchFailed, Detail: err}
		}
		return nil, i.fail(ErrBadOutput, err)
	}
	if failed > 0 {
		i.entries = dropFailedInputs(i.entries)
	}
	return i.entries, nil
}

// dropFailedInputs enforces abi.md's "a failed record leaves no trace" on
// the output: an input with a failed entry keeps only its first failed
// entry, and the records emitted for it (before or after) are dropped.
// Entries follow input order, so an input's entries are contiguous.
func dropFailedInputs(ents []abi.Entry) []abi.Entry {
	out := ents[:0]
	for start := 0; start < len(ents); {
		end, failed := start, -1
		for ; end < len(ents) && ents[end].InputIndex == ents[start].InputIndex; end++ {
			if failed < 0 && ents[end].Kind == abi.EntryKindFailed {
				failed = end
			}
		}
		if failed >= 0 {
			out = append(out, ents[failed])
		} else {
			out = append(out, ents[start:end]...)
		}
		start = end
	}
	return out
}

// outputCount reads the entry count of a successful batch's output, before
// it is decoded; ok is false for anything else (DecodeOutput reports it).
func outputCount(out []byte) (count uint32, ok bool) {
	if len(out) < abi.OutputHeaderSize {
		return 0, false
	}
	le := binary.LittleEndian
	if le.Uint32(out[abi.OffOutMagic:]) != abi.OutputMagic || le.Uint32(out[abi.OffOutStatus:]) != abi.BatchOK {
		return 0, false
	}
	return le.Uint32(out[abi.OffOutCount:]), true
}

// chargeState counts n more state bytes written by the batch and, past the
// limit, stops the call (the batch fails with ErrStateLimit) before the
// store copies them.
func (i *Instance) chargeState(n int) {
	i.stateBytes += uint64(n)
	if limit := i.p.e.cfg.MaxStateBytesPerBatch; i.stateBytes > limit {
		i.limitErr = fmt.Errorf("the batch of %d records wrote more than %d bytes of state (keys and values); write less state per batch or raise the limit", len(i.records), limit)
		panic(errInterrupted{})
	}
}

// growInput replaces the input buffer with one of at least n bytes.
func (i *Instance) growInput(ctx context.Context, n uint32) error {
	if i.inPtr != 0 {
		i.stack[0], i.stack[1] = uint64(i.inPtr), uint64(i.inCap)
		if err := i.call(ctx, abi.ExportDealloc, i.stack[:]); err != nil {
			return err
		}
		i.inPtr, i.inCap = 0, 0
	}
	c := max(n, 64<<10)
	if c < 1<<30 {
		c = 1 << (32 - leadingZeros32(c-1)) // round up to a power of two
	}
	ptr, err := i.alloc(ctx, c)
	if err != nil {
		return err
	}
	i.inPtr, i.inCap = ptr, c
	return nil
}

func leadingZeros32(x uint32) int {
	n := 0
	for x&0x80000000 == 0 && n < 32 {
		x <<= 1
		n++
	}
	return n
}

// fail discards the module and returns a process error.
func (i *Instance) fail(kind, detail error) error {
	i.discard(context.Background())
	return &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: i.op, Partition: i.cfg.Partition, Batch: i.batch, Kind: kind, Detail: detail}
}

// classify turns a call error into a *PluginError with the right sentinel.
func (i *Instance) classify(op string, err error) error {
	var pe *PluginError
	if errors.As(err, &pe) {
		return err
	}
	kind := ErrTrap
	var exit exitCoder
	switch {
	case i.limitErr != nil:
		kind, err = ErrStateLimit, i.limitErr
		i.limitErr = nil
	case errors.Is(i.interrupted, ErrDeadline) && (op == "process" || op == "migrate" || op == "window_close"):
		kind = ErrDeadline
		err = fmt.Errorf("the call ran longer than %v (an infinite loop?); raise the batch timeout if batches are legitimately slow", i.p.e.cfg.BatchTimeout)
	case errors.Is(i.interrupted, ErrDeadline):
		kind = ErrDeadline
		err = fmt.Errorf("starting the instance (start function, _initialize, helios_init) took longer than the %v init timeout (an infinite loop?); raise the init timeout if initialisation is legitimately slow", i.p.e.cfg.InitTimeout)
	case errors.Is(i.interrupted, ErrCanceled):
		kind, err = ErrCanceled, context.Canceled
	case errors.As(err, &exit):
		err = fmt.Errorf("the module exited with code %d", exit.ExitCode())
	}
	if op == "start" {
		// Like any failure to instantiate: the module is unusable.
		err = fmt.Errorf("the module's start function: %w", err)
		if kind == ErrTrap {
			kind = ErrInstantiate
		}
	}
	if kind == ErrTrap && errors.Is(err, ErrBadOutput) {
		kind = ErrBadOutput
	}
	if kind == ErrTrap && i.mod != nil {
		if limit := uint64(i.p.e.cfg.MemoryLimitMiB) << 20; uint64(i.mod.memory().Size()) >= limit*9/10 {
			kind = ErrMemoryLimit
			err = fmt.Errorf("memory at %d MiB of the %d MiB limit: %w", i.mod.memory().Size()>>20, i.p.e.cfg.MemoryLimitMiB, err)
		}
	}
	return &PluginError{Plugin: i.p.name, Hash: i.p.ShortHash(), Op: op, Partition: i.cfg.Partition, Batch: i.batch, Kind: kind, Detail: err,
		Stderr: i.stderr.tail()}
}

// discard throws the module away: after a trap its memory may be corrupt.
func (i *Instance) discard(ctx context.Context) {
	if i.mod != nil {
		i.mod.close(ctx)
		i.mod = nil
	}
	i.inPtr, i.inCap = 0, 0
}

// Close releases the instance.
func (i *Instance) Close(ctx context.Context) error {
	i.discard(ctx)
	return nil
}
