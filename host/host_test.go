package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

func newTestEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = os.Getenv("HELIOS_TEST_CACHE") // share compiled Go guests between runs when set
	}
	e, err := NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func mustCompile(t testing.TB, e *Engine, name string, wasm []byte) *Plugin {
	t.Helper()
	p, err := e.Compile(context.Background(), name, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustInstance(t testing.TB, p *Plugin, cfg InstanceConfig) *Instance {
	t.Helper()
	inst, err := p.NewInstance(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close(context.Background()) })
	return inst
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testutil.MapState is a host.StateStore over a map, for tests.
func TestCompileErrors(t *testing.T) { forEachEngine(t, testCompileErrors) }

func testCompileErrors(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	tests := []struct {
		name   string
		wasm   func(t *testing.T) []byte
		kind   error
		detail string
	}{
		{"not wasm", func(*testing.T) []byte { return []byte("#!/bin/sh\necho hi\n") }, ErrNotWasm, "magic"},
		{"empty file", func(*testing.T) []byte { return nil }, ErrNotWasm, "magic"},
		{"truncated module", func(*testing.T) []byte { return []byte("\x00asm\x01\x00\x00\x00\x01\x05") }, ErrInvalidModule, ""},
		{"missing process", func(t *testing.T) []byte { return watOperator{omit: "helios_process"}.build(t) }, ErrMissingExport, "missing export helios_process"},
		{"missing alloc", func(t *testing.T) []byte { return watOperator{omit: "helios_alloc"}.build(t) }, ErrMissingExport, "missing export helios_alloc"},
		{"wrong abi version", func(t *testing.T) []byte { return watOperator{version: "7"}.build(t) }, ErrABIVersion, "speaks ABI v7, this host speaks v1"},
		{"unknown import", func(t *testing.T) []byte {
			return watOperator{imports: `(import "env" "now" (func $now (result i64)))`}.build(t)
		}, ErrUnknownImport, "env.now"},
		{"unknown host function", func(t *testing.T) []byte {
			return watOperator{imports: `(import "helios_v1" "http_get" (func $h (param i32) (result i32)))`}.build(t)
		}, ErrUnknownImport, "helios_v1.http_get"},
		{"mistyped host function", func(t *testing.T) []byte {
			return watOperator{imports: `(import "helios_v1" "log" (func $log2 (param i64)))`}.build(t)
		}, ErrUnknownImport, "helios_v1.log(i64) -> () has the wrong signature, want (i32,i32,i32) -> ()"},
		{"host function missing its result", func(t *testing.T) []byte {
			return watOperator{imports: `(import "helios_v1" "state_delete" (func $del2 (param i32 i32)))`}.build(t)
		}, ErrUnknownImport, "helios_v1.state_delete(i32,i32) -> () has the wrong signature, want (i32,i32) -> (i32)"},
		{"log with a result", func(t *testing.T) []byte {
			return watOperator{imports: `(import "helios_v1" "log" (func $log3 (param i32 i32 i32) (result i32)))`}.build(t)
		}, ErrUnknownImport, "helios_v1.log(i32,i32,i32) -> (i32) has the wrong signature, want (i32,i32,i32) -> ()"},
		{"mistyped export", func(t *testing.T) []byte {
			return watOperator{omit: "helios_init", extra: `(func (export "helios_init") (param i32 i32) (result i32) (i32.const 0))`}.build(t)
		}, ErrMissingExport, "export helios_init has type (i32,i32) -> (i32), want (i32,i32) -> (i64)"},
		{"initial memory over the limit", func(t *testing.T) []byte {
			return testutil.WAT(t, `(module (memory (export "memory") 5000))`)
		}, ErrMemoryTooLarge, "min 5000 pages (312 Mi) over limit of 2048 pages"},
		{"start traps", func(t *testing.T) []byte {
			return watOperator{extra: `(func $s unreachable) (start $s)`}.build(t)
		}, ErrInstantiate, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Compile(context.Background(), "bad.wasm", tt.wasm(t))
			if !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, want %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.detail) || !strings.Contains(err.Error(), "bad.wasm") {
				t.Fatalf("error %q does not name the plugin or contain %q", err, tt.detail)
			}
			if !IsLoadError(err) {
				t.Fatalf("%v is not a load error", err)
			}
		})
	}
}

