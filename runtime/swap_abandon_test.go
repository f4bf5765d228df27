package runtime

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// loopingInitWAT is an ABI v1 operator whose helios_init never returns.
const loopingInitWAT = `(module
  (memory (export "memory") 1)
  (func (export "helios_abi_version") (result i32) (i32.const 1))
  (func (export "helios_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "helios_dealloc") (param i32 i32))
  (func (export "helios_init") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))
  (func (export "helios_process") (param i32 i32) (result i64) (i64.const 0)))`

// TestSwapAbandoned: preparing a version whose helios_init never returns
// stops when the swap's caller gives up (an HTTP client going away, a CLI
// interrupted) or when the pipeline is stopped, well before the init
// deadline; the old version keeps running, and Run returns.
func TestSwapAbandoned(t *testing.T) {
	for _, how := range []string{"caller cancels", "pipeline stops"} {
		t.Run(how, func(t *testing.T) {
			db, src, sink := logToLog(t)
			p, err := New(Config{Name: "abandon", DB: db, Plugin: testPlugin(t, "uppercase"), Source: src, Sink: sink, Follow: true, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			runErr := make(chan error, 1)
			go func() { _, err := p.Run(context.Background()); runErr <- err }()
			<-p.Ready()
			looping, err := p.Engine().Compile(context.Background(), "looping.wasm", testutil.WAT(t, loopingInitWAT))
			if err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if how == "caller cancels" {
				time.AfterFunc(200*time.Millisecond, cancel)
			} else {
				time.AfterFunc(200*time.Millisecond, p.Stop)
			}
			begin := time.Now()
			_, err = p.Swap(ctx, looping, nil)
			if !errors.Is(err, host.ErrCanceled) {
				t.Fatalf("swap: %v, want ErrCanceled", err)
			}
			if took := time.Since(begin); took > host.DefaultInitTimeout/2 {
				t.Fatalf("the swap stopped after %v", took)
			}
			if st := p.Status(); how == "caller cancels" && st.PluginHash != testPlugin(t, "uppercase").Hash() {
				t.Fatalf("the old version stopped running: %+v", st)
			}
			p.Stop()
			select {
			case err := <-runErr:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after Stop")
			}
		})
	}
}
