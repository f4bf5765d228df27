package runtime

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestEveryEffectIsWritten: each kind of effect a transaction can carry
// (each field of effects) is durable once the transaction commits. A new
// field without a row here fails the test: add it to parties.write,
// committed and aborted, then here.
func TestEveryEffectIsWritten(t *testing.T) {
	ctx := context.Background()
	id := [16]byte{7}
	type env struct {
		db    *storage.DB
		ps    *parties
		entry uint64 // a dead-letter entry committed before the transaction
	}
	kinds := map[string]struct {
		set   func(e *effects, v *env)
		check func(v *env) (bool, error)
	}{
		"outputs": {
			func(e *effects, _ *env) {
				e.outputs = []Output{{Part: 0, Records: []OutRecord{{Value: []byte("out")}}}}
			},
			func(v *env) (bool, error) {
				ents, _, err := v.db.ReadLog("out", 0, 0, 10, 1<<20, nil, nil)
				return len(ents) == 1 && string(ents[0].Value) == "out", err
			}},
		"offsets": {
			func(e *effects, _ *env) { e.offsets = []offsetMark{{part: 1, pos: Position{Offset: 42}}} },
			func(v *env) (bool, error) {
				pos, ok, err := v.db.GetOffset("p", "log:in", 1)
				return ok && pos.Offset == 42, err
			}},
		"consumed": {
			func(e *effects, _ *env) { e.consumed = 5 },
			func(v *env) (bool, error) {
				_, data, _, err := v.db.LatestSeq(storage.SeqTxn, "p")
				var d decisionRecord
				json.Unmarshal(data, &d)
				return d.Records == 5, err
			}},
		"checkpoint": {
			func(e *effects, _ *env) { e.checkpoint = true },
			func(v *env) (bool, error) {
				ck, err := v.ps.offsets.RecoverFromCheckpoint()
				return ck != nil, err
			}},
		"state": {
			func(e *effects, v *env) {
				w := v.ps.state.NewWriteSet(0)
				w.Put([]byte("k"), []byte("v"))
				v.ps.state.Enqueue(w)
				e.state = []*writeSet{w}
			},
			func(v *env) (bool, error) {
				val, ok, err := v.db.GetState("p", 0, []byte("k"))
				return ok && string(val) == "v", err
			}},
		"dead": {
			func(e *effects, v *env) {
				v.ps.dlq.Reserve(ctx, 1, false, nil)
				e.dead = []DLQEntry{{Value: []byte("bad"), Error: "why"}}
			},
			func(v *env) (bool, error) { return v.ps.dlq.Size() == 2, nil }},
		"deadRemoved": {
			func(e *effects, v *env) { e.deadRemoved = []uint64{v.entry} },
			func(v *env) (bool, error) { return v.ps.dlq.Size() == 0, nil }},
		"deadUpdated": {
			func(e *effects, v *env) {
				d, _ := v.ps.dlq.Get(v.entry)
				d.RetryCount = 3
				e.deadUpdated = []DLQEntry{d}
			},
			func(v *env) (bool, error) {
				d, err := v.ps.dlq.Get(v.entry)
				return d.RetryCount == 3, err
			}},
		"seen": {
			func(e *effects, _ *env) { e.seen = []seenID{{0, id}} },
			func(v *env) (bool, error) {
				dup, err := newDeduplicator(v.db, "p", DedupConfig{}).CheckAndRecord(id)
				return dup, err
			}},
		"archive": {
			func(e *effects, _ *env) { e.archive = []storage.Entry{{Value: []byte("in")}} },
			func(v *env) (bool, error) {
				ents, _, err := v.db.ReadLog(ArchiveTopic("p"), 0, 0, 10, 1<<20, nil, nil)
				return len(ents) == 1, err
			}},
		"marks": {
			func(e *effects, _ *env) { e.marks = []eventMark{{part: 1, max: 10_000, now: 1}} },
			func(v *env) (bool, error) {
				data, found, err := v.db.GetSeq(storage.SeqEventTime, "p", eventTimeWatermarks)
				w, _ := eventtime.NewWatermarks(0, 0)
				if !found || err != nil {
					return false, err
				}
				if err := w.UnmarshalBinary(data); err != nil {
					return false, err
				}
				mark, _, ok := w.Partition(1)
				return ok && mark == 10_000, nil
			}},
		"late": {
			func(e *effects, _ *env) {
				e.late = []lateMark{{part: 0, eventTime: 5, watermark: 10, entry: &storage.Entry{Value: []byte("late")}}}
			},
			func(v *env) (bool, error) {
				rep, err := LateRecords(v.db, "p")
				if err != nil {
					return false, err
				}
				ents, _, err := v.db.ReadLog("late", 0, 0, 10, 1<<20, nil, nil)
				return rep.Dropped == 1 && len(rep.Recent) == 1 && len(ents) == 1 && string(ents[0].Value) == "late", err
			}},
	}
	fields := reflect.TypeOf(effects{})
	for i := range fields.NumField() {
		name := fields.Field(i).Name
		k, ok := kinds[name]
		if !ok {
			t.Errorf("effect %q has no row in this test: is it written by parties.write?", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			db := memDB(t)
			for _, topic := range []string{"out", "in", ArchiveTopic("p")} {
				if err := db.CreateTopic(topic, 2); err != nil {
					t.Fatal(err)
				}
			}
			sink, _ := newLogSink(db, "out", 2)
			offsets, _ := newOffsetManager(db, "p", "log:in", 2, offsetConfig{})
			dlq, _ := newDeadLetterQueue(db, "p", dlqConfig{})
			prod, _ := newIdempotentProducer(db, "pipeline:p")
			clock, err := newEventClock(db, "p", 2, &EventTimeConfig{Extract: "record", LateOutput: "log:late"})
			if err != nil {
				t.Fatal(err)
			}
			ps := &parties{sink: sink, offsets: offsets, state: newStateStore(db, "p"), dlq: dlq,
				dedup: newDeduplicator(db, "p", DedupConfig{}), producer: prod, archiveMax: 10, clock: clock}
			c := newCoordinator(db, "p", coordinatorConfig{}, ps)
			if _, err := c.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			v := &env{db: db, ps: ps}
			// One dead-letter entry exists beforehand, for removal and rewrite.
			dlq.Reserve(ctx, 1, false, nil)
			txn, _ := c.Begin(ctx)
			txn.effects.dead = []DLQEntry{{Value: []byte("earlier")}}
			if err := c.Commit(ctx, txn); err != nil {
				t.Fatal(err)
			}
			v.entry = txn.effects.dead[0].ID

			txn, _ = c.Begin(ctx)
			k.set(&txn.effects, v)
			if err := c.Commit(ctx, txn); err != nil {
				t.Fatal(err)
			}
			if ok, err := k.check(v); !ok || err != nil {
				t.Fatalf("effect %s not in the store after commit (err %v)", name, err)
			}
		})
	}
}

