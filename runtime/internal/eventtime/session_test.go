package eventtime

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestSessionIndexAdd(t *testing.T) {
	const gap = 10 * time.Millisecond
	w := func(s, e Time) Window { return Window{s, e} }
	for _, tc := range []struct {
		name  string
		prior []Time // added first, in order
		t     Time
		want  SessionUpdate
		after []SessionWindow
	}{
		{"new session", nil, 5, SessionUpdate{Session: SessionWindow{w(5, 15), w(5, 15)}},
			[]SessionWindow{{w(5, 15), w(5, 15)}}},
		{"inside: nothing changes", []Time{5, 7}, 6, SessionUpdate{Session: SessionWindow{w(5, 17), w(5, 15)}},
			[]SessionWindow{{w(5, 17), w(5, 15)}}},
		{"extends the end", []Time{5}, 12, SessionUpdate{Session: SessionWindow{w(5, 22), w(5, 15)}, Closed: []Window{w(5, 15)}},
			[]SessionWindow{{w(5, 22), w(5, 15)}}},
		{"touching merges", []Time{5}, 15, SessionUpdate{Session: SessionWindow{w(5, 25), w(5, 15)}, Closed: []Window{w(5, 15)}},
			[]SessionWindow{{w(5, 25), w(5, 15)}}},
		{"out of order extends the start, state stays", []Time{20}, 12, SessionUpdate{Session: SessionWindow{w(12, 30), w(20, 30)}, Closed: []Window{w(20, 30)}},
			[]SessionWindow{{w(12, 30), w(20, 30)}}},
		{"more than gap apart: separate", []Time{5}, 16, SessionUpdate{Session: SessionWindow{w(16, 26), w(16, 26)}},
			[]SessionWindow{{w(5, 15), w(5, 15)}, {w(16, 26), w(16, 26)}}},
		{"bridge merges two", []Time{0, 20}, 10, SessionUpdate{Session: SessionWindow{w(0, 30), w(0, 10)}, Closed: []Window{w(0, 10), w(20, 30)}, MergeStates: []Window{w(20, 30)}},
			[]SessionWindow{{w(0, 30), w(0, 10)}}},
		{"the earliest-starting session keeps its state, others untouched", []Time{-50, 20, 0, 100}, 10, SessionUpdate{Session: SessionWindow{w(0, 30), w(0, 10)}, Closed: []Window{w(0, 10), w(20, 30)}, MergeStates: []Window{w(20, 30)}},
			[]SessionWindow{{w(-50, -40), w(-50, -40)}, {w(0, 30), w(0, 10)}, {w(100, 110), w(100, 110)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := NewSessionIndex(gap)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.prior {
				x.Add([]byte("k"), p)
			}
			x.Add([]byte("other"), tc.t) // other keys never merge
			got := x.Add([]byte("k"), tc.t)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("Add = %+v\nwant  %+v", got, tc.want)
			}
			if s := x.Sessions([]byte("k")); !slices.Equal(s, tc.after) {
				t.Fatalf("sessions %v, want %v", s, tc.after)
			}
		})
	}
	if _, err := NewSessionIndex(0); err == nil {
		t.Error("gap 0 accepted")
	}
}

// naiveSessions computes sessions from all times of one key: sorted, split
// where consecutive times are more than gap apart.
func naiveSessions(times []Time, gap Time) [][]Time {
	s := slices.Clone(times)
	slices.Sort(s)
	var out [][]Time
	for i, t := range s {
		if i == 0 || t-s[i-1] > gap {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], t)
	}
	return out
}

