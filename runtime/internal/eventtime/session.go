package eventtime

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// SessionWindow is an open session of one key. Window grows as records
// arrive and sessions merge; State, the window the session's state is
// stored under, is fixed when the session opens and survives merges (of
// merged sessions, the one with the earliest start keeps its State), so
// extending a session never moves state.
type SessionWindow struct {
	Window Window
	State  Window
}

// SessionUpdate is what adding a record to a SessionIndex changed.
type SessionUpdate struct {
	// Session is the session the record belongs to, now open.
	Session SessionWindow
	// Closed are the windows no longer open (their due-index entries go):
	// the previous extent of an extended session and every merged session.
	Closed []Window
	// MergeStates are the State windows whose state must be merged into
	// Session.State and then deleted, earliest first.
	MergeStates []Window
}

// SessionIndex keeps the open sessions of each key and merges them as
// records arrive. Two sessions of a key merge when a record's [t, t+gap)
// overlaps or touches both: records at most gap apart share a session.
//
// SessionIndex is safe for concurrent use.
type SessionIndex struct {
	mu   sync.Mutex
	gap  time.Duration
	keys map[string][]SessionWindow // sorted by Window.Start, disjoint, not touching
}

// NewSessionIndex returns an empty index for sessions with this gap (> 0).
func NewSessionIndex(gap time.Duration) (*SessionIndex, error) {
	if gap <= 0 || gap > maxWindowSize {
		return nil, fmt.Errorf("session gap %v is outside (0, 100 years]", gap)
	}
	return &SessionIndex{gap: gap, keys: map[string][]SessionWindow{}}, nil
}

// Add places a record of key at event time t (in [MinEventTime,
// MaxEventTime]) and returns the session it joins and what merged.
func (x *SessionIndex) Add(key []byte, t Time) SessionUpdate {
	x.mu.Lock()
	defer x.mu.Unlock()
	own := Window{t, t.Add(x.gap)}
	ss := x.keys[string(key)]
	// Sessions [lo, hi) overlap or touch own: sessions are sorted and
	// disjoint, so they form one run.
	lo, _ := slices.BinarySearchFunc(ss, own.Start, func(s SessionWindow, t Time) int {
		if s.Window.End < t {
			return -1
		}
		return 1
	})
	hi := lo
	for hi < len(ss) && ss[hi].Window.Start <= own.End {
		hi++
	}
	u := SessionUpdate{Session: SessionWindow{Window: own, State: own}}
	if hi > lo {
		merged := ss[lo:hi]
		u.Session.State = merged[0].State
		u.Session.Window.Start = min(own.Start, merged[0].Window.Start)
		u.Session.Window.End = max(own.End, merged[len(merged)-1].Window.End)
		if len(merged) == 1 && merged[0].Window == u.Session.Window {
			return SessionUpdate{Session: merged[0]} // inside an open session
		}
		for i, s := range merged {
			u.Closed = append(u.Closed, s.Window)
			if i > 0 {
				u.MergeStates = append(u.MergeStates, s.State)
			}
		}
	}
	x.keys[string(key)] = slices.Replace(ss, lo, hi, u.Session)
	return u
}

// Set replaces key's open sessions with ss, which must be ordered by
// start, disjoint and not touching (as Sessions returns them).
func (x *SessionIndex) Set(key []byte, ss []SessionWindow) error {
	for i, s := range ss {
		if s.Window.Start >= s.Window.End || i > 0 && ss[i-1].Window.End >= s.Window.Start {
			return fmt.Errorf("sessions not ordered and disjoint at %s", s.Window)
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(ss) == 0 {
		delete(x.keys, string(key))
	} else {
		x.keys[string(key)] = slices.Clone(ss)
	}
	return nil
}

// Sessions returns a copy of key's open sessions, earliest first.
func (x *SessionIndex) Sessions(key []byte) []SessionWindow {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.keys[string(key)])
}
