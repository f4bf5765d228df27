package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// windowProbe is a WAT operator whose helios_process and helios_window_close
// call window_get three ways (fits, buffer too small, buffer outside memory)
// and store the statuses; the close call also reads state key "k".
func windowProbe(t *testing.T, withClose bool) []byte {
	probe := func(at int) string {
		return strings.NewReplacer("A0", strconv.Itoa(at), "A1", strconv.Itoa(at+4), "A2", strconv.Itoa(at+8), "D0", strconv.Itoa(at+16), "D1", strconv.Itoa(at+48)).Replace(`
    (i32.store (i32.const A0) (call $window_get (i32.const D0) (i32.const 24)))
    (i32.store (i32.const A1) (call $window_get (i32.const D1) (i32.const 23)))
    (i32.store (i32.const A2) (call $window_get (i32.const 0xfffffff0) (i32.const 24)))`)
	}
	extra := ""
	if withClose {
		extra = `(func (export "helios_window_close") (param $ptr i32) (param $len i32) (result i64)` + probe(5000) + `
    (i32.store (i32.const 5012) (call $state_get (i32.const 1024) (i32.const 1) (i32.const 5100) (i32.const 16)))
    (call $empty))
  (data (i32.const 1024) "k")`
	}
	return watOperator{
		imports: `(import "helios_v1" "window_get" (func $window_get (param i32 i32) (result i32)))`,
		process: probe(6000) + "\n    (call $empty)",
		extra:   extra,
	}.build(t)
}

// TestWindowGetByteForByte: window_get returns NOT_FOUND outside a window
// call, and during one writes exactly start, end, flags and a zero reserved
// word (the updates bit from the window, the close bit only in
// helios_window_close), nothing when the buffer is too small, and
// BAD_ARGUMENT for a buffer outside memory; helios_window_close sees the
// state it is given.
func TestWindowGetByteForByte(t *testing.T) { forEachEngine(t, testWindowGetByteForByte) }

func testWindowGetByteForByte(t *testing.T, engine string) {
	ctx := context.Background()
	e := newTestEngine(t, Config{Engine: engine})
	p := mustCompile(t, e, "window.wasm", windowProbe(t, true))
	if !p.Info().WindowClose {
		t.Fatal("Info().WindowClose is false for a module exporting helios_window_close")
	}
	inst := mustInstance(t, p, InstanceConfig{})
	mem := func() guestMemory { return inst.mod.memory() }
	i32At := func(off uint32) int32 { b, _ := mem().Read(off, 4); return int32(binary.LittleEndian.Uint32(b)) }
	bytesAt := func(off, n uint32) []byte { b, _ := mem().Read(off, n); return append([]byte(nil), b...) }
	desc := func(start, end int64, flags uint32) []byte {
		b := make([]byte, 24)
		binary.LittleEndian.PutUint64(b, uint64(start))
		binary.LittleEndian.PutUint64(b[8:], uint64(end))
		binary.LittleEndian.PutUint32(b[16:], flags)
		return b
	}
	recs := []abi.Record{{Value: []byte("v")}}

	// Outside a window: NOT_FOUND every way, nothing written.
	if _, err := inst.Process(ctx, recs, testutil.MapState{}); err != nil {
		t.Fatal(err)
	}
	for i, at := range []uint32{6000, 6004, 6008} {
		if got := i32At(at); got != abi.StatusNotFound {
			t.Errorf("plain process, probe %d: status %d, want NOT_FOUND", i, got)
		}
	}
	if got := bytesAt(6016, 24); !bytes.Equal(got, make([]byte, 24)) {
		t.Errorf("plain process: window_get wrote %x", got)
	}

	// A window call, negative start included (times before 1970).
	if _, err := inst.ProcessWindow(ctx, recs, testutil.MapState{}, Window{Start: -60000, End: 0, Updates: true}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		at   uint32
		want int32
	}{{6000, abi.WindowInfoSize}, {6004, abi.WindowInfoSize}, {6008, abi.StatusBadArgument}} {
		if got := i32At(c.at); got != c.want {
			t.Errorf("window process, probe %d: status %d, want %d", i, got, c.want)
		}
	}
	if got, want := bytesAt(6016, 24), desc(-60000, 0, abi.WindowFlagUpdates); !bytes.Equal(got, want) {
		t.Errorf("window process: descriptor %x, want %x", got, want)
	}
	if got := bytesAt(6048, 24); !bytes.Equal(got, make([]byte, 24)) {
		t.Errorf("window process with a 23-byte buffer wrote %x", got)
	}

	// The close call: the close bit, and the state it is given.
	st := testutil.MapState{"k": []byte("acc")}
	if _, err := inst.CloseWindow(ctx, []abi.Record{{Key: []byte("k")}}, st, Window{Start: 1000, End: 61000}); err != nil {
		t.Fatal(err)
	}
	if got, want := bytesAt(5016, 24), desc(1000, 61000, abi.WindowFlagClosing); !bytes.Equal(got, want) || i32At(5000) != abi.WindowInfoSize {
		t.Errorf("close: status %d, descriptor %x, want 24 and %x", i32At(5000), got, want)
	}
	if i32At(5008) != abi.StatusBadArgument {
		t.Errorf("close, buffer outside memory: status %d", i32At(5008))
	}
	if got := i32At(5012); got != 3 || string(bytesAt(5100, 3)) != "acc" {
		t.Errorf("close: state_get status %d, value %q; want 3, acc", got, bytesAt(5100, 3))
	}

	// After a window call, a plain one is outside any window again.
	if _, err := inst.Process(ctx, recs, testutil.MapState{}); err != nil {
		t.Fatal(err)
	}
	if got := i32At(6000); got != abi.StatusNotFound {
		t.Errorf("plain process after window calls: status %d, want NOT_FOUND", got)
	}
}

// TestWindowCloseExport: a module without helios_window_close loads (it is
// optional) and says so in Info; CloseWindow refuses it with
// ErrMissingExport; an export with the wrong signature is refused at load.
func TestWindowCloseExport(t *testing.T) { forEachEngine(t, testWindowCloseExport) }

func testWindowCloseExport(t *testing.T, engine string) {
	ctx := context.Background()
	e := newTestEngine(t, Config{Engine: engine})
	p := mustCompile(t, e, "plain.wasm", windowProbe(t, false))
	if p.Info().WindowClose {
		t.Error("Info().WindowClose is true without the export")
	}
	inst := mustInstance(t, p, InstanceConfig{})
	_, err := inst.CloseWindow(ctx, []abi.Record{{Key: []byte("k")}}, testutil.MapState{}, Window{Start: 0, End: 1})
	if !errors.Is(err, ErrMissingExport) || !strings.Contains(err.Error(), abi.ExportWindowClose) {
		t.Errorf("CloseWindow without the export: %v, want ErrMissingExport naming %s", err, abi.ExportWindowClose)
	}
	bad := watOperator{extra: `(func (export "helios_window_close") (param i32) (result i64) (i64.const 0))`}.build(t)
	_, err = e.Compile(ctx, "bad.wasm", bad)
	if !errors.Is(err, ErrMissingExport) || !strings.Contains(err.Error(), "export helios_window_close has type (i32) -> (i64), want (i32,i32) -> (i64)") {
		t.Errorf("a mistyped helios_window_close: %v", err)
	}
}
