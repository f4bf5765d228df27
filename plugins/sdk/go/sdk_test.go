//go:build !wasip1

package helios

import (
	"errors"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
)

func run(t *testing.T, recs []abi.Record) []abi.Entry {
	t.Helper()
	out, err := abi.DecodeOutput(nil, NativeProcess(abi.AppendBatch(nil, recs)), uint32(len(recs)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFailedRecordLeavesNothing: outputs and state writes of a record that
// fails are dropped; the other records of the batch are unaffected.
func TestFailedRecordLeavesNothing(t *testing.T) {
	Handle(func(r *Record, out *Emitter) error {
		if err := StatePut(r.Value, []byte("seen")); err != nil {
			return err
		}
		if v, found, _ := StateGet(r.Value); !found || string(v) != "seen" {
			t.Errorf("a record does not read its own write: %q %v", v, found)
		}
		out.Emit(nil, r.Value)
		if string(r.Value) == "bad" {
			return Retryable(errors.New("nope"))
		}
		return nil
	})
	if err := NativeInit(nil); err != nil {
		t.Fatal(err)
	}
	ents := run(t, []abi.Record{{Value: []byte("a")}, {Value: []byte("bad")}, {Value: []byte("c")}})
	if len(ents) != 3 || ents[1].Kind != abi.EntryKindFailed || ents[1].Code != abi.FailRetryable || string(ents[2].Value) != "c" {
		t.Fatalf("entries %+v", ents)
	}
	st := NativeState()
	if _, ok := st["bad"]; ok || len(st) != 2 {
		t.Fatalf("state after a failed record: %q", st)
	}
}

func TestHeadersAndEmitRecord(t *testing.T) {
	Handle(func(r *Record, out *Emitter) error {
		h, ok := r.Header("trace")
		if !ok {
			return WithCode(1234, errors.New("no trace header"))
		}
		out.EmitRecord(Output{Key: r.Key, Value: h, Headers: []abi.Header{{Key: []byte("from"), Value: r.Value}}})
		out.EmitRecord(Output{Value: []byte("second"), Timestamp: 99})
		return nil
	})
	if err := NativeInit([]abi.Header{{Key: []byte("x"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := GetConfig().Get("x"); v != "1" {
		t.Fatalf("config %v", GetConfig())
	}
	ents := run(t, []abi.Record{
		{Key: []byte("k"), Value: []byte("v"), Timestamp: 7, Headers: []abi.Header{{Key: []byte("trace"), Value: []byte("t1")}}},
		{Value: []byte("no headers")},
	})
	if len(ents) != 3 || string(ents[0].Value) != "t1" || ents[0].Timestamp != 7 || ents[1].Timestamp != 99 {
		t.Fatalf("entries %+v", ents)
	}
	hs, _ := abi.DecodeKVBlock(ents[0].Headers)
	if len(hs) != 1 || string(hs[0].Value) != "v" {
		t.Fatalf("headers %q", hs)
	}
	if ents[2].Kind != abi.EntryKindFailed || ents[2].Code != 1234 {
		t.Fatalf("failure %+v", ents[2])
	}
}

func TestStateOutsideBatch(t *testing.T) {
	if err := StatePut([]byte("k"), nil); !errors.Is(err, ErrStateUnavailable) {
		t.Fatalf("got %v", err)
	}
}
