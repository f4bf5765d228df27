package host

import (
	"context"
	"encoding/binary"
	"log/slog"

	"github.com/tetratelabs/wazero/api"

	"github.com/heliosdb/helios-wasm/abi"
)

// StateStore is the transactional keyed state a batch sees. The runtime
// provides one per batch: reads see the batch's own writes, and writes are
// committed with the batch's outputs or discarded with it.
type StateStore interface {
	Get(key []byte) (value []byte, found bool, err error)
	Put(key, value []byte) error
	Delete(key []byte) error
}

type callKey struct{}

// callerOf finds the Instance making a host call; nil outside any call made
// by this package (which cannot happen for a module we instantiated).
func callerOf(ctx context.Context) *Instance {
	inst, _ := ctx.Value(callKey{}).(*Instance)
	return inst
}

var i32 = api.ValueTypeI32

// hostFn implements a host function for any engine: parameters arrive in
// stack[0..], the result goes to stack[0]. inst is the calling instance (nil
// outside a call made by this package); mem is the caller's memory. A host
// function stops the call by panicking with errInterrupted.
type hostFn func(ctx context.Context, inst *Instance, mem guestMemory, stack []uint64)

// hostFunc is one import the host provides: its name, signature and
// implementation.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      hostFn
}

// hostFuncs is the helios_v1 module. Functions are stack-based (no reflection):
// parameters arrive in stack[0..], the result goes to stack[0].
var hostFuncs = []hostFunc{
	{abi.ImportLog, []api.ValueType{i32, i32, i32}, nil, hostLog},
	{abi.ImportStateGet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hostStateGet},
	{abi.ImportStatePut, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hostStatePut},
	{abi.ImportStateDelete, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostStateDelete},
	{abi.ImportConfigGet, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hostConfigGet},
	{abi.ImportWindowGet, []api.ValueType{i32, i32}, []api.ValueType{i32}, hostWindowGet},
}

func status(stack []uint64, st int32) { stack[0] = api.EncodeI32(st) }

func hostLog(ctx context.Context, inst *Instance, mod guestMemory, stack []uint64) {
	level, ptr, n := api.DecodeI32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	if n > abi.MaxLogLen {
		n = abi.MaxLogLen
	}
	msg, ok := readGuest(mod, ptr, n)
	if !ok || inst == nil {
		return
	}
	lvl := slog.LevelInfo
	switch level {
	case abi.LogDebug:
		lvl = slog.LevelDebug
	case abi.LogWarn:
		lvl = slog.LevelWarn
	case abi.LogError:
		lvl = slog.LevelError
	}
	inst.logger.Log(ctx, lvl, string(msg), inst.batchAttrs()...)
}

// readGuest reads n bytes at ptr. A zero length is valid whatever the
// pointer (abi.md): languages represent empty slices with dangling pointers.
func readGuest(mem guestMemory, ptr, n uint32) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	return mem.Read(ptr, n)
}

// readKey reads a key argument, checking bounds and the key size limit.
func readKey(mod guestMemory, ptr, n uint32) ([]byte, int32) {
	if n > abi.MaxStateKeyLen {
		return nil, abi.StatusTooLarge
	}
	k, ok := readGuest(mod, ptr, n)
	if !ok {
		return nil, abi.StatusBadArgument
	}
	return k, abi.StatusOK
}

// copyOut writes v into the guest buffer (ptr, capacity) when it fits and
// returns the status: the value's length, or an error code.
func copyOut(mod guestMemory, ptr, capacity uint32, v []byte) int32 {
	if uint32(len(v)) <= capacity && len(v) > 0 {
		if !mod.Write(ptr, v) {
			return abi.StatusBadArgument
		}
	}
	return int32(len(v))
}

