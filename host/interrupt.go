package host

import (
	"context"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// interrupter stops a running guest call by setting the global that
// wasmbin.InstrumentLoops added: the guest traps at its next loop iteration.
type interrupter struct {
	mu     sync.Mutex
	global api.MutableGlobal // nil while no call is armed
	reason error             // ErrDeadline or ErrCanceled once fired
}

func (x *interrupter) arm(g api.MutableGlobal) {
	x.mu.Lock()
	x.global, x.reason = g, nil
	g.Set(0)
	x.mu.Unlock()
}

func (x *interrupter) fire(reason error) {
	x.mu.Lock()
	if x.global != nil && x.reason == nil {
		x.reason = reason
		x.global.Set(1)
	}
	x.mu.Unlock()
}

// disarm ends the call and says why it was interrupted, if it was.
func (x *interrupter) disarm() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.global = nil
	return x.reason
}

// call runs fn with the batch deadline and ctx's cancellation armed. The
// returned error is the call's; i.interrupted says whether the host stopped it.
func (i *Instance) call(ctx context.Context, fn api.Function, stack []uint64) error {
	i.intr.arm(i.interruptGlobal)
	timer := time.AfterFunc(i.p.e.cfg.BatchTimeout, func() { i.intr.fire(ErrDeadline) })
	stop := func() bool { return false }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { i.intr.fire(ErrCanceled) })
	}
	err := fn.CallWithStack(i.callCtx(ctx), stack)
	timer.Stop()
	stop()
	i.interrupted = i.intr.disarm()
	return err
}
