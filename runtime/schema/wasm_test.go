package schema

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/storage"
)

// orderV3 is orderV2 with amount (currency units) replaced by amount_cents:
// not readable from v2 by the rules (amount_cents has no default), so
// registered with the cents migrator (plugins/examples/{go,rust}/cents).
const orderV3 = `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount_cents","type":"integer"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`

func migratorModule(t *testing.T, lang string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.Plugin(t, lang, "cents"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wasmRegistry is a registry whose migrators compile through the tests'
// cache, closed at the end of the test.
func wasmRegistry(t *testing.T, db *storage.DB) *Registry {
	r := New(db).WithHostConfig(host.Config{CacheDir: os.Getenv("HELIOS_TEST_CACHE")})
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// watMigrator is a module whose helios_migrate returns an empty output
// for an empty batch and, for any other, traps (trap) or emits nothing.
func watMigrator(t *testing.T, trap bool) []byte { return testutil.WAT(t, watText(trap)) }

func watText(trap bool) string {
	body := "(call $empty)"
	if trap {
		body = "(if (i32.load (i32.add (local.get $ptr) (i32.const 4))) (then unreachable)) (call $empty)"
	}
	return `(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "helios_abi_version") (result i32) (i32.const 1))
  (func (export "helios_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func (export "helios_dealloc") (param i32 i32))
  (func (export "helios_init") (param i32 i32) (result i64) (i64.const 0))
  (func $empty (result i64) (i64.or (i64.shl (i64.const 4000) (i64.const 32)) (i64.const 16)))
  (func (export "helios_process") (param i32 i32) (result i64) (call $empty))
  (func (export "helios_migrate") (param $ptr i32) (param $len i32) (result i64) ` + body + `)
  (data (i32.const 4000) "HLO1\00\00\00\00\00\00\00\00\00\00\00\00"))`
}

func registerV1V2(t *testing.T, r *Registry) {
	t.Helper()
	for _, v := range []string{orderV1, orderV2} {
		if _, _, err := r.Register("orders", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigratorChain: v1 -> v2 by the rules, v2 -> v3 by the Go migrator,
// v3 -> v4 by the rules again; the registration survives a reopen; a
// record written with any version reads the same at v4.
func TestMigratorChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := wasmRegistry(t, db)
	registerV1V2(t, r)
	ctx := context.Background()
	wasm := migratorModule(t, "go")
	sample := [][]byte{[]byte(`{"order_id":1,"amount":2.5,"customer_id":3}`), []byte(`{"order_id":2,"amount":0.29}`)}
	// BACKWARD would refuse v3 by the rules: the migrator is the check.
	if err := r.Check("orders", []byte(orderV3)); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("v3 by the rules alone: %v, want ErrIncompatible", err)
	}
	v3, created, err := r.RegisterMigrator(ctx, "orders", []byte(orderV3), wasm, sample)
	if err != nil || !created || v3.Number != 3 || len(v3.Migrators) != 1 || v3.Migrators[0].Sample != 2 || v3.Migrators[0].Size != len(wasm) {
		t.Fatalf("register v3: %+v created=%v err=%v", v3, created, err)
	}
	v4 := strings.Replace(orderV3, `]}`, `,{"name":"note","type":"string","default":""}]}`, 1)
	if _, _, err := r.Register("orders", []byte(v4)); err != nil {
		t.Fatal(err)
	}
	r.Close(ctx)
	db.Close()

	db, err = storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r = wasmRegistry(t, db)
	for _, c := range []struct {
		from     int
		in, want string
	}{
		{1, `{"order_id":7,"amount":12.345}`, `{"order_id":7,"amount_cents":1235,"customer_id":0,"note":""}`},
		{2, `{"order_id":8,"amount":-0.005,"customer_id":9}`, `{"order_id":8,"amount_cents":-1,"customer_id":9,"note":""}`},
		{2, `{"customer_id":null,"amount":1e2,"order_id":9}`, `{"order_id":9,"amount_cents":10000,"customer_id":null,"note":""}`},
		{3, `{"order_id":10,"amount_cents":5}`, `{"order_id":10,"amount_cents":5,"customer_id":0,"note":""}`},
	} {
		out, err := r.Migrate(ctx, "orders", c.from, 4, [][]byte{[]byte(c.in)})
		if err != nil {
			t.Fatalf("from v%d %s: %v", c.from, c.in, err)
		}
		if string(out[0]) != c.want {
			t.Errorf("from v%d %s: got %s, want %s", c.from, c.in, out[0], c.want)
		}
	}
	// Downgrading across the migrator step uses the rules, which cannot.
	if _, err := r.Migrate(ctx, "orders", 3, 2, [][]byte{[]byte(`{"order_id":1,"amount_cents":5}`)}); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("downgrade v3 -> v2: %v, want ErrIncompatible", err)
	}
}

// TestMigratorReplaced: registering another module for the same version is
// a new registration, listed after the first; registering the one in use
// again changes nothing; Rust's module migrates as Go's did.
func TestMigratorReplaced(t *testing.T) {
	r, db := openRegistry(t)
	r = wasmRegistry(t, db)
	registerV1V2(t, r)
	ctx := context.Background()
	goMod, rustMod := migratorModule(t, "go"), migratorModule(t, "rust")
	if _, _, err := r.RegisterMigrator(ctx, "orders", []byte(orderV3), goMod, nil); err != nil {
		t.Fatal(err)
	}
	v, created, err := r.RegisterMigrator(ctx, "orders", []byte(orderV3), rustMod, nil)
	if err != nil || !created || v.Number != 3 || len(v.Migrators) != 2 || v.Migrator().Size != len(rustMod) {
		t.Fatalf("replace: %+v created=%v err=%v", v, created, err)
	}
	if v, created, err = r.RegisterMigrator(ctx, "orders", []byte(orderV3), rustMod, nil); err != nil || created || len(v.Migrators) != 2 {
		t.Fatalf("same module again: %+v created=%v err=%v", v, created, err)
	}
	got, err := r.Get("orders", 3)
	if err != nil || len(got.Migrators) != 2 || got.Migrators[0].Size != len(goMod) || got.Migrators[1].Size != len(rustMod) {
		t.Fatalf("stored v3: %+v %v", got, err)
	}
	if vs, _ := r.Versions("orders"); len(vs) != 3 {
		t.Fatalf("%d versions, want 3 (a replacement is not a version)", len(vs))
	}
	out, err := r.Migrate(ctx, "orders", 2, 3, [][]byte{[]byte(`{"order_id":1,"amount":2.5,"customer_id":3}`)})
	if err != nil || string(out[0]) != `{"order_id":1,"amount_cents":250,"customer_id":3}` {
		t.Fatalf("with the Rust module: %s %v", out, err)
	}
}

// TestMigratorBadInput: every way a migrator registration or migration can
// go wrong is refused with a precise error, and nothing is registered.
func TestMigratorBadInput(t *testing.T) {
	ctx := context.Background()
	goMod := migratorModule(t, "go")
	cases := []struct {
		name    string
		subject string
		text    string
		wasm    func(t *testing.T) []byte
		sample  []string
		is      error
		says    string
		index   int // sample record named, -1: none
	}{
		{"unknown subject", "users", orderV3, func(*testing.T) []byte { return goMod }, nil, ErrBadMigrator, `subject "users" has no version yet`, -1},
		{"version 1 has no previous", "orders", orderV1, func(*testing.T) []byte { return goMod }, nil, ErrBadMigrator, "no previous version", -1},
		{"not WebAssembly", "orders", orderV3, func(*testing.T) []byte { return []byte("#!/bin/sh") }, nil, ErrBadMigrator, "not a WebAssembly module", -1},
		{"wrong signature", "orders", orderV3, func(t *testing.T) []byte { return wrongSigModule(t) }, nil, ErrBadMigrator, "export helios_migrate has type (i32) -> (i64)", -1},
		{"no helios_migrate", "orders", orderV3, func(t *testing.T) []byte { return noMigrateModule(t) }, nil, ErrBadMigrator, "does not export helios_migrate", -1},
		{"an operator, not a migrator", "orders", orderV3, func(t *testing.T) []byte { return operatorModule(t) }, nil, ErrBadMigrator, "no schema migrator (helios.HandleMigrate)", -1},
		{"traps", "orders", orderV3, func(t *testing.T) []byte { return watMigrator(t, true) }, []string{`{"order_id":1,"amount":1}`}, ErrBadMigrator, "plugin trapped", 0},
		{"emits nothing", "orders", orderV3, func(t *testing.T) []byte { return watMigrator(t, false) }, []string{`{"order_id":1,"amount":1}`}, ErrBadMigrator, "emitted no record", 0},
		{"emits invalid records", "orders", strings.Replace(orderV3, `"amount_cents","type":"integer"`, `"amount_cents","type":"string"`, 1),
			func(*testing.T) []byte { return goMod }, []string{`{"order_id":1,"amount":1}`}, ErrBadMigrator, "its output does not match version 3: record does not match its schema: field amount_cents: want a string", 0},
		{"fails a record", "orders", orderV3, func(*testing.T) []byte { return goMod }, []string{`{"order_id":1,"amount":1}`, `{"order_id":2,"amount":1e300}`},
			ErrBadMigrator, "failed the record (code 3): amount is out of range", 1},
		{"sample not at the previous version", "orders", orderV3, func(*testing.T) []byte { return goMod }, []string{`{"order_id":"x","amount":1}`}, ErrBadRecord, "field order_id", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, db := openRegistry(t)
			r = wasmRegistry(t, db)
			registerV1V2(t, r)
			var sample [][]byte
			for _, s := range c.sample {
				sample = append(sample, []byte(s))
			}
			_, _, err := r.RegisterMigrator(ctx, c.subject, []byte(c.text), c.wasm(t), sample)
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.is, c.says)
			}
			var re *RecordError
			if errors.As(err, &re) != (c.index >= 0) || (re != nil && re.Index != c.index) {
				t.Fatalf("got %v, want sample record %d named", err, c.index)
			}
			if vs, _ := r.Versions("orders"); len(vs) != 2 {
				t.Fatalf("%d versions after a refused registration, want 2", len(vs))
			}
		})
	}
}

