package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// TestMigrateCallsTheMigrateExport: Migrate calls helios_migrate, not
// helios_process, through the same batch path (encoding, output decoding),
// and state calls are refused during it.
func TestMigrateCallsTheMigrateExport(t *testing.T) {
	forEachEngine(t, testMigrateCallsTheMigrateExport)
}

func testMigrateCallsTheMigrateExport(t *testing.T, engine string) {
	e := newTestEngine(t, withEngine(Config{}, engine))
	// helios_process passes records through; helios_migrate is the same
	// passthrough after a state_put whose status it stores at 2000, so a
	// migrate call is told apart (and state is seen refused).
	src := strings.Replace(string(readFile(t, "testdata/passthrough.wat")),
		`(func (export "helios_process") (param $in i32) (param $len i32) (result i64)`,
		`(func (export "helios_migrate") (param $in i32) (param $len i32) (result i64)
    (i32.store (i32.const 2000) (call $state_put (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
    (call $process (local.get $in) (local.get $len)))
  (func $process (export "helios_process") (param $in i32) (param $len i32) (result i64)`, 1)
	src = strings.Replace(src, "(module", `(module
  (import "helios_v1" "state_put" (func $state_put (param i32 i32 i32 i32) (result i32)))`, 1)
	p := mustCompile(t, e, "migrator.wat", testutil.WAT(t, src))
	if !p.Info().Migrator {
		t.Fatal("Info().Migrator is false for a module exporting helios_migrate")
	}
	inst := mustInstance(t, p, InstanceConfig{})
	recs := testRecords(5)
	ents, err := inst.Migrate(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(recs) {
		t.Fatalf("%d entries for %d records", len(ents), len(recs))
	}
	for i, en := range ents {
		if en.Kind != abi.EntryKindRecord || !bytes.Equal(en.Value, recs[i].Value) {
			t.Fatalf("entry %d: %+v, want record %q", i, en, recs[i].Value)
		}
	}
	u32At := func(ptr uint32) uint32 {
		b, _ := inst.mod.memory().Read(ptr, 4)
		return binary.LittleEndian.Uint32(b)
	}
	if status := u32At(2000); int32(status) != abi.StatusNotAllowed {
		t.Fatalf("state_put during helios_migrate returned %d, want %d (NOT_ALLOWED)", int32(status), abi.StatusNotAllowed)
	}
	// Process does not go through helios_migrate.
	inst.mod.memory().Write(2000, binary.LittleEndian.AppendUint32(nil, 7))
	if _, err := inst.Process(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	if v := u32At(2000); v != 7 {
		t.Fatalf("Process ran helios_migrate (marker %d)", v)
	}
}

// TestMigrateFailures: a module without helios_migrate, a migrate export
// that traps, one past the deadline and one with a malformed output all
// fail as an operator's batch would, with Op "migrate".
func TestMigrateFailures(t *testing.T) { forEachEngine(t, testMigrateFailures) }

func testMigrateFailures(t *testing.T, engine string) {
	e := newTestEngine(t, withEngine(Config{BatchTimeout: 200e6}, engine))
	ctx := context.Background()

	plain := mustInstance(t, mustCompile(t, e, "plain.wat", watOperator{}.build(t)), InstanceConfig{})
	if _, err := plain.Migrate(ctx, testRecords(1)); !errors.Is(err, ErrMissingExport) || !strings.Contains(err.Error(), "helios_migrate") {
		t.Fatalf("no export: got %v, want ErrMissingExport naming helios_migrate", err)
	}

	for _, tc := range []struct {
		name, body string
		kind       error
	}{
		{"trap", "unreachable", ErrTrap},
		{"deadline", "(loop $l (br $l)) (i64.const 0)", ErrDeadline},
		{"bad output", "(i64.const 0xffff000000000010)", ErrBadOutput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := watOperator{extra: `(func (export "helios_migrate") (param $ptr i32) (param $len i32) (result i64) ` + tc.body + `)`}
			p := mustCompile(t, e, "m.wat", w.build(t))
			inst := mustInstance(t, p, InstanceConfig{})
			_, err := inst.Migrate(ctx, testRecords(2))
			var pe *PluginError
			if !errors.As(err, &pe) || !errors.Is(err, tc.kind) || pe.Op != "migrate" {
				t.Fatalf("got %v, want a migrate PluginError of kind %v", err, tc.kind)
			}
			// The instance starts afresh, and helios_process still works.
			if _, err := inst.Process(ctx, testRecords(1), nil); err != nil {
				t.Fatalf("process after a failed migrate: %v", err)
			}
		})
	}
}

// TestMigrateWrongSignature: a mistyped helios_migrate refuses the module
// at load time, naming the export and the type expected.
func TestMigrateWrongSignature(t *testing.T) { forEachEngine(t, testMigrateWrongSignature) }

func testMigrateWrongSignature(t *testing.T, engine string) {
	e := newTestEngine(t, withEngine(Config{}, engine))
	w := watOperator{extra: `(func (export "helios_migrate") (param i32) (result i32) (i32.const 0))`}
	_, err := e.Compile(context.Background(), "m.wat", w.build(t))
	if !errors.Is(err, ErrMissingExport) || !strings.Contains(err.Error(), "export helios_migrate has type (i32) -> (i32), want (i32,i32) -> (i64)") {
		t.Fatalf("got %v", err)
	}
}
