package runtime

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/runtime/schema"
)

// The seed's orders, v1 -> v2 by the rules (customer_id added with
// default 0), v2 -> v3 by the cents migrator (amount becomes amount_cents).
var centsVersions = []string{
	`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`,
	`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`,
	`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount_cents","type":"integer"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`,
}

// TestPipelineSchemaWasmMigrator: a topic written under v1 (with and
// without the header), v2 and v3, interleaved, read at v3 through a chain
// whose v2 -> v3 step is the Go cents migrator: every record comes out at
// v3, in order; one the migrator fails is dead-lettered (code 112, as
// read, the migrator's message); the pipeline releases the migrator module.
func TestPipelineSchemaWasmMigrator(t *testing.T) {
	db := memDB(t)
	wasm, err := os.ReadFile(testutil.Plugin(t, "go", "cents"))
	if err != nil {
		t.Fatal(err)
	}
	reg := schema.New(db).WithEngine(sharedEngine())
	ctx := context.Background()
	for _, text := range centsVersions[:2] {
		if _, _, err := reg.Register("orders", []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := reg.RegisterMigrator(ctx, "orders", []byte(centsVersions[2]), wasm, nil); err != nil {
		t.Fatal(err)
	}
	reg.Close(ctx)
	latest, err := reg.Latest("orders")
	if err != nil {
		t.Fatal(err)
	}

	const n = 500
	var values, want []string
	var hs [][]abi.Header
	const bad = 321
	for i := 0; i < n; i++ {
		switch {
		case i == bad:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount":1e300}`, i)), append(hs, schemaHeaders("orders/1"))
		case i%4 == 0:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount":%d.25}`, i, i)), append(hs, nil) // no header: v1
			want = append(want, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d,"customer_id":0}`, i, i*100+25))
		case i%4 == 1:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount":%d}`, i, i)), append(hs, schemaHeaders("orders/1"))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d,"customer_id":0}`, i, i*100))
		case i%4 == 2:
			values, hs = append(values, fmt.Sprintf(`{"customer_id":%d,"amount":0.07,"order_id":%d}`, i%9, i)), append(hs, schemaHeaders("orders/2"))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"amount_cents":7,"customer_id":%d}`, i, i%9))
		default:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d}`, i, i)), append(hs, schemaHeaders("orders/3"))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d,"customer_id":0}`, i, i))
		}
	}
	op := testPlugin(t, "lowercase")
	live := sharedEngine().LivePlugins()
	p := logPipeline(t, db, values, hs, Config{Plugin: op, BatchSize: 64, Schema: latest})
	st, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := readTopic(t, db, "out")
	if st.RecordsIn != n || st.DeadLettered != 1 || len(out) != len(want) {
		t.Fatalf("stats %+v, %d outputs; want %d in, 1 dead-lettered, %d out", st, len(out), n, len(want))
	}
	for i, e := range out {
		if string(e.Value) != want[i] {
			t.Fatalf("output %d: %s, want %s", i, e.Value, want[i])
		}
	}
	var ents []DLQEntry
	p.DeadLetterQueue().List(func(e DLQEntry) error { ents = append(ents, e); return nil })
	if len(ents) != 1 || ents[0].Offset != bad || ents[0].Code != abi.FailSchema || string(ents[0].Value) != values[bad] ||
		!strings.Contains(ents[0].Error, "written as orders/1, read as orders/3: migrator ") ||
		!strings.Contains(ents[0].Error, "(version 2 to 3): failed the record (code 3): amount is out of range") {
		t.Fatalf("DLQ %+v", ents)
	}
	if got := sharedEngine().LivePlugins(); got != live {
		t.Fatalf("%d plugins live on the engine after the run, %d before: the migrator module was not released", got, live)
	}
}

// TestPipelineSchemaMigratorTraps: a migrator that traps on every record
// (registered without a sample) makes the pipeline isolate each record of
// its step and dead-letter it alone (code 112, "plugin trapped"); records
// that do not go through the step are unaffected, and the run goes on.
func TestPipelineSchemaMigratorTraps(t *testing.T) {
	db := memDB(t)
	// helios_migrate returns an empty output for an empty batch (the
	// registration probe) and traps on any other.
	trap := testutil.WAT(t, `(module
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
  (func (export "helios_migrate") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.load (i32.add (local.get $ptr) (i32.const 4))) (then unreachable))
    (call $empty))
  (data (i32.const 4000) "HLO1\00\00\00\00\00\00\00\00\00\00\00\00"))`)
	reg := schema.New(db).WithEngine(sharedEngine())
	ctx := context.Background()
	for _, text := range centsVersions[:2] {
		if _, _, err := reg.Register("orders", []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := reg.RegisterMigrator(ctx, "orders", []byte(centsVersions[2]), trap, nil); err != nil {
		t.Fatal(err)
	}
	reg.Close(ctx)
	latest, err := reg.Latest("orders")
	if err != nil {
		t.Fatal(err)
	}
	var values, want []string
	var hs [][]abi.Header
	trapped := map[int]bool{}
	for i := 0; i < 40; i++ {
		if i%3 == 0 {
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount":1.5}`, i)), append(hs, schemaHeaders("orders/2"))
			trapped[i] = true
			continue
		}
		values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d}`, i, i)), append(hs, schemaHeaders("orders/3"))
		want = append(want, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d,"customer_id":0}`, i, i))
	}
	p := logPipeline(t, db, values, hs, Config{Plugin: testPlugin(t, "lowercase"), BatchSize: 16, Schema: latest})
	st, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := readTopic(t, db, "out")
	if st.DeadLettered != int64(len(trapped)) || len(out) != len(want) {
		t.Fatalf("stats %+v, %d outputs; want %d dead-lettered, %d out", st, len(out), len(trapped), len(want))
	}
	for i, e := range out {
		if string(e.Value) != want[i] {
			t.Fatalf("output %d: %s, want %s", i, e.Value, want[i])
		}
	}
	var ents []DLQEntry
	p.DeadLetterQueue().List(func(e DLQEntry) error { ents = append(ents, e); return nil })
	for _, e := range ents {
		if !trapped[int(e.Offset)] || e.Code != abi.FailSchema || !strings.Contains(e.Error, "(version 2 to 3): plugin ") || !strings.Contains(e.Error, "plugin trapped") {
			t.Errorf("DLQ entry at %d: code %d, %q", e.Offset, e.Code, e.Error)
		}
	}
}