func wrongSigModule(t *testing.T) []byte {
	return testutil.WAT(t, strings.Replace(watText(false),
		`(param $ptr i32) (param $len i32) (result i64) (call $empty))`, `(param $ptr i32) (result i64) (call $empty))`, 1))
}

func noMigrateModule(t *testing.T) []byte {
	return testutil.WAT(t, strings.Replace(watText(false), `(export "helios_migrate")`, "", 1))
}

// operatorModule is a Go operator: the SDK exports helios_migrate, which
// fails every batch without a migrator.
func operatorModule(t *testing.T) []byte {
	b, err := os.ReadFile(testutil.GoPlugin(t, "uppercase"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMigratorRecordFailures: a registered migrator that traps on some
// records fails those alone (the batch is retried one record at a time),
// with the step and the reason; the others migrate.
func TestMigratorRecordFailures(t *testing.T) {
	r, db := openRegistry(t)
	r = wasmRegistry(t, db)
	registerV1V2(t, r)
	ctx := context.Background()
	if _, _, err := r.RegisterMigrator(ctx, "orders", []byte(orderV3), migratorModule(t, "go"), nil); err != nil {
		t.Fatal(err)
	}
	versions, err := r.Versions("orders")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := r.Chain(ctx, versions, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	recs := [][]byte{
		[]byte(`{"order_id":1,"amount":1.5}`),
		[]byte(`{"order_id":2}`),                // not v1: the rules step fails it
		[]byte(`{"order_id":3,"amount":1e300}`), // the migrator fails it
		[]byte(`{"order_id":4,"amount":0.07}`),
	}
	out, errs, err := Apply(ctx, steps, recs)
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0]) != `{"order_id":1,"amount_cents":150,"customer_id":0}` || string(out[3]) != `{"order_id":4,"amount_cents":7,"customer_id":0}` || out[1] != nil || out[2] != nil {
		t.Fatalf("outputs %q", out)
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrBadRecord) || !errors.Is(errs[2], ErrMigrator) || errs[3] != nil ||
		!strings.Contains(errs[2].Error(), "(version 2 to 3): failed the record (code 3): amount is out of range") {
		t.Fatalf("errors %v", errs)
	}

	// A trapping module, registered without a sample: each record that
	// makes it trap fails alone.
	r2, db2 := openRegistry(t)
	r2 = wasmRegistry(t, db2)
	registerV1V2(t, r2)
	if _, _, err := r2.RegisterMigrator(ctx, "orders", []byte(orderV3), watMigrator(t, true), nil); err != nil {
		t.Fatal(err)
	}
	_, err = r2.Migrate(ctx, "orders", 2, 3, recs[:1])
	var re *RecordError
	if !errors.As(err, &re) || re.Index != 0 || !errors.Is(err, ErrMigrator) || !strings.Contains(err.Error(), "plugin trapped") {
		t.Fatalf("trap: %v", err)
	}
	if _, err := r2.Migrate(ctx, "orders", 9, 3, recs[:1]); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("unknown version: %v", err)
	}
}