func testRecords(n int) []abi.Record {
	recs := make([]abi.Record, n)
	for i := range recs {
		recs[i] = abi.Record{
			Key:       []byte("key-" + string(rune('a'+i%26))),
			Value:     bytes.Repeat([]byte{byte(i), 0, 0xff, '\n'}, i%7),
			Partition: 3, Offset: int64(1000 + i), Timestamp: int64(1700000000000 + i),
		}
		if i%3 == 0 {
			recs[i].Headers = []abi.Header{{Key: []byte("h"), Value: []byte{byte(i)}}, {Key: []byte("empty")}}
		}
		if i%5 == 0 {
			recs[i].Key = nil
		}
		recs[i].ID[0], recs[i].ID[15] = byte(i), byte(i>>8)
	}
	return recs
}

func TestPassthroughRoundTrip(t *testing.T) { forEachEngine(t, testPassthroughRoundTrip) }

func testPassthroughRoundTrip(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	p := mustCompile(t, e, "passthrough.wat", testutil.WAT(t, string(readFile(t, "testdata/passthrough.wat"))))
	inst := mustInstance(t, p, InstanceConfig{})
	for _, n := range []int{0, 1, 7, 10_000} {
		recs := testRecords(n)
		recs = append(recs[:0:0], recs...)
		if n == 7 {
			recs[3].Value = bytes.Repeat([]byte("x"), 3<<20) // larger than the first input buffer
		}
		ents, err := inst.Process(context.Background(), recs, nil)
		if err != nil {
			t.Fatalf("batch of %d: %v", n, err)
		}
		if len(ents) != n {
			t.Fatalf("batch of %d: %d entries", n, len(ents))
		}
		for i, en := range ents {
			r := recs[i]
			want := abi.AppendKVBlock(nil, r.Headers)
			if en.Kind != abi.EntryKindRecord || en.InputIndex != uint32(i) || !bytes.Equal(en.Key, r.Key) ||
				!bytes.Equal(en.Value, r.Value) || !bytes.Equal(en.Headers, want) || en.Timestamp != r.Timestamp {
				t.Fatalf("batch of %d, entry %d: got %+v, want record %+v", n, i, en, r)
			}
		}
	}
}

// TestHostFunctionsByteForByte calls every host function from a WAT module
// and checks the exact bytes each one leaves in guest memory.
func TestHostFunctionsByteForByte(t *testing.T) { forEachEngine(t, testHostFunctionsByteForByte) }

