package host

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// valueOutput is an output of one record whose 4-byte value is at 5048:
// the process body computes an i32, stores it there, and returns it.
const valueOutput = `(data (i32.const 5000) "HLO1\00\00\00\00\01\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\04\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")`

func storeValue(expr string) string {
	return `(i32.store (i32.const 5048) ` + expr + `) (i64.or (i64.shl (i64.const 5000) (i64.const 32)) (i64.const 52))`
}

// TestWasmFeatures: each WebAssembly feature abi.md allows runs (a module
// using it computes the expected value), and each one it excludes is
// refused at load time with an error naming the problem.
func TestWasmFeatures(t *testing.T) { forEachEngine(t, testWasmFeatures) }

func testWasmFeatures(t *testing.T, engine string) {
	allowed := []struct {
		feature string
		expr    string // an i32 computed with the feature
		extra   string
		want    int32
	}{
		{"bulk memory", `(memory.fill (i32.const 6000) (i32.const 42) (i32.const 4)) (memory.copy (i32.const 6100) (i32.const 6000) (i32.const 4))
			(memory.init $d (i32.const 6102) (i32.const 0) (i32.const 1)) (data.drop $d) (i32.load (i32.const 6100))`,
			`(data $d "\07")`, 0x2a072a2a},
		{"SIMD", `(i32x4.extract_lane 2 (i32x4.add (i32x4.splat (i32.const 40)) (v128.const i32x4 0 0 2 0)))`, ``, 42},
		{"multi-value", `(i32.sub (call $two))`, `(func $two (result i32 i32) (i32.const 50) (i32.const 8))`, 42},
		{"sign extension", `(i32.extend8_s (i32.const 0xd6))`, ``, -42},
		{"non-trapping float-to-int", `(i32.trunc_sat_f64_s (f64.const 1e100))`, ``, 2147483647},
		{"reference types", `(i32.add (table.size $t) (ref.is_null (table.get $t (i32.const 1))))`, `(table $t 3 funcref)`, 4},
		{"mutable global export", `(global.set $g (i32.const 42)) (global.get $g)`, `(global $g (export "g") (mut i32) (i32.const 0))`, 42},
	}
	e := newTestEngine(t, Config{Engine: engine})
	for _, tt := range allowed {
		t.Run(tt.feature, func(t *testing.T) {
			wasm := watOperator{process: storeValue(tt.expr), extra: valueOutput + tt.extra}.build(t)
			inst := mustInstance(t, mustCompile(t, e, "feature.wasm", wasm), InstanceConfig{})
			ents, err := inst.Process(context.Background(), []abi.Record{{Value: []byte("x")}}, nil)
			if err != nil || len(ents) != 1 {
				t.Fatalf("process: %v (%d entries)", err, len(ents))
			}
			if got := int32(binary.LittleEndian.Uint32(ents[0].Value)); got != tt.want {
				t.Fatalf("computed %d, want %d", got, tt.want)
			}
		})
	}
	refused := []struct {
		feature string
		flags   []string
		process string
		extra   string
		detail  string
	}{
		{"threads (shared memory, atomics)", []string{"--enable-threads"},
			`(drop (i32.atomic.rmw.add (i32.const 6000) (i32.const 1))) (call $empty)`, ``, "threads"},
		{"tail calls", []string{"--enable-tail-call"}, `(return_call $empty)`, ``, "tail"},
		{"exception handling", []string{"--enable-exceptions"}, `(throw $x) (call $empty)`, `(tag $x)`, "exception"},
		{"multiple memories", []string{"--enable-multi-memory"}, `(call $empty)`, `(memory $m2 1)`, "memor"},
		{"extended constant expressions", []string{"--enable-extended-const"}, `(call $empty)`, `(global $gx i32 (i32.add (i32.const 1) (i32.const 2)))`, "extended"},
	}
	for _, tt := range refused {
		t.Run(tt.feature, func(t *testing.T) {
			wasm := watOperator{process: tt.process, extra: tt.extra, flags: tt.flags}.build(t)
			_, err := e.Compile(context.Background(), "feature.wasm", wasm)
			if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), tt.detail) ||
				(strings.Contains(err.Error(), "as feature") && !strings.Contains(err.Error(), "abi.md, section WebAssembly features")) {
				t.Fatalf("got %v, want %v naming %q", err, ErrInvalidModule, tt.detail)
			}
		})
	}
	// wazero cannot decode a 64-bit memory at all: no feature named.
	t.Run("64-bit memory", func(t *testing.T) {
		_, err := e.Compile(context.Background(), "feature.wasm", testutil.WAT(t, `(module (memory (export "memory") i64 1))`, "--enable-memory64"))
		if !errors.Is(err, ErrInvalidModule) {
			t.Fatalf("got %v, want %v", err, ErrInvalidModule) // was ErrMemoryTooLarge
		}
	})
}
