//go:build wasmtime

package host

import (
	"sync/atomic"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// spinWAT is the worst case for interruption checks: a loop of three
// instructions.
const spinWAT = `(module (memory (export "memory") 1)
  (func (export "spin") (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $n) (i32.const 3))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc)))`

// BenchmarkWasmtimeInterrupt measures what each way of stopping a runaway
// call costs a tight loop under wasmtime, per iteration: none (nothing can
// stop it), the tick import the host uses on both engines (a call to Go
// every wasmbin.TickEvery iterations), epoch interruption (a check at each
// loop header, the engine's epoch bumped by a timer) and fuel (a counter
// updated in every basic block). RATIONALE.md quotes the results.
func BenchmarkWasmtimeInterrupt(b *testing.B) {
	plain := testutil.WAT(b, spinWAT)
	ticked, err := instrument(plain)
	if err != nil {
		b.Fatal(err)
	}
	const iterations = 10_000_000
	for _, bc := range []struct {
		name  string
		wasm  []byte
		setup func(*wasmtime.Config)
		store func(*wasmtime.Store)
	}{
		{"none", plain, func(*wasmtime.Config) {}, func(*wasmtime.Store) {}},
		{"tick", ticked, func(*wasmtime.Config) {}, func(*wasmtime.Store) {}},
		{"epoch", plain, func(c *wasmtime.Config) { c.SetEpochInterruption(true) }, func(s *wasmtime.Store) { s.SetEpochDeadline(1 << 40) }},
		{"fuel", plain, func(c *wasmtime.Config) { c.SetConsumeFuel(true) }, func(s *wasmtime.Store) { s.SetFuel(1 << 62) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := wasmtime.NewConfig()
			bc.setup(cfg)
			engine := wasmtime.NewEngineWithConfig(cfg)
			defer engine.Close()
			linker := wasmtime.NewLinker(engine)
			defer linker.Close()
			var stop atomic.Bool
			if err := linker.FuncWrap(abi.InternalModule, tickName, func() *wasmtime.Trap {
				if stop.Load() {
					return wasmtime.NewTrap("interrupted")
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			mod, err := wasmtime.NewModule(engine, bc.wasm)
			if err != nil {
				b.Fatal(err)
			}
			store := wasmtime.NewStore(engine)
			defer store.Close()
			bc.store(store)
			inst, err := linker.Instantiate(store, mod)
			if err != nil {
				b.Fatal(err)
			}
			spin := inst.GetFunc(store, "spin")
			b.ResetTimer()
			for range b.N {
				if _, err := spin.Call(store, int32(iterations)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*iterations), "ns/iteration")
		})
	}
}