func testHostFunctionsByteForByte(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	process := `
    (i32.store (i32.const 2000) (call $state_put (i32.const 1024) (i32.const 2) (i32.const 1100) (i32.const 5)))
    (i32.store (i32.const 2004) (call $state_get (i32.const 1024) (i32.const 2) (i32.const 3000) (i32.const 16)))
    (i32.store (i32.const 2008) (call $state_get (i32.const 1024) (i32.const 2) (i32.const 3100) (i32.const 2)))
    (i32.store (i32.const 2012) (call $state_get (i32.const 1200) (i32.const 2) (i32.const 3000) (i32.const 16)))
    (i32.store (i32.const 2016) (call $state_put (i32.const 1030) (i32.const 1) (i32.const 1100) (i32.const 0)))
    (i32.store (i32.const 2020) (call $state_get (i32.const 1030) (i32.const 1) (i32.const 3300) (i32.const 0)))
    (i32.store (i32.const 2024) (call $state_put (i32.const 0xfffffff0) (i32.const 32) (i32.const 1100) (i32.const 5)))
    (i32.store (i32.const 2028) (call $state_get (i32.const 1024) (i32.const 2) (i32.const 0xfffffff0) (i32.const 16)))
    (i32.store (i32.const 2032) (call $state_put (i32.const 1024) (i32.const 70000) (i32.const 1100) (i32.const 5)))
    (i32.store (i32.const 2036) (call $config_get (i32.const 1300) (i32.const 4) (i32.const 3200) (i32.const 16)))
    (i32.store (i32.const 2040) (call $config_get (i32.const 1200) (i32.const 2) (i32.const 3200) (i32.const 16)))
    (i32.store (i32.const 2044) (call $state_put (i32.const 1040) (i32.const 3) (i32.const 1100) (i32.const 5)))
    (i32.store (i32.const 2048) (call $state_delete (i32.const 1040) (i32.const 3)))
    (i32.store (i32.const 2052) (call $state_get (i32.const 1040) (i32.const 3) (i32.const 3000) (i32.const 16)))
    (i32.store (i32.const 2056) (call $state_put (i32.const 0xfffffff0) (i32.const 0) (i32.const 0xffffffff) (i32.const 0)))
    (i32.store (i32.const 2060) (call $state_get (i32.const 0xfffffff0) (i32.const 0) (i32.const 3000) (i32.const 16)))
    (call $log (i32.const 2) (i32.const 1100) (i32.const 5))
    (call $empty)`
	init := `
    (i32.store (i32.const 2100) (call $state_put (i32.const 1024) (i32.const 2) (i32.const 1100) (i32.const 5)))
    (i32.store (i32.const 2104) (call $config_get (i32.const 1300) (i32.const 4) (i32.const 3400) (i32.const 16)))
    (i64.const 0)`
	extra := `(data (i32.const 1024) "k1") (data (i32.const 1030) "e") (data (i32.const 1040) "tmp")
	(data (i32.const 1100) "hello") (data (i32.const 1200) "zz") (data (i32.const 1300) "mode")`
	var logs bytes.Buffer
	p := mustCompile(t, e, "probe.wasm", watOperator{process: process, init: init, extra: extra}.build(t))
	inst := mustInstance(t, p, InstanceConfig{Config: []abi.Header{{Key: []byte("mode"), Value: []byte("first")}, {Key: []byte("mode"), Value: []byte("fast")}},
		Logger: newBufLogger(&logs)})
	st := testutil.MapState{}
	if _, err := inst.Process(context.Background(), []abi.Record{{Value: []byte("v"), Offset: 41}}, st); err != nil {
		t.Fatal(err)
	}
	mem := inst.mod.memory()
	i32At := func(off uint32) int32 { b, _ := mem.Read(off, 4); return int32(binary.LittleEndian.Uint32(b)) }
	bytesAt := func(off, n uint32) []byte { b, _ := mem.Read(off, n); return append([]byte(nil), b...) }
	checks := []struct {
		what string
		at   uint32
		want int32
	}{
		{"put k1", 2000, abi.StatusOK},
		{"get k1 (fits)", 2004, 5},
		{"get k1 (buffer too small: length, nothing copied)", 2008, 5},
		{"get missing", 2012, abi.StatusNotFound},
		{"put empty value", 2016, abi.StatusOK},
		{"get empty value", 2020, 0},
		{"put out of bounds key", 2024, abi.StatusBadArgument},
		{"get into out of bounds buffer", 2028, abi.StatusBadArgument},
		{"put oversized key", 2032, abi.StatusTooLarge},
		{"config_get mode (last wins)", 2036, 4},
		{"config_get missing", 2040, abi.StatusNotFound},
		{"put tmp", 2044, abi.StatusOK},
		{"delete tmp", 2048, abi.StatusOK},
		{"get deleted", 2052, abi.StatusNotFound},
		{"put empty key and value with dangling pointers", 2056, abi.StatusOK},
		{"get empty key with a dangling pointer", 2060, 0},
		{"state_put during init", 2100, abi.StatusNotAllowed},
		{"config_get during init", 2104, 4},
	}
	for _, c := range checks {
		if got := i32At(c.at); got != c.want {
			t.Errorf("%s: status %d, want %d", c.what, got, c.want)
		}
	}
	if got := bytesAt(3000, 8); !bytes.Equal(got, []byte("hello\x00\x00\x00")) {
		t.Errorf("state_get wrote %q at 3000, want hello and nothing after", got)
	}
	if got := bytesAt(3100, 4); !bytes.Equal(got, make([]byte, 4)) {
		t.Errorf("state_get with a small buffer wrote %q", got)
	}
	if got := bytesAt(3200, 6); !bytes.Equal(got, []byte("fast\x00\x00")) {
		t.Errorf("config_get wrote %q", got)
	}
	if got := bytesAt(3400, 6); !bytes.Equal(got, []byte("fast\x00\x00")) {
		t.Errorf("config_get during init wrote %q", got)
	}
	if len(st) != 3 || string(st["k1"]) != "hello" || st["e"] == nil || len(st["e"]) != 0 || st[""] == nil {
		t.Errorf("state store holds %q", st)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "msg=hello") || !strings.Contains(logs.String(), "plugin=probe.wasm") ||
		!strings.Contains(logs.String(), "offset=41") {
		t.Errorf("guest log line missing or unlabelled: %q", logs.String())
	}
}

