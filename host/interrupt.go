package host

import (
	"context"
	"sync"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/wasmbin"
)

// Runaway calls are stopped through the tick import that
// wasmbin.InstrumentLoops adds to every module: the guest calls it every
// wasmbin.TickEvery loop iterations. Being Go code, the call also lets the Go
// scheduler preempt the goroutine, so a guest spinning in native code never
// stalls a stop-the-world GC (which would hang the whole process).
const tickName = "tick"

// startExport is the name under which instrument exports a module's start
// function, which the host then calls itself under the init deadline.
const startExport = abi.InternalModule + ".start"

// instrument prepares a module for loading.
func instrument(wasm []byte) ([]byte, error) {
	return wasmbin.InstrumentLoops(wasm, abi.InternalModule, tickName, startExport)
}

// internalFuncs is the module instrument imports from.
var internalFuncs = []hostFunc{{tickName, nil, nil, hostTick}}

// errInterrupted is the panic value that unwinds an interrupted guest.
type errInterrupted struct{}

func hostTick(_ context.Context, inst *Instance, _ guestMemory, _ []uint64) {
	if inst != nil && inst.intr.fired() {
		panic(errInterrupted{})
	}
}

// interrupter records why the host wants the running call stopped.
type interrupter struct {
	mu     sync.Mutex
	armed  bool
	reason error // ErrDeadline or ErrCanceled once fired
}

func (x *interrupter) arm() {
	x.mu.Lock()
	x.armed, x.reason = true, nil
	x.mu.Unlock()
}

func (x *interrupter) fire(reason error) {
	x.mu.Lock()
	if x.armed && x.reason == nil {
		x.reason = reason
	}
	x.mu.Unlock()
}

func (x *interrupter) fired() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.reason != nil
}

// disarm ends the call and says why it was interrupted, if it was.
func (x *interrupter) disarm() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.armed = false
	return x.reason
}

// call runs fn with the deadline and ctx's cancellation armed: the batch
// deadline while processing, the init deadline while starting (i.deadline).
// Afterwards i.interrupted says whether the host stopped it, and why.
func (i *Instance) call(ctx context.Context, fn string, stack []uint64) error {
	i.intr.arm()
	d := i.p.e.cfg.BatchTimeout
	if !i.deadline.IsZero() {
		d = time.Until(i.deadline)
	}
	timer := time.AfterFunc(d, func() { i.intr.fire(ErrDeadline) })
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { i.intr.fire(ErrCanceled) })
	}
	err := i.mod.call(i.callCtx(ctx), fn, stack)
	timer.Stop()
	stop()
	i.interrupted = i.intr.disarm()
	if err == nil {
		i.interrupted = nil // fired after the call had already returned
	}
	return err
}
