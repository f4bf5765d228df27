package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
)

// Session windows (EventTimeConfig.Window "session:GAP"; abi.md, "Session
// windows"). A session belongs to one session key (the record's key): its
// records are at most GAP apart, and it grows, and merges with the key's
// other sessions, as records arrive. Each session has a fixed identity, the
// window it opened with (eventtime.SessionWindow.State), under which its
// state and records live while its extent changes. A partition's state
// holds, per session key S:
//
//	'k' S                      the key's open sessions (sessionList)
//	'd' end id S               due entry: the session closes after end
//	's' len(S) S id K          operator state key K of the session
//	'r' len(S) S id seq        a record of the session, kept for merges
//
// (end and id as 8 bytes, ordered like window-scoped keys; len(S) 2 bytes;
// seq 4 bytes). When sessions merge, the survivor (the one that starts
// earliest) keeps its state and the others' records are run through the
// operator again under the survivor's scope, their outputs discarded: the
// operator needs no merge function (RATIONALE.md, "Why are sessions merged
// by replaying their records?"). Due entries sort by end, so a watermark's
// due sessions are one range scan, as for fixed windows.

// Leading bytes of the session layout's state keys.
const (
	sessionListTag  = 'k'
	sessionDueTag   = 'd'
	sessionStateTag = 's'
	sessionRecTag   = 'r'
)

// maxSessionKey bounds a session key (it is stored with a 2-byte length).
const maxSessionKey = 1<<16 - 1

// openSession is a session of the list stored under 'k' S.
type openSession struct {
	eventtime.SessionWindow
	next uint32 // the seq of its next kept record
}

func sessionListKey(s []byte) []byte { return append([]byte{sessionListTag}, s...) }

func sessionDueKey(end eventtime.Time, id eventtime.Window, s []byte) []byte {
	b := binary.BigEndian.AppendUint64([]byte{sessionDueTag}, orderedTime(end))
	b = binary.BigEndian.AppendUint64(b, orderedTime(id.Start))
	return append(b, s...)
}

// sessionPrefix is 'tag' len(S) S id.
func sessionPrefix(tag byte, s []byte, id eventtime.Window) []byte {
	b := binary.BigEndian.AppendUint16([]byte{tag}, uint16(len(s)))
	b = append(b, s...)
	return binary.BigEndian.AppendUint64(b, orderedTime(id.Start))
}

// prefixEnd is the least key above every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i]++; end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func encodeSessions(ss []openSession) []byte {
	b := make([]byte, 0, len(ss)*36)
	for _, s := range ss {
		for _, t := range []eventtime.Time{s.Window.Start, s.Window.End, s.State.Start, s.State.End} {
			b = binary.BigEndian.AppendUint64(b, uint64(t))
		}
		b = binary.BigEndian.AppendUint32(b, s.next)
	}
	return b
}

func decodeSessions(b []byte) ([]openSession, error) {
	if len(b)%36 != 0 {
		return nil, fmt.Errorf("session list of %d bytes (not a multiple of 36)", len(b))
	}
	ss := make([]openSession, 0, len(b)/36)
	for ; len(b) > 0; b = b[36:] {
		t := func(i int) eventtime.Time { return eventtime.Time(binary.BigEndian.Uint64(b[8*i:])) }
		ss = append(ss, openSession{SessionWindow: eventtime.SessionWindow{
			Window: eventtime.Window{Start: t(0), End: t(1)}, State: eventtime.Window{Start: t(2), End: t(3)}},
			next: binary.BigEndian.Uint32(b[32:])})
	}
	return ss, nil
}

// encodeKeptRecord is the value of a kept record: offset, timestamp, id,
// then key, value and header block, each with a 4-byte length.
func encodeKeptRecord(r *abi.Record) []byte {
	b := make([]byte, 0, 40+len(r.Key)+len(r.Value)+abi.KVBlockSize(r.Headers))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp))
	b = append(b, r.ID[:]...)
	for _, f := range [][]byte{r.Key, r.Value, abi.AppendKVBlock(nil, r.Headers)} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func decodeKeptRecord(b []byte, part uint32) (abi.Record, error) {
	r := abi.Record{Partition: part}
	bad := errors.New("kept session record is truncated")
	if len(b) < 32 {
		return r, bad
	}
	r.Offset = int64(binary.BigEndian.Uint64(b))
	r.Timestamp = int64(binary.BigEndian.Uint64(b[8:]))
	copy(r.ID[:], b[16:32])
	b = b[32:]
	var fields [3][]byte
	for i := range fields {
		if len(b) < 4 || uint64(len(b)-4) < uint64(binary.BigEndian.Uint32(b)) {
			return r, bad
		}
		n := binary.BigEndian.Uint32(b)
		fields[i], b = b[4:4+n], b[4+n:]
	}
	r.Key, r.Value = fields[0], fields[1]
	hs, err := abi.DecodeKVBlock(fields[2])
	r.Headers = hs
	return r, err
}