// TestSessionMergeProperty: for random keys and arrival orders, with
// snapshot/restore cycles, the open sessions equal the naive reference, the
// due index (maintained from Closed and Session) holds exactly them, and
// state kept by following MergeStates holds exactly each session's records.
func TestSessionMergeProperty(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		gap := Time(1 + rng.IntN(20))
		x, _ := NewSessionIndex(time.Duration(gap) * time.Millisecond)
		due := NewOpenWindows()
		state := map[string][]Time{} // key|state window -> records
		sk := func(k string, w Window) string { return fmt.Sprint(k, w) }
		all := map[string][]Time{}
		for i := range 1 + rng.IntN(60) {
			k := string(rune('a' + rng.IntN(3)))
			tm := Time(rng.IntN(300)) - 100
			all[k] = append(all[k], tm)
			u := x.Add([]byte(k), tm)
			for _, c := range u.Closed {
				if !due.Remove([]byte(k), c) {
					t.Fatalf("seed %d: closed %v was not open", seed, c)
				}
			}
			if err := due.Add([]byte(k), u.Session.Window); err != nil {
				t.Fatal(err)
			}
			for _, m := range u.MergeStates {
				state[sk(k, u.Session.State)] = append(state[sk(k, u.Session.State)], state[sk(k, m)]...)
				delete(state, sk(k, m))
			}
			state[sk(k, u.Session.State)] = append(state[sk(k, u.Session.State)], tm)
			if i%7 == 6 {
				b, _ := x.MarshalBinary()
				x, _ = NewSessionIndex(time.Duration(gap) * time.Millisecond)
				if err := x.UnmarshalBinary(b); err != nil {
					t.Fatal(err)
				}
			}
		}
		open := 0
		for k, times := range all {
			want := naiveSessions(times, gap)
			got := x.Sessions([]byte(k))
			if len(got) != len(want) {
				t.Fatalf("seed %d key %s: %d sessions, want %d (%v vs %v)", seed, k, len(got), len(want), got, want)
			}
			for i, s := range got {
				ww := Window{want[i][0], want[i][len(want[i])-1] + gap}
				if s.Window != ww {
					t.Fatalf("seed %d key %s: session %v, want %v", seed, k, s.Window, ww)
				}
				st := slices.Clone(state[sk(k, s.State)])
				slices.Sort(st)
				if !slices.Equal(st, want[i]) {
					t.Fatalf("seed %d key %s: state of %v = %v, want %v", seed, k, s.Window, st, want[i])
				}
				open++
			}
		}
		if len(state) != open || due.Len() != open {
			t.Fatalf("seed %d: %d states, %d due, %d sessions", seed, len(state), due.Len(), open)
		}
		// Closing: every due window is a session, removed once.
		for _, kw := range due.PopDue(EndOfTime) {
			if _, ok := x.Remove(kw.Key, kw.Window); !ok {
				t.Fatalf("seed %d: due %v is not a session", seed, kw)
			}
		}
		for k := range all {
			if s := x.Sessions([]byte(k)); len(s) != 0 {
				t.Fatalf("seed %d: sessions left %v", seed, s)
			}
		}
	}
}

func TestSessionIndexSnapshot(t *testing.T) {
	x, _ := NewSessionIndex(time.Millisecond)
	x.Add([]byte("b"), 5)
	x.Add([]byte("a"), 1)
	x.Add([]byte("a"), 2)
	x.Add([]byte("a"), 10)
	b, _ := x.MarshalBinary()
	y, _ := NewSessionIndex(time.Millisecond)
	if err := y.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if b2, _ := y.MarshalBinary(); string(b2) != string(b) {
		t.Fatal("restored index encodes differently")
	}
	if _, ok := y.Remove([]byte("a"), Window{1, 3}); !ok {
		t.Fatal("restored session missing")
	}
	bad2 := append([]byte{}, b...)
	copy(bad2[len(bad2)-24:len(bad2)-16], bad2[len(bad2)-32:len(bad2)-24]) // last session's end = its start
	for _, d := range [][]byte{b[:len(b)-3], bad2, {tagOpenWindows, 1}} {
		if err := y.UnmarshalBinary(d); !errors.Is(err, ErrCorruptSnapshot) {
			t.Errorf("UnmarshalBinary(%x) = %v", d, err)
		}
	}
}
