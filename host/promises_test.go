package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// watBytes renders b as a WAT data string.
func watBytes(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "\\%02x", c)
	}
	return s.String()
}

// fixedOutput is a module whose helios_process returns out (kept at 5000)
// whatever the batch, after running pre.
func fixedOutput(t *testing.T, out []byte, pre string) []byte {
	t.Helper()
	return watOperator{
		process: fmt.Sprintf(`%s (i64.or (i64.shl (i64.const 5000) (i64.const 32)) (i64.const %d))`, pre, len(out)),
		extra:   fmt.Sprintf(`(data (i32.const 5000) "%s")`, watBytes(out)),
	}.build(t)
}

// TestFailedInputLeavesNoRecords: records emitted for an input that also has
// a failed entry are dropped, before or after the failed entry, and only its
// first failed entry counts (abi.md: emit either records or one failed entry
// for an input). Before, the host returned them all: the pipeline committed
// the records and dead-lettered the input.
func TestFailedInputLeavesNoRecords(t *testing.T) { forEachEngine(t, testFailedInputLeavesNoRecords) }

func testFailedInputLeavesNoRecords(t *testing.T, engine string) {
	var w abi.OutputWriter
	w.Reset()
	w.Emit(0, nil, []byte("a0"), nil, 1)
	w.Fail(0, abi.FailGeneric, "zero is bad")
	w.Emit(0, nil, []byte("a0-after"), nil, 1)
	w.Emit(1, []byte("k"), []byte("b1"), nil, 2)
	w.Emit(1, nil, []byte("b1-second"), nil, 2)
	w.Emit(2, nil, []byte("c2"), nil, 3)
	w.Fail(2, 1000, "two is bad")
	w.Fail(2, 1001, "two again")
	w.Fail(3, abi.FailInvalidInput, "three is bad")
	w.Emit(4, nil, []byte("e4"), nil, 5)
	out := append([]byte(nil), w.Finish()...)

	e := newTestEngine(t, Config{Engine: engine})
	p := mustCompile(t, e, "mixed.wasm", fixedOutput(t, out, ""))
	inst := mustInstance(t, p, InstanceConfig{})
	ents, err := inst.Process(context.Background(), testRecords(5), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range ents {
		if en.Kind == abi.EntryKindFailed {
			got = append(got, fmt.Sprintf("%d:failed %d %s", en.InputIndex, en.Code, en.Value))
		} else {
			got = append(got, fmt.Sprintf("%d:%s=%s", en.InputIndex, en.Key, en.Value))
		}
	}
	want := []string{"0:failed 1 zero is bad", "1:k=b1", "1:=b1-second", "2:failed 1000 two is bad", "3:failed 3 three is bad", "4:=e4"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("entries\n got %q\nwant %q", got, want)
	}
}

// TestFailedRecordStateWritesKept pins what abi.md states: the host cannot
// tell which record a state write belongs to, so the writes a raw module
// makes during the call reach the batch's state even when it then fails
// the record; dropping them is the module's job (the SDKs buffer per record).
func TestFailedRecordStateWritesKept(t *testing.T) { forEachEngine(t, testFailedRecordStateWritesKept) }

func testFailedRecordStateWritesKept(t *testing.T, engine string) {
	var w abi.OutputWriter
	w.Reset()
	w.Fail(0, abi.FailGeneric, "bad")
	out := append([]byte(nil), w.Finish()...)
	wasm := watOperator{
		process: fmt.Sprintf(`(drop (call $state_put (i32.const 1024) (i32.const 2) (i32.const 1100) (i32.const 5)))
		(i64.or (i64.shl (i64.const 5000) (i64.const 32)) (i64.const %d))`, len(out)),
		extra: fmt.Sprintf(`(data (i32.const 1024) "k1") (data (i32.const 1100) "hello") (data (i32.const 5000) "%s")`, watBytes(out)),
	}.build(t)
	e := newTestEngine(t, Config{Engine: engine})
	inst := mustInstance(t, mustCompile(t, e, "raw.wasm", wasm), InstanceConfig{})
	st := testutil.MapState{}
	ents, err := inst.Process(context.Background(), testRecords(1), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Kind != abi.EntryKindFailed {
		t.Fatalf("entries %+v, want one failed entry", ents)
	}
	if string(st["k1"]) != "hello" {
		t.Fatalf("state %q: the write made before the failure did not reach the batch's state", st)
	}
}

// TestAllocFailure: what abi.md says of a helios_alloc that cannot
// allocate. Trapping fails the batch like any trap (the pipeline isolates
// the record that needed the memory); returning a pointer whose block is not
// inside memory is a malformed result. Either way the next batch runs on a
// fresh instance.
func TestAllocFailure(t *testing.T) { forEachEngine(t, testAllocFailure) }

func testAllocFailure(t *testing.T, engine string) {
	tests := []struct {
		name, onFail string
		kind         error
		detail       string
	}{
		{"traps", `unreachable`, ErrTrap, "unreachable"},
		{"returns a pointer outside memory", `(return (i32.const -1))`, ErrBadOutput, "helios_alloc(262144) returned 4294967295, outside the module's"},
		{"returns 0 for a block larger than memory", `(return (i32.const 0))`, ErrBadOutput, "helios_alloc(262144) returned 0, outside the module's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A bump allocator that refuses blocks over 100,000 bytes.
			alloc := fmt.Sprintf(`(func (export "helios_alloc") (param $n i32) (result i32) (local $p i32)
				(if (i32.gt_u (local.get $n) (i32.const 100000)) (then %s))
				(local.set $p (global.get $heap)) (global.set $heap (i32.add (local.get $p) (local.get $n))) (local.get $p))`, tt.onFail)
			e := newTestEngine(t, Config{Engine: engine})
			inst := mustInstance(t, mustCompile(t, e, "alloc.wasm", watOperator{omit: "helios_alloc", extra: alloc}.build(t)), InstanceConfig{})
			small := []abi.Record{{Value: []byte("x")}}
			if _, err := inst.Process(context.Background(), small, nil); err != nil {
				t.Fatal(err)
			}
			big := []abi.Record{{Value: make([]byte, 200_000)}} // needs a 256 KiB input buffer
			_, err := inst.Process(context.Background(), big, nil)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("got %v, want %v with %q", err, tt.kind, tt.detail)
			}
			if _, err := inst.Process(context.Background(), small, nil); err != nil {
				t.Fatalf("after the failed allocation: %v", err)
			}
		})
	}
}

