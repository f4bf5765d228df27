package host

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// watOperator builds a small ABI v1 module around custom function bodies.
// In the process body, $ptr/$len are the input batch; "(call $empty)" returns
// the empty output kept at 4000; the byte at $ptr+64 is the first byte of the
// first record's value when it has no key ("b" marks a bad batch).
type watOperator struct {
	version string   // helios_abi_version result; default 1
	imports string   // extra imports
	init    string   // helios_init body, must leave an i64
	process string   // helios_process body, must leave an i64
	extra   string   // extra module fields
	omit    string   // an export to leave out
	flags   []string // wat2wasm flags (features off by default)
}

func (w watOperator) build(t testing.TB) []byte {
	t.Helper()
	if w.version == "" {
		w.version = "1"
	}
	if w.init == "" {
		w.init = "(i64.const 0)"
	}
	if w.process == "" {
		w.process = "(call $empty)"
	}
	exp := func(name string) string {
		if name == w.omit {
			return ""
		}
		return fmt.Sprintf(`(export %q)`, name)
	}
	src := fmt.Sprintf(`(module
  (import "helios_v1" "log" (func $log (param i32 i32 i32)))
  (import "helios_v1" "state_get" (func $state_get (param i32 i32 i32 i32) (result i32)))
  (import "helios_v1" "state_put" (func $state_put (param i32 i32 i32 i32) (result i32)))
  (import "helios_v1" "state_delete" (func $state_delete (param i32 i32) (result i32)))
  (import "helios_v1" "config_get" (func $config_get (param i32 i32 i32 i32) (result i32)))
  %s
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func %s (result i32) (i32.const %s))
  (func %s (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func %s (param i32 i32))
  (func %s (param $ptr i32) (param $len i32) (result i64) %s)
  (func %s (param $ptr i32) (param $len i32) (result i64) %s)
  (func $empty (result i64) (i64.or (i64.shl (i64.const 4000) (i64.const 32)) (i64.const 16)))
  (func $bad (param $ptr i32) (result i32) (i32.eq (i32.load8_u (i32.add (local.get $ptr) (i32.const 64))) (i32.const 98)))
  (data (i32.const 4000) "HLO1\00\00\00\00\00\00\00\00\00\00\00\00")
  %s
)`, w.imports, exp("helios_abi_version"), w.version, exp("helios_alloc"), exp("helios_dealloc"),
		exp("helios_init"), w.init, exp("helios_process"), w.process, w.extra)
	return testutil.WAT(t, strings.TrimSpace(src), w.flags...)
}