// sessionGroup is a batch's records of one session key, in batch order.
type sessionGroup struct {
	key   []byte
	recs  []abi.Record
	times []eventtime.Time
}

func groupBySessionKey(recs []abi.Record, times []eventtime.Time) []sessionGroup {
	var groups []sessionGroup
	index := map[string]int{}
	for i := range recs {
		g, ok := index[string(recs[i].Key)]
		if !ok {
			g = len(groups)
			index[string(recs[i].Key)] = g
			groups = append(groups, sessionGroup{key: recs[i].Key})
		}
		groups[g].recs = append(groups[g].recs, recs[i])
		groups[g].times = append(groups[g].times, times[i])
	}
	return groups
}

// sessionPlan is what a batch does to one session key's sessions.
type sessionPlan struct {
	before []openSession // the key's sessions before the batch
	after  []openSession // and after it
	// into maps the identity (State) of every session of before, and of
	// every session the batch opened, to the session it is now part of.
	into map[eventtime.Window]eventtime.Window
	// recs gives each final session's new records, in batch order.
	recs map[eventtime.Window][]abi.Record
}

// planSessions adds a batch's records of one key to its sessions.
func planSessions(gap time.Duration, key []byte, before []openSession, recs []abi.Record, times []eventtime.Time) (sessionPlan, error) {
	idx, err := eventtime.NewSessionIndex(gap)
	if err != nil {
		return sessionPlan{}, err
	}
	ws := make([]eventtime.SessionWindow, len(before))
	for i, s := range before {
		ws[i] = s.SessionWindow
	}
	if err := idx.Set(key, ws); err != nil {
		return sessionPlan{}, fmt.Errorf("session key %q: %w", key, err)
	}
	pl := sessionPlan{before: before, into: map[eventtime.Window]eventtime.Window{}, recs: map[eventtime.Window][]abi.Record{}}
	for _, s := range before {
		pl.into[s.State] = s.State
	}
	resolve := func(id eventtime.Window) eventtime.Window {
		for pl.into[id] != id {
			id = pl.into[id]
		}
		return id
	}
	owner := make([]eventtime.Window, len(recs))
	for i, t := range times {
		u := idx.Add(key, t)
		if _, ok := pl.into[u.Session.State]; !ok {
			pl.into[u.Session.State] = u.Session.State
		}
		for _, m := range u.MergeStates {
			pl.into[m] = u.Session.State
		}
		owner[i] = u.Session.State
	}
	for id := range pl.into {
		pl.into[id] = resolve(id)
	}
	for i := range recs {
		f := pl.into[owner[i]]
		pl.recs[f] = append(pl.recs[f], recs[i])
	}
	next := map[eventtime.Window]uint32{}
	for _, s := range before {
		next[s.State] = s.next
	}
	for _, s := range idx.Sessions(key) {
		pl.after = append(pl.after, openSession{SessionWindow: s, next: next[s.State]})
	}
	return pl, nil
}

// processSessions runs a batch through the operator one session at a time:
// per session key, it merges the batch's records into the key's sessions,
// replays the records of sessions merged away into their survivor, calls
// the operator with each session's new records, and keeps those records
// and the sessions' extents and due entries.
func (p *Pipeline) processSessions(ctx context.Context, part uint32, gen *generation, inst *host.Instance, recs []abi.Record, times []eventtime.Time, lines []lineAt) (*work, error) {
	w := &work{part: part, gen: gen, lines: lines}
	for _, g := range groupBySessionKey(recs, times) {
		if len(g.key) > maxSessionKey {
			for i := range g.recs {
				msg := fmt.Sprintf("session key of %d bytes: session windows allow at most %d", len(g.key), maxSessionKey)
				if p.dlq == nil {
					return nil, &RecordError{Source: p.cfg.Source.Identity(), Partition: part, Offset: g.recs[i].Offset, ID: g.recs[i].ID, Code: abi.FailEventTime, Message: msg}
				}
				w.dead = append(w.dead, p.deadEntry(w, &g.recs[i], abi.FailEventTime, msg))
			}
			continue
		}
		if err := p.processSessionKey(ctx, w, inst, g); err != nil {
			return nil, err
		}
	}
	w.win = nil
	return w, nil
}

