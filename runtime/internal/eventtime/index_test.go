package eventtime

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestDueKeyOrder: due keys sort bytewise exactly as (end, key) sort, for
// negative, zero and positive ends, and decode back.
func TestDueKeyOrder(t *testing.T) {
	type kw struct {
		end Time
		key []byte
	}
	ends := []Time{NoWatermark, MinEventTime, -1000, -1, 0, 1, 1000, MaxEventTime, EndOfTime}
	keys := [][]byte{nil, {0}, {0, 0}, []byte("a"), []byte("ab"), {0xff}}
	var all []kw
	for _, e := range ends {
		for _, k := range keys {
			all = append(all, kw{e, k})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	byValue := slices.Clone(all)
	slices.SortFunc(byValue, func(a, b kw) int {
		return cmp.Or(cmp.Compare(a.end, b.end), bytes.Compare(a.key, b.key))
	})
	byBytes := slices.Clone(all)
	slices.SortFunc(byBytes, func(a, b kw) int {
		return bytes.Compare(AppendDueKey(nil, a.end, a.key), AppendDueKey(nil, b.end, b.key))
	})
	for i := range all {
		if byValue[i].end != byBytes[i].end || !bytes.Equal(byValue[i].key, byBytes[i].key) {
			t.Fatalf("position %d: value order %v, byte order %v", i, byValue[i], byBytes[i])
		}
		enc := AppendDueKey([]byte("prefix"), all[i].end, all[i].key)[len("prefix"):]
		end, key, err := DecodeDueKey(enc)
		if err != nil || end != all[i].end || !bytes.Equal(key, all[i].key) {
			t.Fatalf("decode %x = %v %q %v, want %v", enc, end, key, err, all[i])
		}
	}
	if _, _, err := DecodeDueKey(make([]byte, DueKeySize-1)); err == nil {
		t.Error("short due key decoded")
	}
	v := AppendDueValue(nil, -5)
	if s, err := DecodeDueValue(v); err != nil || s != -5 {
		t.Errorf("due value = %v, %v", s, err)
	}
	if _, err := DecodeDueValue(v[:7]); err == nil {
		t.Error("short due value decoded")
	}
}

// FuzzDueKey: any end and key round-trip, and byte order matches value
// order for any pair.
func FuzzDueKey(f *testing.F) {
	f.Add(int64(0), []byte("k"), int64(-1), []byte(""))
	f.Fuzz(func(t *testing.T, e1 int64, k1 []byte, e2 int64, k2 []byte) {
		a, b := AppendDueKey(nil, Time(e1), k1), AppendDueKey(nil, Time(e2), k2)
		end, key, err := DecodeDueKey(a)
		if err != nil || end != Time(e1) || !bytes.Equal(key, k1) {
			t.Fatalf("round trip (%d, %q) = (%d, %q), %v", e1, k1, end, key, err)
		}
		if want := cmp.Or(cmp.Compare(e1, e2), bytes.Compare(k1, k2)); bytes.Compare(a, b) != want {
			t.Fatalf("(%d,%q) vs (%d,%q): bytes %d, values %d", e1, k1, e2, k2, bytes.Compare(a, b), want)
		}
	})
}

func TestCloseBefore(t *testing.T) {
	for _, tc := range []struct {
		wm       Time
		lateness time.Duration
		want     Time
	}{
		{1000, 0, 1000},
		{1000, time.Second, 0},
		{NoWatermark, time.Hour, NoWatermark},
		{EndOfTime, time.Hour, EndOfTime},
	} {
		if got := CloseBefore(tc.wm, tc.lateness); got != tc.want {
			t.Errorf("CloseBefore(%v, %v) = %v, want %v", tc.wm, tc.lateness, got, tc.want)
		}
	}
}

func TestOpenWindows(t *testing.T) {
	o := NewOpenWindows()
	add := func(key string, s, e Time) {
		t.Helper()
		if err := o.Add([]byte(key), Window{s, e}); err != nil {
			t.Fatal(err)
		}
	}
	add("b", 0, 10)
	add("a", 0, 10)
	add("a", 10, 20)
	add("a", 10, 20) // again: no-op
	add("c", -20, -10)
	if err := o.Add([]byte("a"), Window{5, 20}); err == nil {
		t.Error("a second window with the same end for the same key accepted")
	}
	if o.Len() != 4 {
		t.Fatalf("Len = %d, want 4", o.Len())
	}
	if !o.Remove([]byte("b"), Window{0, 10}) || o.Remove([]byte("b"), Window{0, 10}) || o.Remove([]byte("a"), Window{1, 20}) {
		t.Error("Remove reports wrongly")
	}
	add("b", 3, 10) // reopened with another start after its removal
	got := o.PopDue(CloseBefore(15, 5*time.Millisecond))
	want := []KeyedWindow{{[]byte("c"), Window{-20, -10}}, {[]byte("a"), Window{0, 10}}, {[]byte("b"), Window{3, 10}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("PopDue = %v, want %v", got, want)
	}
	if got := o.PopDue(15); len(got) != 0 {
		t.Fatalf("PopDue(15) = %v after the window ending 10 closed", got)
	}
	if got := o.PopDue(EndOfTime); len(got) != 1 || string(got[0].Key) != "a" || o.Len() != 0 {
		t.Fatalf("PopDue(end) = %v, Len %d", got, o.Len())
	}
}

// TestOpenWindowsModel: random adds, removes and pops against a sorted-slice
// model, with snapshot/restore cycles; pops come out in (end, key) order.
func TestOpenWindowsModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	o := NewOpenWindows()
	model := map[string]Window{} // due key -> window
	for step := range 20000 {
		key := []byte{byte('a' + rng.IntN(5))}
		end := Time(rng.IntN(200))
		w := Window{end - 10, end}
		k := string(AppendDueKey(nil, end, key))
		switch r := rng.IntN(10); {
		case r < 5:
			if _, ok := model[k]; !ok {
				model[k] = w
			}
			if err := o.Add(key, w); err != nil {
				t.Fatal(err)
			}
		case r < 8:
			_, had := model[k]
			delete(model, k)
			if o.Remove(key, w) != had {
				t.Fatalf("step %d: Remove = %v, want %v", step, !had, had)
			}
		case r < 9:
			before := Time(rng.IntN(220))
			var want []KeyedWindow
			var keys []string
			for mk := range model {
				keys = append(keys, mk)
			}
			slices.Sort(keys)
			for _, mk := range keys {
				if w := model[mk]; w.End <= before {
					_, kk, _ := DecodeDueKey([]byte(mk))
					want = append(want, KeyedWindow{kk, w})
					delete(model, mk)
				}
			}
			if got := o.PopDue(before); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("step %d: PopDue(%d) = %v, want %v", step, before, got, want)
			}
		default:
			b, _ := o.MarshalBinary()
			o = NewOpenWindows()
			if err := o.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
		}
		if o.Len() != len(model) {
			t.Fatalf("step %d: Len %d, model %d", step, o.Len(), len(model))
		}
	}
}

func TestOpenWindowsSnapshotCorrupt(t *testing.T) {
	o := NewOpenWindows()
	o.Add([]byte("k"), Window{0, 10})
	b, _ := o.MarshalBinary()
	dup := append(append([]byte{}, b...), b[6:]...)
	dup[5]++ // count 2, the same entry twice
	for _, bad := range [][]byte{b[:len(b)-1], {tagSessions, 1}, dup} {
		if err := NewOpenWindows().UnmarshalBinary(bad); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("UnmarshalBinary(%x) = %v", bad, err)
		}
	}
}

// TestOpenWindowsMillion: a million open windows close in order. This is
// the in-memory stand-in; the key encoding is what a Pebble-backed index
// stores.
func TestOpenWindowsMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	o := NewOpenWindows()
	spec := WindowSpec{Kind: Tumbling, Size: time.Second}
	var key [4]byte
	for i := range 1_000_000 {
		key = [4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		if err := o.Add(key[:], spec.Assign(Time(i%100) * 1000)[0]); err != nil {
			t.Fatal(err)
		}
	}
	n, last := 0, Time(NoWatermark)
	for wm := Time(0); wm <= 100_000; wm += 7_000 {
		for _, kw := range o.PopDue(wm) {
			if kw.Window.End < last || kw.Window.End > wm {
				t.Fatalf("window %v popped at %v after %v", kw.Window, wm, last)
			}
			last = kw.Window.End
			n++
		}
	}
	n += len(o.PopDue(EndOfTime))
	if n != 1_000_000 || o.Len() != 0 {
		t.Fatalf("popped %d, %d left", n, o.Len())
	}
}
