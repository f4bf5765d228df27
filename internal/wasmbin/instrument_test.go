package wasmbin

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

const loopWAT = `(module
  (global $g (import "env" "g") (mut i32))
  (global $h (mut i32) (i32.const 7))
  (memory (export "memory") 1)
  (func (export "spin") (param $n i32) (result i32)
    (local $i i32)
    (block $out
      (loop $l
        (br_if $out (i32.eq (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (i32.add (local.get $i) (global.get $h)))
  (func (export "forever") (loop $l (br $l)))
  (func (export "simd") (result i32)
    (i32x4.extract_lane 1 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.load offset=16 (i32.const 0)))))
)`

// instantiate runs wasm with a tick import that counts calls and panics
// once stop is set.
func instantiate(t *testing.T, wasm []byte, ticks *atomic.Int64, stop *atomic.Bool) (api.Module, wazero.Runtime) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	_, err := rt.NewHostModuleBuilder("helios_internal").NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(
		func(context.Context, api.Module, []uint64) {
			ticks.Add(1)
			if stop.Load() {
				panic("interrupted")
			}
		}), nil, nil).Export("tick").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("rewritten module does not compile: %v", err)
	}
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	return mod, rt
}

func TestInstrumentLoopsInterrupts(t *testing.T) {
	// An imported global shifts the new global's index; a provider for it is
	// not needed to test that, so it is replaced by a defined one here and
	// imported globals are covered by countImportedGlobals' own test.
	src := testutil.WAT(t, string(bytes.Replace([]byte(loopWAT), []byte(`(global $g (import "env" "g") (mut i32))`), []byte(`(global $g (mut i32) (i32.const 0))`), 1)))
	out, err := InstrumentLoops(src, "helios_internal", "tick", "")
	if err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Int64
	var stop atomic.Bool
	mod, _ := instantiate(t, out, &ticks, &stop)
	ctx := context.Background()
	res, err := mod.ExportedFunction("spin").Call(ctx, 3*TickEvery)
	if err != nil || res[0] != 3*TickEvery+7 {
		t.Fatalf("spin: %v %v", res, err)
	}
	if n := ticks.Load(); n != 3 {
		t.Fatalf("%d ticks over %d iterations, want 3", n, 3*TickEvery)
	}
	if res, err := mod.ExportedFunction("simd").Call(ctx); err != nil || res[0] != 2 {
		t.Fatalf("simd: %v %v", res, err)
	}
	go func() { time.Sleep(50 * time.Millisecond); stop.Store(true) }()
	done := make(chan error, 1)
	go func() { _, err := mod.ExportedFunction("forever").Call(ctx); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("forever returned without a trap")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("setting the interrupt global did not stop the loop")
	}
}

func TestInstrumentKeepsGoGuestWorking(t *testing.T) {
	wasm, err := os.ReadFile(testutil.GoPlugin(t, "split"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := InstrumentLoops(wasm, "helios_internal", "tick", "")
	if err != nil {
		t.Fatal(err)
	}
	// Importing helios_v1 needs the host; compiling is enough to prove the
	// rewrite is valid, and the host tests run rewritten Go guests.
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, out); err != nil {
		t.Fatalf("rewritten Go guest does not compile: %v", err)
	}
}

func TestInstrumentRejectsGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        nil,
		"not wasm":     []byte("hello world"),
		"bad version":  []byte("\x00asm\x02\x00\x00\x00"),
		"cut section":  []byte("\x00asm\x01\x00\x00\x00\x0a\x05\x01"),
		"bad opcode":   append([]byte("\x00asm\x01\x00\x00\x00"), 0x0a, 0x05, 0x01, 0x03, 0x00, 0xff, 0x0b),
		"bad LEB size": append([]byte("\x00asm\x01\x00\x00\x00"), 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	} {
		if _, err := InstrumentLoops(b, "m", "x", ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzInstrumentLoops(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add(append([]byte("\x00asm\x01\x00\x00\x00"), 0x0a, 0x06, 0x01, 0x04, 0x00, 0x03, 0x40, 0x0b))
	f.Fuzz(func(t *testing.T, b []byte) {
		InstrumentLoops(b, "helios_internal", "tick", "start") // must not panic
	})
}

func TestInstrumentExportsStart(t *testing.T) {
	const startExport = "helios_internal.start"
	tests := []struct {
		name string
		wat  string
		err  string // a refused module's error
	}{
		// The start function sets memory[0]; the module has other exports.
		{name: "with exports", wat: `(module (memory (export "memory") 1)
  (func $s (loop $l (br_if $l (i32.eqz (i32.const 1)))) (i32.store8 (i32.const 0) (i32.const 42)))
  (start $s))`},
		// No export section at all: the rewrite creates one.
		{name: "no export section", wat: `(module (memory 1)
  (func $s (i32.store8 (i32.const 0) (i32.const 42)))
  (start $s))`},
		{name: "reserved name", wat: `(module (memory 1) (func $s) (export "helios_internal.start" (func $s)) (start $s))`,
			err: "reserved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := InstrumentLoops(testutil.WAT(t, tc.wat), "helios_internal", "tick", startExport)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ticks atomic.Int64
			var stop atomic.Bool
			mod, _ := instantiate(t, out, &ticks, &stop)
			mem := mod.Memory()
			if b, _ := mem.ReadByte(0); b != 0 {
				t.Fatalf("the start function ran during instantiation (memory[0] = %d)", b)
			}
			fn := mod.ExportedFunction(startExport)
			if fn == nil {
				t.Fatalf("no %s export", startExport)
			}
			if _, err := fn.Call(context.Background()); err != nil {
				t.Fatal(err)
			}
			if b, _ := mem.ReadByte(0); b != 42 {
				t.Fatalf("memory[0] = %d after the start export, want 42", b)
			}
		})
	}
}