// TestHostileModules: each misbehaviour gives a precise typed error, and the
// same Instance processes the next (good) batch normally.
func TestHostileModules(t *testing.T) { forEachEngine(t, testHostileModules) }

func testHostileModules(t *testing.T, engine string) {
	tests := []struct {
		name    string
		process string
		extra   string
		cfg     Config
		kind    error
		detail  string
	}{
		{name: "trap mid-batch", process: `(if (call $bad (local.get $ptr)) (then unreachable)) (call $empty)`, kind: ErrTrap, detail: "unreachable"},
		{name: "infinite loop", process: `(if (call $bad (local.get $ptr)) (then (loop $l (br $l)))) (call $empty)`,
			cfg: Config{BatchTimeout: 200 * time.Millisecond}, kind: ErrDeadline, detail: "longer than 200ms"},
		{name: "unbounded memory.grow", process: `(if (call $bad (local.get $ptr)) (then (loop $l (br_if $l (i32.ge_s (memory.grow (i32.const 16)) (i32.const 0)))) unreachable)) (call $empty)`,
			cfg: Config{MemoryLimitMiB: 16}, kind: ErrMemoryLimit, detail: "of the 16 MiB limit"},
		{name: "output outside memory", process: `(if (result i64) (call $bad (local.get $ptr)) (then (i64.const 0x00fffff000000100)) (else (call $empty)))`,
			kind: ErrBadOutput, detail: "lies outside the module's"},
		{name: "oversized output", process: `(if (result i64) (call $bad (local.get $ptr)) (then (i64.const 0x0000100000010000)) (else (call $empty)))`,
			cfg: Config{MaxOutputBytes: 1024}, kind: ErrOutputLimit, detail: "exceeds the 1024-byte limit"},
		{name: "garbage output", process: `(if (result i64) (call $bad (local.get $ptr)) (then (i64.const 0x0000040000000010)) (else (call $empty)))`,
			kind: ErrBadOutput, detail: "magic"},
		{name: "entry for a missing input", process: `(if (result i64) (call $bad (local.get $ptr)) (then (i64.const 0x0000138800000030)) (else (call $empty)))`,
			extra: `(data (i32.const 5000) "HLO1\00\00\00\00\01\00\00\00\00\00\00\00\00\00\00\00\09\00\00\00")`, kind: ErrBadOutput, detail: "input index 9 out of range"},
		{name: "batch failure", process: `(if (result i64) (call $bad (local.get $ptr)) (then (i64.const 0x0000138800000014)) (else (call $empty)))`,
			extra: `(data (i32.const 5000) "HLO1\02\00\00\00\04\00\00\00\00\00\00\00oops")`, kind: ErrBatchFailed, detail: "oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(t, withEngine(tt.cfg, engine))
			p := mustCompile(t, e, "hostile.wasm", watOperator{process: tt.process, extra: tt.extra}.build(t))
			inst := mustInstance(t, p, InstanceConfig{Partition: 2})
			good := []abi.Record{{Value: []byte("good")}}
			if _, err := inst.Process(context.Background(), good, nil); err != nil {
				t.Fatalf("good batch: %v", err)
			}
			_, err := inst.Process(context.Background(), []abi.Record{{Value: []byte("bad")}}, nil)
			var pe *PluginError
			if !errors.Is(err, tt.kind) || !errors.As(err, &pe) {
				t.Fatalf("got %v, want %v", err, tt.kind)
			}
			if pe.Plugin != "hostile.wasm" || pe.Batch != 2 || pe.Partition != 2 || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("error %q lacks plugin/batch/partition or %q", err, tt.detail)
			}
			if IsLoadError(err) {
				t.Fatalf("a batch failure counted as a load error: %v", err)
			}
			if _, err := inst.Process(context.Background(), good, nil); err != nil {
				t.Fatalf("instance unusable after %s: %v", tt.name, err)
			}
		})
	}
}

