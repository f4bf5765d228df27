package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

// TestCents runs the migrator natively (the WebAssembly build is checked
// against the Rust one in plugins/conformance): each record at version 2
// comes out at version 3, or fails with its reason; it has no operator.
func TestCents(t *testing.T) {
	if err := helios.NativeInit(nil); err != nil {
		t.Fatal(err)
	}
	in := []string{
		`{"order_id":1,"amount":2.5,"customer_id":0}`,
		`{"order_id":2,"amount":0.29,"customer_id":null}`,
		`{"order_id":3,"amount":-1.005,"customer_id":4}`,
		`{"order_id":4,"amount":1e300,"customer_id":4}`,
		`{"order_id":5,"customer_id":4}`,
		`[]`,
	}
	want := []string{
		`0:{"order_id":1,"amount_cents":250,"customer_id":0}`,
		`1:{"order_id":2,"amount_cents":29,"customer_id":null}`,
		`2:{"order_id":3,"amount_cents":-100,"customer_id":4}`,
		`3!3:amount is out of range`,
		`4!3:the record has no amount`,
		`5!3:the record is not a JSON object`,
	}
	recs := make([]abi.Record, len(in))
	for i, v := range in {
		recs[i] = abi.Record{Value: []byte(v), Offset: int64(i)}
	}
	ents, err := abi.DecodeOutput(nil, helios.NativeMigrate(abi.AppendBatch(nil, recs)), uint32(len(recs)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Fatalf("%d entries, want %d", len(ents), len(want))
	}
	for i, e := range ents {
		got := fmt.Sprintf("%d:%s", e.InputIndex, e.Value)
		if e.Kind == abi.EntryKindFailed {
			got = fmt.Sprintf("%d!%d:%s", e.InputIndex, e.Code, e.Value)
		}
		if got != want[i] {
			t.Errorf("entry %d: %s, want %s", i, got, want[i])
		}
	}
	_, err = abi.DecodeOutput(nil, helios.NativeProcess(abi.AppendBatch(nil, recs)), uint32(len(recs)))
	var bf *abi.BatchFailure
	if !errors.As(err, &bf) {
		t.Fatalf("helios_process of a migrator: %v, want a batch failure", err)
	}
}