// stateCall resolves the calling instance and the key argument of a state
// function; ok is false when the status has already been written.
func stateCall(inst *Instance, mod guestMemory, stack []uint64) (key []byte, ok bool) {
	if inst == nil || inst.state == nil {
		status(stack, abi.StatusNotAllowed)
		return nil, false
	}
	key, st := readKey(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if st != abi.StatusOK {
		status(stack, st)
		return nil, false
	}
	return key, true
}

// stateResult writes the status of a state write.
func stateResult(inst *Instance, stack []uint64, err error) {
	if err != nil {
		inst.hostErr = err
		status(stack, abi.StatusInternal)
		return
	}
	status(stack, abi.StatusOK)
}

func hostStateGet(_ context.Context, inst *Instance, mod guestMemory, stack []uint64) {
	key, ok := stateCall(inst, mod, stack)
	if !ok {
		return
	}
	v, found, err := inst.state.Get(key)
	switch {
	case err != nil:
		inst.hostErr = err
		status(stack, abi.StatusInternal)
	case !found:
		status(stack, abi.StatusNotFound)
	default:
		status(stack, copyOut(mod, api.DecodeU32(stack[2]), api.DecodeU32(stack[3]), v))
	}
}

func hostStatePut(_ context.Context, inst *Instance, mod guestMemory, stack []uint64) {
	key, ok := stateCall(inst, mod, stack)
	if !ok {
		return
	}
	vn := api.DecodeU32(stack[3])
	if vn > abi.MaxStateValueLen {
		status(stack, abi.StatusTooLarge)
		return
	}
	v, ok := readGuest(mod, api.DecodeU32(stack[2]), vn)
	if !ok {
		status(stack, abi.StatusBadArgument)
		return
	}
	inst.chargeState(len(key) + len(v))
	// Memory views alias guest memory: the store must copy what it keeps.
	stateResult(inst, stack, inst.state.Put(key, v))
}

func hostStateDelete(_ context.Context, inst *Instance, mod guestMemory, stack []uint64) {
	key, ok := stateCall(inst, mod, stack)
	if !ok {
		return
	}
	inst.chargeState(len(key))
	stateResult(inst, stack, inst.state.Delete(key))
}

func hostConfigGet(_ context.Context, inst *Instance, mod guestMemory, stack []uint64) {
	if inst == nil {
		status(stack, abi.StatusNotAllowed)
		return
	}
	key, st := readKey(mod, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if st != abi.StatusOK {
		status(stack, st)
		return
	}
	// The last occurrence of a key wins, as with repeated --config flags.
	for i := len(inst.cfg.Config) - 1; i >= 0; i-- {
		if string(inst.cfg.Config[i].Key) == string(key) {
			status(stack, copyOut(mod, api.DecodeU32(stack[2]), api.DecodeU32(stack[3]), inst.cfg.Config[i].Value))
			return
		}
	}
	status(stack, abi.StatusNotFound)
}

// Window is the event-time window an operator call is made for (abi.md,
// "Windows"): [Start, End) in Unix milliseconds.
type Window struct {
	Start, End int64
	// Updates: the pipeline emits updates (the descriptor's updates flag).
	Updates bool
}

// hostWindowGet writes the current call's window descriptor when buf_cap
// allows and returns its size; NOT_FOUND outside a call made for a window.
func hostWindowGet(_ context.Context, inst *Instance, mod guestMemory, stack []uint64) {
	if inst == nil || inst.win == nil {
		status(stack, abi.StatusNotFound)
		return
	}
	ptr, capacity := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if capacity < abi.WindowInfoSize {
		status(stack, abi.WindowInfoSize)
		return
	}
	var b [abi.WindowInfoSize]byte
	le := binary.LittleEndian
	le.PutUint64(b[abi.OffWindowStart:], uint64(inst.win.Start))
	le.PutUint64(b[abi.OffWindowEnd:], uint64(inst.win.End))
	var flags uint32
	if inst.win.Updates {
		flags |= abi.WindowFlagUpdates
	}
	if inst.closing {
		flags |= abi.WindowFlagClosing
	}
	le.PutUint32(b[abi.OffWindowFlags:], flags)
	if !mod.Write(ptr, b[:]) {
		status(stack, abi.StatusBadArgument)
		return
	}
	status(stack, abi.WindowInfoSize)
}