func (p *Pipeline) processSessionKey(ctx context.Context, w *work, inst *host.Instance, g sessionGroup) error {
	raw, _, err := p.state.NewWriteSetAfter(w.part, w.ws).Get(sessionListKey(g.key))
	if err != nil {
		return err
	}
	before, err := decodeSessions(raw)
	if err != nil {
		return fmt.Errorf("partition %d, session key %q: %w", w.part, g.key, err)
	}
	pl, err := planSessions(p.windows.spec.Gap, g.key, before, g.recs, g.times)
	if err != nil {
		return fmt.Errorf("partition %d: %w", w.part, err)
	}
	meta := p.state.NewWriteSet(w.part) // index, due entries and kept records, written last
	stored := map[eventtime.Window]openSession{}
	for _, s := range before {
		stored[s.State] = s
		// Due entries of sessions merged away or whose extent changes go
		// (before the new ones are written: an entry may be rewritten).
		if f := pl.into[s.State]; f != s.State || !hasSession(pl.after, s.State, s.Window) {
			meta.Delete(sessionDueKey(s.Window.End, s.State, g.key))
		}
	}
	for i := range pl.after {
		f := &pl.after[i]
		call := &windowCall{win: f.Window, scope: sessionPrefix(sessionStateTag, g.key, f.State)}
		// Sessions of before merged into f: their records run again under
		// f's scope (outputs discarded), then their state and records go.
		var replay []abi.Record
		for _, m := range before {
			if m.State == f.State || pl.into[m.State] != f.State {
				continue
			}
			kept, err := p.keptRecords(w.part, g.key, m.State)
			if err != nil {
				return err
			}
			replay = append(replay, kept...)
			if err := p.deleteSession(w.part, meta, g.key, m.State, sessionStateTag, sessionRecTag); err != nil {
				return err
			}
		}
		w.win = call
		dead := len(w.dead) // records that fail from here on are not kept
		if len(replay) > 0 {
			n := len(w.recs)
			if err := p.processInto(ctx, w, inst, replay); err != nil {
				return err
			}
			if err := p.retryRecords(ctx, inst, w); err != nil {
				return err
			}
			w.recs = w.recs[:n]
		}
		fresh := pl.recs[f.State]
		if len(fresh) > 0 {
			if err := p.processInto(ctx, w, inst, fresh); err != nil {
				return err
			}
			if err := p.retryRecords(ctx, inst, w); err != nil {
				return err
			}
		}
		failed := map[string]bool{}
		for _, d := range w.dead[dead:] {
			failed[d.MessageID] = true
		}
		for _, r := range append(replay, fresh...) {
			if failed[messageID(r.ID)] {
				continue
			}
			meta.Put(binary.BigEndian.AppendUint32(sessionPrefix(sessionRecTag, g.key, f.State), f.next), encodeKeptRecord(&r))
			f.next++
		}
		if old, ok := stored[f.State]; !ok || old.Window != f.Window {
			meta.Put(sessionDueKey(f.Window.End, f.State, g.key), nil)
		}
	}
	meta.Put(sessionListKey(g.key), encodeSessions(pl.after))
	w.ws = append(w.ws, meta)
	return nil
}

// hasSession reports whether ss has the session id with extent win.
func hasSession(ss []openSession, id, win eventtime.Window) bool {
	for _, s := range ss {
		if s.State == id {
			return s.Window == win
		}
	}
	return false
}

