package eventtime

import (
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

// TestSessionMergeProperty: for random keys and arrival orders, with the
// sessions moved to a new index now and then (Sessions, then Set: how the
// pipeline keeps them per key between batches), the open sessions equal the
// naive reference, the windows tracked from Closed and Session are exactly
// theirs, and state kept by following MergeStates holds exactly each
// session's records.
func TestSessionMergeProperty(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		gap := Time(1 + rng.IntN(20))
		x, _ := NewSessionIndex(time.Duration(gap) * time.Millisecond)
		due := map[string]bool{}     // key|window of the open sessions, from Closed and Session
		state := map[string][]Time{} // key|state window -> records
		sk := func(k string, w Window) string { return fmt.Sprint(k, w) }
		all := map[string][]Time{}
		for i := range 1 + rng.IntN(60) {
			k := string(rune('a' + rng.IntN(3)))
			tm := Time(rng.IntN(300)) - 100
			all[k] = append(all[k], tm)
			u := x.Add([]byte(k), tm)
			for _, c := range u.Closed {
				if !due[sk(k, c)] {
					t.Fatalf("seed %d: closed %v was not open", seed, c)
				}
				delete(due, sk(k, c))
			}
			due[sk(k, u.Session.Window)] = true
			for _, m := range u.MergeStates {
				state[sk(k, u.Session.State)] = append(state[sk(k, u.Session.State)], state[sk(k, m)]...)
				delete(state, sk(k, m))
			}
			state[sk(k, u.Session.State)] = append(state[sk(k, u.Session.State)], tm)
			if i%7 == 6 {
				y, _ := NewSessionIndex(time.Duration(gap) * time.Millisecond)
				for key := range all {
					if err := y.Set([]byte(key), x.Sessions([]byte(key))); err != nil {
						t.Fatal(err)
					}
				}
				x = y
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
				if !due[sk(k, s.Window)] {
					t.Fatalf("seed %d key %s: session %v not tracked open", seed, k, s.Window)
				}
				st := slices.Clone(state[sk(k, s.State)])
				slices.Sort(st)
				if !slices.Equal(st, want[i]) {
					t.Fatalf("seed %d key %s: state of %v = %v, want %v", seed, k, s.Window, st, want[i])
				}
				open++
			}
		}
		if len(state) != open || len(due) != open {
			t.Fatalf("seed %d: %d states, %d tracked open, %d sessions", seed, len(state), len(due), open)
		}
	}
}

// TestSessionIndexSet: Set replaces a key's sessions (as Sessions returns
// them) and refuses sessions that are not ordered, disjoint and apart.
func TestSessionIndexSet(t *testing.T) {
	x, _ := NewSessionIndex(time.Millisecond)
	x.Add([]byte("a"), 1)
	x.Add([]byte("a"), 10)
	y, _ := NewSessionIndex(time.Millisecond)
	if err := y.Set([]byte("a"), x.Sessions([]byte("a"))); err != nil {
		t.Fatal(err)
	}
	if u := y.Add([]byte("a"), 2); u.Session.Window != (Window{1, 3}) || len(u.Closed) != 1 {
		t.Errorf("after Set, a record at 2 joins %v (closed %v), want [1, 3) extending [1, 2)", u.Session.Window, u.Closed)
	}
	for _, bad := range [][]SessionWindow{
		{{Window: Window{5, 5}}},                         // empty
		{{Window: Window{1, 3}}, {Window: Window{3, 4}}}, // touching
		{{Window: Window{6, 8}}, {Window: Window{1, 3}}}, // out of order
	} {
		if err := y.Set([]byte("b"), bad); err == nil {
			t.Errorf("Set(%v) accepted", bad)
		}
	}
	if err := y.Set([]byte("a"), nil); err != nil || len(y.Sessions([]byte("a"))) != 0 {
		t.Errorf("Set(nil): %v, sessions %v", err, y.Sessions([]byte("a")))
	}
}
