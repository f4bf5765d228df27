package storage

import (
	"bytes"
	"testing"
)

// FuzzEntry: an encoded entry decodes to itself, and decoding arbitrary
// bytes fails cleanly or yields an entry that encodes back to them.
func FuzzEntry(f *testing.F) {
	f.Add(int64(1), []byte("k"), []byte{1, 0, 0, 0}, []byte("v"), []byte{})
	f.Add(int64(-5), []byte{}, []byte{}, bytes.Repeat([]byte("x"), 300), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, ts int64, key, headers, value, raw []byte) {
		e := Entry{Timestamp: ts, Key: key, Headers: headers, Value: value}
		copy(e.ID[:], value)
		buf := make([]byte, entrySize(&e))
		putEntry(buf, &e)
		var got Entry
		if err := decodeEntry(buf, &got); err != nil {
			t.Fatalf("decode of an encoded entry: %v", err)
		}
		if got.Timestamp != ts || got.ID != e.ID || !bytes.Equal(got.Key, key) || !bytes.Equal(got.Headers, headers) || !bytes.Equal(got.Value, value) {
			t.Fatalf("round trip: %+v, want %+v", got, e)
		}
		var r Entry
		if decodeEntry(raw, &r) == nil {
			again := make([]byte, entrySize(&r))
			putEntry(again, &r)
			if len(again) > len(raw) {
				t.Fatalf("a decoded entry of %d bytes encodes to %d", len(raw), len(again))
			}
		}
	})
}
