package host

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// fanoutProcess emits $fan empty outputs for input 0 when the batch is bad
// ("b..."), one otherwise.
const fanoutProcess = `(local $i i32) (local $n i32)
  (local.set $n (i32.const 1))
  (if (call $bad (local.get $ptr)) (then (local.set $n (global.get $fan))))
  (i32.store (i32.const 8000) (i32.const 0x314f4c48)) ;; "HLO1"
  (i32.store (i32.const 8004) (i32.const 0))
  (i32.store (i32.const 8008) (local.get $n))
  (i32.store (i32.const 8012) (i32.const 0))
  (memory.fill (i32.const 8016) (i32.const 0) (i32.mul (local.get $n) (i32.const 32)))
  (i64.or (i64.shl (i64.const 8000) (i64.const 32))
          (i64.extend_i32_u (i32.add (i32.const 16) (i32.mul (local.get $n) (i32.const 32)))))`

// TestOutputsPerBatchLimit: a batch with more outputs than the limit fails
// with ErrOutputLimit (a record failure code, so bisection can dead-letter
// the record), counted before decoding; at the limit it passes.
func TestOutputsPerBatchLimit(t *testing.T) { forEachEngine(t, testOutputsPerBatchLimit) }

func testOutputsPerBatchLimit(t *testing.T, engine string) {
	for _, tt := range []struct {
		fan  string
		want error
	}{{"10", nil}, {"11", ErrOutputLimit}} {
		t.Run(tt.fan, func(t *testing.T) {
			e := newTestEngine(t, Config{Engine: engine, MaxOutputsPerBatch: 10})
			op := watOperator{process: fanoutProcess, extra: `(global $fan i32 (i32.const ` + tt.fan + `))`}
			inst := mustInstance(t, mustCompile(t, e, "fanout.wasm", op.build(t)), InstanceConfig{})
			out, err := inst.Process(context.Background(), []abi.Record{{Value: []byte("bad")}}, nil)
			if tt.want == nil {
				if err != nil || len(out) != 10 {
					t.Fatalf("%d outputs, %v; want 10 outputs", len(out), err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "11 outputs for a batch of 1 records exceed the limit of 10") {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if code, ok := RecordFailCode(err); !ok || code != abi.FailOutputLimit {
				t.Fatalf("RecordFailCode = %d, %v", code, ok)
			}
			if out, err := inst.Process(context.Background(), []abi.Record{{Value: []byte("good")}}, nil); err != nil || len(out) != 1 {
				t.Fatalf("next batch: %d outputs, %v", len(out), err)
			}
		})
	}
}

// TestStateBytesPerBatchLimit: state writes past the per-batch limit stop
// the call with ErrStateLimit at the write that crosses it, which never
// reaches the store; the count starts again with the next batch.
func TestStateBytesPerBatchLimit(t *testing.T) { forEachEngine(t, testStateBytesPerBatchLimit) }

func testStateBytesPerBatchLimit(t *testing.T, engine string) {
	// Each batch puts keys "a", "b", "c" with 999-byte values (1000 bytes a
	// write), then deletes "z" (1 byte).
	const puts = `(drop (call $state_put (i32.const 100) (i32.const 1) (i32.const 1000) (i32.const 999)))
  (drop (call $state_put (i32.const 101) (i32.const 1) (i32.const 1000) (i32.const 999)))
  (drop (call $state_put (i32.const 102) (i32.const 1) (i32.const 1000) (i32.const 999)))
  (drop (call $state_delete (i32.const 103) (i32.const 1)))
  (call $empty)`
	tests := []struct {
		limit uint64
		want  error
		keys  string // keys in the store afterwards ("z" was there before)
	}{
		{limit: 3001, keys: "abc"},
		{limit: 3000, want: ErrStateLimit, keys: "abcz"}, // the delete crosses it
		{limit: 2500, want: ErrStateLimit, keys: "abz"},  // the third put crosses it
	}
	for _, tt := range tests {
		e := newTestEngine(t, Config{Engine: engine, MaxStateBytesPerBatch: tt.limit})
		op := watOperator{process: puts, extra: `(data (i32.const 100) "abcz")`}
		inst := mustInstance(t, mustCompile(t, e, "state.wasm", op.build(t)), InstanceConfig{})
		st := testutil.MapState{"z": []byte("old")}
		_, err := inst.Process(context.Background(), []abi.Record{{Value: []byte("x")}}, st)
		if !errors.Is(err, tt.want) || (tt.want != nil && !strings.Contains(err.Error(), "more than")) {
			t.Fatalf("limit %d: got %v, want %v", tt.limit, err, tt.want)
		}
		keys := slices.Sorted(maps.Keys(st))
		if strings.Join(keys, "") != tt.keys {
			t.Fatalf("limit %d: the store holds keys %q, want %q", tt.limit, keys, tt.keys)
		}
		if tt.want != nil {
			if code, ok := RecordFailCode(err); !ok || code != abi.FailStateLimit {
				t.Fatalf("RecordFailCode = %d, %v", code, ok)
			}
		}
	}
}
