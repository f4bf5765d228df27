package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// greedyWAT is an operator that, for a batch whose first record's value
// starts with '7', emits 3 million (empty) outputs, and for '8' writes 8
// state values of 16 MiB (from one 16 MiB region: its own memory stays
// small, so the RSS measured is the host's). Other batches emit nothing.
const greedyWAT = `(module
  (import "helios_v1" "state_put" (func $state_put (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "helios_abi_version") (result i32) (i32.const 1))
  (func $alloc (export "helios_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func (export "helios_dealloc") (param i32 i32))
  (func (export "helios_init") (param i32 i32) (result i64) (i64.const 0))
  (func (export "helios_process") (param $ptr i32) (param $len i32) (result i64)
    (local $c i32) (local $i i32) (local $n i32) (local $out i32)
    (local.set $c (i32.load8_u (i32.add (local.get $ptr) (i32.const 64))))
    (if (i32.eq (local.get $c) (i32.const 55)) (then (local.set $n (i32.const 3000000))))
    (if (i32.eq (local.get $c) (i32.const 56)) (then
      (local.set $out (call $alloc (i32.const 16777216)))
      (loop $l
        (i32.store8 (local.get $out) (i32.add (i32.const 97) (local.get $i)))
        (drop (call $state_put (local.get $out) (i32.const 1) (local.get $out) (i32.const 16777216)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const 8))))))
    (local.set $out (call $alloc (i32.add (i32.const 16) (i32.mul (local.get $n) (i32.const 32)))))
    (i32.store (local.get $out) (i32.const 0x314f4c48))
    (i32.store offset=4 (local.get $out) (i32.const 0))
    (i32.store offset=8 (local.get $out) (local.get $n))
    (i32.store offset=12 (local.get $out) (i32.const 0))
    (memory.fill (i32.add (local.get $out) (i32.const 16)) (i32.const 0) (i32.mul (local.get $n) (i32.const 32)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.add (i32.const 16) (i32.mul (local.get $n) (i32.const 32)))))))`

// TestHostLimitsBoundRSS: a record whose outputs (3 million) or state writes
// (8 x 16 MiB) exceed the per-batch host limits is dead-lettered with its
// own code, the other record is processed, and the process's RSS stays
// bounded meanwhile.
func TestHostLimitsBoundRSS(t *testing.T) {
	wasm := filepath.Join(t.TempDir(), "greedy.wasm")
	if err := os.WriteFile(wasm, testutil.WAT(t, greedyWAT), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		record string // a JSON line; its first byte picks the behaviour
		code   string
	}{
		{"7", "105 OUTPUT_LIMIT"},
		{"8", "106 STATE_LIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			dir := t.TempDir()
			data, in := filepath.Join(dir, "data"), filepath.Join(dir, "in.jsonl")
			writeLines(t, in, []string{tt.record, "1"})
			run := startCLI(t, testEnv(t), "run", "--plugin", wasm, "--input", "file:"+in,
				"--output", "file:"+filepath.Join(dir, "out.jsonl"), "--data-dir", data, "--max-memory", "512")
			var maxRSS int64
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			timeout := time.After(2 * time.Minute)
		wait:
			for {
				select {
				case err := <-run.done:
					if err != nil {
						t.Fatalf("run: %v\n%s", err, run.stderr.String())
					}
					break wait
				case <-tick.C:
					maxRSS = max(maxRSS, rssOf(run.cmd.Process.Pid))
				case <-timeout:
					run.cmd.Process.Kill()
					t.Fatal("run did not finish")
				}
			}
			t.Logf("peak RSS %d MiB", maxRSS>>20)
			if maxRSS > 350<<20 { // 445 MiB (state) and 1,091 MiB (outputs) without the limits
				t.Errorf("RSS reached %d MiB", maxRSS>>20)
			}
			if !strings.Contains(run.stderr.String(), "2 records in, 0 out") {
				t.Errorf("stderr lacks the summary of both records:\n%s", run.stderr.String())
			}
			list := runCLI(t, "", nil, "dlq", "list", "--data-dir", data)
			if !strings.Contains(list.stdout, tt.code) || !strings.Contains(list.stdout, "in.jsonl line 1") {
				t.Errorf("dlq list lacks %q for in.jsonl line 1:\n%s", tt.code, list.stdout)
			}
		})
	}
}
