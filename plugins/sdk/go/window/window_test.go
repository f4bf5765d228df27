package window

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

// A per-key count, as window_count keeps it.
func init() {
	Handle(Aggregate{
		Add: func(r *helios.Record, w *Window) ([]byte, error) {
			v, _, err := helios.StateGet(r.Key)
			if err != nil {
				return nil, err
			}
			n := uint64(0)
			if len(v) == 8 {
				n = binary.LittleEndian.Uint64(v)
			}
			return r.Key, helios.StatePut(r.Key, binary.LittleEndian.AppendUint64(nil, n+1))
		},
		Result: func(key []byte, w *Window, out *helios.Emitter) error {
			v, _, err := helios.StateGet(key)
			if err != nil {
				return err
			}
			out.Emit(key, fmt.Appendf(nil, "%s %s..%s closing=%v %d", key, AppendTime(nil, w.StartMs), AppendTime(nil, w.EndMs), w.Closing, binary.LittleEndian.Uint64(v)))
			return nil
		},
	})
}

func batch(keys ...string) []byte {
	recs := make([]abi.Record, len(keys))
	for i, k := range keys {
		recs[i] = abi.Record{Key: []byte(k)}
	}
	buf := make([]byte, abi.BatchSize(recs))
	abi.EncodeBatch(buf, recs)
	return buf
}

func outputs(t *testing.T, out []byte, n int) []string {
	t.Helper()
	ents, err := abi.DecodeOutput(nil, out, uint32(n))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if e.Kind == abi.EntryKindFailed {
			got = append(got, fmt.Sprintf("%d!%s", e.InputIndex, e.Value))
			continue
		}
		got = append(got, fmt.Sprintf("%d:%s", e.InputIndex, e.Value))
	}
	return got
}

// TestAggregateFinalAndUpdates: under final, Add emits nothing and the
// close call emits each key's result; under updates, every Add is followed
// by the key's result and the close call emits nothing; outside a window
// every record fails with ErrNoWindow.
func TestAggregateFinalAndUpdates(t *testing.T) {
	const start, end = 1764504000000, 1764504060000 // 2025-11-30T12:00:00Z, +1m
	for _, c := range []struct {
		flags        uint32
		process      []string
		closeOutputs []string
	}{
		{0, nil, []string{"0:a 2025-11-30T12:00:00Z..2025-11-30T12:01:00Z closing=true 2", "1:b 2025-11-30T12:00:00Z..2025-11-30T12:01:00Z closing=true 1"}},
		{abi.WindowFlagUpdates, []string{"0:a 2025-11-30T12:00:00Z..2025-11-30T12:01:00Z closing=false 1", "1:b 2025-11-30T12:00:00Z..2025-11-30T12:01:00Z closing=false 1",
			"2:a 2025-11-30T12:00:00Z..2025-11-30T12:01:00Z closing=false 2"}, nil},
	} {
		if err := helios.NativeInit(nil); err != nil {
			t.Fatal(err)
		}
		NativeWindow(start, end, c.flags, true)
		if got := outputs(t, helios.NativeProcess(batch("a", "b", "a")), 3); !slices.Equal(got, c.process) {
			t.Errorf("flags %d: process emitted %q, want %q", c.flags, got, c.process)
		}
		NativeWindow(start, end, c.flags|abi.WindowFlagClosing, true)
		if got := outputs(t, NativeClose(batch("a", "b")), 2); !slices.Equal(got, c.closeOutputs) {
			t.Errorf("flags %d: close emitted %q, want %q", c.flags, got, c.closeOutputs)
		}
	}
	NativeWindow(0, 0, 0, false)
	if got := outputs(t, helios.NativeProcess(batch("a")), 1); len(got) != 1 || got[0] != "0!"+ErrNoWindow.Error() {
		t.Errorf("outside a window: %q, want the record failed with ErrNoWindow", got)
	}
}

// TestCurrentReadsOncePerCall: the window is read from the host once per
// call and costs no allocation per record.
func TestCurrentReadsOncePerCall(t *testing.T) {
	NativeWindow(-60000, 0, abi.WindowFlagUpdates, true)
	curValid = false
	w, ok := Current()
	if !ok || w.StartMs != -60000 || w.EndMs != 0 || !w.Updates || w.Closing || w.Start.Format("15:04") != "23:59" {
		t.Fatalf("Current() = %+v, %v", w, ok)
	}
	NativeWindow(0, 1, 0, true) // a later call's window: not seen until the next call
	if w, _ := Current(); w.EndMs != 0 {
		t.Errorf("Current read the host again within a call: %+v", w)
	}
	if n := testing.AllocsPerRun(100, func() { Current() }); n != 0 {
		t.Errorf("Current allocates %v times per call", n)
	}
}

// TestAppendTime: whole seconds without a fraction, milliseconds with
// three digits, UTC, negative times too.
func TestAppendTime(t *testing.T) {
	for ms, want := range map[int64]string{0: "1970-01-01T00:00:00Z", 1500: "1970-01-01T00:00:01.500Z", -1: "1969-12-31T23:59:59.999Z",
		1764504060000: "2025-11-30T12:01:00Z"} {
		if got := string(AppendTime(nil, ms)); got != want {
			t.Errorf("AppendTime(%d) = %s, want %s", ms, got, want)
		}
	}
}