// TestConfigBlockAsGiven: the host passes the --config pairs to helios_init
// as given, repeats included (it removes none), and config_get, in
// helios_init as in helios_process, returns the last value of a key; a key
// given with an empty value is present (length 0, not NOT_FOUND).
func TestConfigBlockAsGiven(t *testing.T) { forEachEngine(t, testConfigBlockAsGiven) }

func testConfigBlockAsGiven(t *testing.T, engine string) {
	cfg := []abi.Header{{Key: []byte("mode"), Value: []byte("first")}, {Key: []byte("empty")}, {Key: []byte("expr"), Value: []byte("a=b")}, {Key: []byte("mode"), Value: []byte("fast")}}
	init := `(memory.copy (i32.const 7000) (local.get $ptr) (local.get $len)) (i32.store (i32.const 6996) (local.get $len))
	(i32.store (i32.const 2100) (call $config_get (i32.const 1300) (i32.const 4) (i32.const 3400) (i32.const 16)))
	(i32.store (i32.const 2104) (call $config_get (i32.const 1310) (i32.const 5) (i32.const 3500) (i32.const 16)))
	(i32.store (i32.const 2108) (call $config_get (i32.const 1320) (i32.const 4) (i32.const 3600) (i32.const 16)))
	(i32.store (i32.const 2112) (call $config_get (i32.const 1330) (i32.const 4) (i32.const 3700) (i32.const 16)))
	(i64.const 0)`
	extra := `(data (i32.const 1300) "mode") (data (i32.const 1310) "empty") (data (i32.const 1320) "expr") (data (i32.const 1330) "none")`
	e := newTestEngine(t, Config{Engine: engine})
	inst := mustInstance(t, mustCompile(t, e, "config.wasm", watOperator{init: init, extra: extra}.build(t)), InstanceConfig{Config: cfg})
	mem := inst.mod.memory()
	nb, _ := mem.Read(6996, 4)
	n := binary.LittleEndian.Uint32(nb)
	block, _ := mem.Read(7000, n)
	if want := abi.AppendKVBlock(nil, cfg); string(block) != string(want) {
		t.Fatalf("helios_init got config block %q, want every pair in order %q", block, want)
	}
	for _, c := range []struct {
		what   string
		at, to uint32
		status int32
		value  string
	}{
		{"repeated key: the last", 2100, 3400, 4, "fast"},
		{"empty value: present", 2104, 3500, 0, ""},
		{"value holding '='", 2108, 3600, 3, "a=b"},
		{"absent", 2112, 3700, abi.StatusNotFound, ""},
	} {
		sb, _ := mem.Read(c.at, 4)
		st := binary.LittleEndian.Uint32(sb)
		v, _ := mem.Read(c.to, uint32(len(c.value)))
		if int32(st) != c.status || string(v) != c.value {
			t.Errorf("config_get in helios_init, %s: status %d value %q, want %d %q", c.what, int32(st), v, c.status, c.value)
		}
	}
}
