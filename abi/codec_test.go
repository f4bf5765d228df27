package abi

import (
	"bytes"
	"errors"
	"testing"
)

func sampleRecords() []Record {
	return []Record{
		{},
		{Key: []byte("k"), Value: []byte("v"), Partition: 7, Offset: -1, Timestamp: 1 << 40, ID: [16]byte{1, 2, 3}},
		{Value: bytes.Repeat([]byte{0, 0xff}, 1000), Headers: []Header{{Key: []byte("a"), Value: nil}, {Key: nil, Value: []byte("b")}}},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	for _, recs := range [][]Record{nil, sampleRecords()} {
		buf := AppendBatch(nil, recs)
		if len(buf) != BatchSize(recs) {
			t.Fatalf("encoded %d bytes, BatchSize says %d", len(buf), BatchSize(recs))
		}
		got, err := DecodeBatch(buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("%d records, want %d", len(got), len(recs))
		}
		for i := range recs {
			w, g := recs[i], got[i]
			if !bytes.Equal(w.Key, g.Key) || !bytes.Equal(w.Value, g.Value) || w.Partition != g.Partition ||
				w.Offset != g.Offset || w.Timestamp != g.Timestamp || w.ID != g.ID || len(w.Headers) != len(g.Headers) {
				t.Fatalf("record %d: got %+v, want %+v", i, g, w)
			}
			for j := range w.Headers {
				if !bytes.Equal(w.Headers[j].Key, g.Headers[j].Key) || !bytes.Equal(w.Headers[j].Value, g.Headers[j].Value) {
					t.Fatalf("record %d header %d differs", i, j)
				}
			}
		}
	}
}

func TestBatchDecodeErrors(t *testing.T) {
	good := AppendBatch(nil, sampleRecords())
	tests := []struct {
		name string
		buf  []byte
	}{
		{"short header", good[:10]},
		{"bad magic", append([]byte("HLZ9"), good[4:]...)},
		{"truncated record", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"count too high", func() []byte { b := append([]byte{}, good...); b[OffBatchCount] = 9; return b }()},
	}
	for _, tt := range tests {
		if _, err := DecodeBatch(tt.buf); !errors.Is(err, ErrMalformedBatch) {
			t.Errorf("%s: got %v, want ErrMalformedBatch", tt.name, err)
		}
	}
}

func TestOutputRoundTrip(t *testing.T) {
	var w OutputWriter
	w.Reset()
	hs := AppendKVBlock(nil, []Header{{Key: []byte("h"), Value: []byte("1")}})
	w.Emit(0, []byte("k"), []byte("v"), hs, 42)
	m := w.Mark()
	w.Emit(1, nil, []byte("dropped"), nil, 0)
	w.Rewind(m)
	w.Fail(1, FailRetryable, "try later")
	w.Emit(3, nil, nil, nil, -5)
	ents, failed, err := DecodeOutputCounting(nil, w.Finish(), 4)
	if err != nil || failed != 1 {
		t.Fatalf("%d failed entries, want 1: %v", failed, err)
	}
	want := []Entry{
		{Kind: EntryKindRecord, InputIndex: 0, Key: []byte("k"), Value: []byte("v"), Headers: hs, Timestamp: 42},
		{Kind: EntryKindFailed, InputIndex: 1, Code: FailRetryable, Value: []byte("try later")},
		{Kind: EntryKindRecord, InputIndex: 3, Timestamp: -5},
	}
	if len(ents) != len(want) {
		t.Fatalf("%d entries, want %d", len(ents), len(want))
	}
	for i := range want {
		g, e := ents[i], want[i]
		if g.Kind != e.Kind || g.InputIndex != e.InputIndex || g.Code != e.Code || g.Timestamp != e.Timestamp ||
			!bytes.Equal(g.Key, e.Key) || !bytes.Equal(g.Value, e.Value) || !bytes.Equal(g.Headers, e.Headers) {
			t.Fatalf("entry %d: got %+v, want %+v", i, g, e)
		}
	}
	var bf *BatchFailure
	if _, err := DecodeOutput(nil, w.BatchError(BatchOperatorErr, "bad batch"), 4); !errors.As(err, &bf) || bf.Message != "bad batch" || bf.Status != BatchOperatorErr {
		t.Fatalf("batch error: %v", err)
	}
}

func TestOutputDecodeErrors(t *testing.T) {
	build := func(f func(w *OutputWriter)) []byte {
		var w OutputWriter
		w.Reset()
		f(&w)
		return append([]byte(nil), w.Finish()...)
	}
	tests := []struct {
		name   string
		buf    []byte
		inputs uint32
	}{
		{"short", []byte("HLO1"), 1},
		{"index out of range", build(func(w *OutputWriter) { w.Emit(5, nil, nil, nil, 0) }), 5},
		{"index goes back", build(func(w *OutputWriter) { w.Emit(2, nil, nil, nil, 0); w.Emit(1, nil, nil, nil, 0) }), 5},
		{"bad kind", func() []byte {
			b := build(func(w *OutputWriter) { w.Emit(0, nil, nil, nil, 0) })
			b[OutputHeaderSize] = 7
			return b
		}(), 1},
		{"bad headers", build(func(w *OutputWriter) { w.Emit(0, nil, nil, []byte{9, 0, 0, 0}, 0) }), 1},
		{"truncated", build(func(w *OutputWriter) { w.Emit(0, nil, []byte("abc"), nil, 0) })[:OutputHeaderSize+EntryHeaderSize+1], 1},
		{"trailing", append(build(func(w *OutputWriter) {}), 1), 1},
	}
	for _, tt := range tests {
		if _, err := DecodeOutput(nil, tt.buf, tt.inputs); !errors.Is(err, ErrMalformedOutput) {
			t.Errorf("%s: got %v, want ErrMalformedOutput", tt.name, err)
		}
	}
}

func TestPackResult(t *testing.T) {
	for _, c := range [][2]uint32{{0, 0}, {1, 2}, {0xffffffff, 0xffffffff}, {65536, 16}} {
		if p, l := UnpackResult(PackResult(c[0], c[1])); p != c[0] || l != c[1] {
			t.Fatalf("%v -> %d,%d", c, p, l)
		}
	}
}

// The decoders face untrusted bytes (guest output on the host, host input
// in SDKs): they must never panic or read out of bounds.
func FuzzDecodeOutput(f *testing.F) {
	var w OutputWriter
	w.Reset()
	w.Emit(0, []byte("k"), []byte("v"), AppendKVBlock(nil, []Header{{Key: []byte("a")}}), 1)
	w.Fail(1, 2, "x")
	f.Add(append([]byte(nil), w.Finish()...), uint32(2))
	f.Add([]byte("HLO1\x02\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00abc"), uint32(0))
	f.Fuzz(func(t *testing.T, buf []byte, inputs uint32) {
		ents, failed, err := DecodeOutputCounting(nil, buf, inputs)
		if err != nil {
			return
		}
		for _, e := range ents {
			if e.InputIndex >= inputs {
				t.Fatalf("entry for input %d of %d accepted", e.InputIndex, inputs)
			}
			if e.Kind == EntryKindFailed {
				failed--
			}
		}
		if failed != 0 {
			t.Fatalf("the failed count is off by %d", failed)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, sampleRecords()))
	f.Add(AppendBatch(nil, nil))
	f.Fuzz(func(t *testing.T, buf []byte) {
		recs, err := DecodeBatch(buf)
		if err != nil {
			return
		}
		// Reserved header fields and empty header blocks are not preserved,
		// so compare decoded records, not bytes.
		again, err := DecodeBatch(AppendBatch(nil, recs))
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-encoding %d records: %v", len(recs), err)
		}
		for i := range recs {
			a, b := recs[i], again[i]
			if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || a.ID != b.ID || a.Offset != b.Offset ||
				a.Timestamp != b.Timestamp || a.Partition != b.Partition || len(a.Headers) != len(b.Headers) {
				t.Fatalf("record %d changed through encode/decode", i)
			}
		}
	})
}

func FuzzKVIter(f *testing.F) {
	f.Add(AppendKVBlock(nil, []Header{{Key: []byte("a"), Value: []byte("b")}}))
	f.Fuzz(func(t *testing.T, buf []byte) {
		hs, err := DecodeKVBlock(buf)
		if err != nil || len(hs) == 0 {
			return
		}
		if again := AppendKVBlock(nil, hs); !bytes.Equal(again, buf) {
			t.Fatalf("decode/encode differs:\n%x\n%x", buf, again)
		}
	})
}