// TestDeterministicWASI: WASI clocks and randomness depend only on the batch,
// so two instances (or a replay) see the same values.
func TestDeterministicWASI(t *testing.T) { forEachEngine(t, testDeterministicWASI) }

func testDeterministicWASI(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	wasm := watOperator{
		imports: `(import "wasi_snapshot_preview1" "random_get" (func $rand (param i32 i32) (result i32)))
		(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))`,
		// Output one record whose value is 16 random bytes + wall clock + monotonic clock.
		process: `(drop (call $rand (i32.const 5048) (i32.const 16)))
		(drop (call $clock (i32.const 0) (i64.const 1) (i32.const 5064)))
		(drop (call $clock (i32.const 1) (i64.const 1) (i32.const 5072)))
		(i64.const 0x0000138800000050)`,
		extra: `(data (i32.const 5000) "HLO1\00\00\00\00\01\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\20\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")`,
	}.build(t)
	p := mustCompile(t, e, "wasi.wasm", wasm)
	run := func(inst *Instance, recs []abi.Record) []byte {
		ents, err := inst.Process(context.Background(), recs, nil)
		if err != nil || len(ents) != 1 {
			t.Fatalf("process: %v (%d entries)", err, len(ents))
		}
		return append([]byte(nil), ents[0].Value...)
	}
	b1 := []abi.Record{{Value: []byte("a"), Timestamp: 1_700_000_000_123, ID: [16]byte{1}}}
	b2 := []abi.Record{{Value: []byte("a"), Timestamp: 1_700_000_000_123, ID: [16]byte{2}}}
	x, y := mustInstance(t, p, InstanceConfig{}), mustInstance(t, p, InstanceConfig{})
	first := run(x, b1)
	run(x, b2)
	if again := run(y, b1); !bytes.Equal(first, again) {
		t.Fatalf("same batch, different WASI values:\n%x\n%x", first, again)
	}
	if other := run(y, b2); bytes.Equal(first[:16], other[:16]) {
		t.Fatal("different batches got the same random bytes")
	}
	if wall := binary.LittleEndian.Uint64(first[16:]); wall != 1_700_000_000_123*1e6 {
		t.Fatalf("walltime %d, want the batch's event time", wall)
	}
}

// TestDeadlineWhileGC: a guest spinning in native code must not stall a
// stop-the-world GC (which would hang the process); the deadline still
// fires. Before the tick import, this hung intermittently.
func TestDeadlineWhileGC(t *testing.T) { forEachEngine(t, testDeadlineWhileGC) }

func testDeadlineWhileGC(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine, BatchTimeout: 300 * time.Millisecond})
	p := mustCompile(t, e, "spin.wasm", watOperator{process: `(loop $l (br $l)) (call $empty)`}.build(t))
	inst := mustInstance(t, p, InstanceConfig{})
	stop := make(chan struct{})
	gcs := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				gcs <- n
				return
			default:
				runtime.GC()
				n++
			}
		}
	}()
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, err := inst.Process(context.Background(), []abi.Record{{Value: []byte("x")}}, nil)
		if !errors.Is(err, ErrDeadline) || time.Since(start) > 5*time.Second {
			t.Fatalf("got %v after %v, want ErrDeadline after ~300ms", err, time.Since(start))
		}
	}
	close(stop)
	if n := <-gcs; n < 3 {
		t.Fatalf("only %d GCs completed while the guest spun", n)
	}
}