// keptRecords reads the records kept for session id of key s, in order.
func (p *Pipeline) keptRecords(part uint32, s []byte, id eventtime.Window) ([]abi.Record, error) {
	prefix := sessionPrefix(sessionRecTag, s, id)
	keys, err := p.state.scanRange(part, prefix, prefixEnd(prefix), -1)
	if err != nil {
		return nil, err
	}
	ws := p.state.NewWriteSet(part)
	recs := make([]abi.Record, 0, len(keys))
	for _, k := range keys {
		v, ok, err := ws.Get(k)
		if err != nil || !ok {
			return nil, errors.Join(err, fmt.Errorf("kept record %x vanished", k))
		}
		r, err := decodeKeptRecord(v, part)
		if err != nil {
			return nil, fmt.Errorf("partition %d, session %s of key %q: %w", part, id, s, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// deleteSession deletes, in ws, the keys of session id of key s under each
// of tags (sessionStateTag: its state; sessionRecTag: its kept records).
func (p *Pipeline) deleteSession(part uint32, ws *writeSet, s []byte, id eventtime.Window, tags ...byte) error {
	for _, tag := range tags {
		prefix := sessionPrefix(tag, s, id)
		keys, err := p.state.scanRange(part, prefix, prefixEnd(prefix), -1)
		if err != nil {
			return err
		}
		for _, k := range keys {
			ws.Delete(k)
		}
	}
	return nil
}

// fireSessions closes the sessions of part that end before bound,
// like fireWindows: one helios_window_close call per session (over its
// state keys), up to a batch size of sessions per work.
func (p *Pipeline) fireSessions(ctx, readCtx context.Context, part uint32, gen *generation, inst *host.Instance, pos Position, assignment uint64,
	bound eventtime.Time, ch chan<- *work) (stopped bool, err error) {
	from := []byte{sessionDueTag}
	upper := []byte{sessionDueTag + 1}
	if bound != eventtime.EndOfTime {
		// Strictly before bound: a record at bound is still accepted, and
		// joins a session ending there (records a gap apart share one).
		upper = append([]byte{sessionDueTag}, dueUpper(bound-1)...)
	}
	for {
		due, err := p.state.scanRange(part, from, upper, p.cfg.BatchSize)
		if err != nil || len(due) == 0 {
			return false, err
		}
		from = append(bytes.Clone(due[len(due)-1]), 0)
	closeAgain: // again when a live retry changed state meanwhile
		epoch := p.stateEpochs[part].Load()
		w := &work{part: part, gen: gen, pos: pos, assignment: assignment}
		for _, d := range due {
			if err := p.closeSession(ctx, w, inst, d); err != nil {
				return false, err
			}
		}
		w.win = nil
		stopped, err := p.handOver(ctx, readCtx, w, 0, ch, epoch)
		if errors.Is(err, errStaleState) {
			goto closeAgain
		}
		if stopped || err != nil {
			return stopped, err
		}
	}
}

// closeSession closes the session of due entry d into w: the close call
// over its state keys, then the deletion of its state, kept records, due
// entry and list entry.
func (p *Pipeline) closeSession(ctx context.Context, w *work, inst *host.Instance, d []byte) error {
	if len(d) < 17 {
		return fmt.Errorf("partition %d: state key %x is not a session due entry: the pipeline's state was written without session windows; "+
			"run session windows under another pipeline name", w.part, d)
	}
	idStart := eventtime.Time(binary.BigEndian.Uint64(d[9:]) ^ (1 << 63))
	key := d[17:]
	meta := p.state.NewWriteSetAfter(w.part, w.ws)
	raw, _, err := meta.Get(sessionListKey(key))
	if err != nil {
		return err
	}
	ss, err := decodeSessions(raw)
	if err != nil {
		return fmt.Errorf("partition %d, session key %q: %w", w.part, key, err)
	}
	i := 0
	for i < len(ss) && ss[i].State.Start != idStart {
		i++
	}
	if i == len(ss) {
		return fmt.Errorf("partition %d, session key %q: due entry %x has no open session", w.part, key, d)
	}
	s := ss[i]
	scope := sessionPrefix(sessionStateTag, key, s.State)
	stateKeys, err := p.state.scanRange(w.part, scope, prefixEnd(scope), -1)
	if err != nil {
		return err
	}
	if len(stateKeys) > 0 {
		for j, k := range stateKeys {
			stateKeys[j] = k[len(scope):]
		}
		w.win = &windowCall{win: s.Window, scope: scope}
		if err := p.closeWindow(ctx, w, inst, stateKeys); err != nil {
			return err
		}
	}
	meta = p.state.NewWriteSet(w.part)
	// closeWindow deleted the state keys it closed: the kept records are left.
	if err := p.deleteSession(w.part, meta, key, s.State, sessionRecTag); err != nil {
		return err
	}
	meta.Delete(d)
	if ss = append(ss[:i], ss[i+1:]...); len(ss) == 0 {
		meta.Delete(sessionListKey(key))
	} else {
		meta.Put(sessionListKey(key), encodeSessions(ss))
	}
	w.ws = append(w.ws, meta)
	return nil
}