// TestEffectWithoutComponentFails: an effect aimed at a component the
// pipeline does not have aborts the transaction; nothing is dropped
// silently.
func TestEffectWithoutComponentFails(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		set  func(*effects)
	}{
		{"outputs without sink", func(e *effects) { e.outputs = []Output{{Records: []OutRecord{{Value: []byte("x")}}}} }},
		{"offsets without offset manager", func(e *effects) { e.offsets = []offsetMark{{part: 0, pos: Position{Offset: 1}}} }},
		{"dead letters without queue", func(e *effects) { e.dead = []DLQEntry{{Value: []byte("x")}} }},
		{"ids without deduplicator", func(e *effects) { e.seen = []seenID{{0, [16]byte{1}}} }},
		{"archive without archive", func(e *effects) { e.archive = []storage.Entry{{Value: []byte("x")}} }},
		{"watermarks without event time", func(e *effects) { e.marks = []eventMark{{part: 0, max: 1}} }},
		{"late records without event time", func(e *effects) { e.late = []lateMark{{eventTime: 1, watermark: 2}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := memDB(t)
			c := newCoordinator(db, "p", coordinatorConfig{}, nil)
			if _, err := c.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			txn, _ := c.Begin(ctx)
			tt.set(&txn.effects)
			if err := c.Commit(ctx, txn); err == nil || txn.State() != txnAborted {
				t.Fatalf("commit: %v (state %s), want an abort", err, txn.State())
			}
		})
	}
}
