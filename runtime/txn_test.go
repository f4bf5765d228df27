package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/storage"
)

func TestMain(m *testing.M) {
	var err error
	if ExampleOperator, err = testutil.Build("build/plugins/wat/uppercase.wasm"); err != nil {
		fmt.Fprintf(os.Stderr, "the runnable examples' operator: %v (make deps installs wat2wasm)\n", err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(kafkatest.Wrap(m), goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2/vfs.(*diskHealthCheckingFS).startTickerLocked.func1"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func memDB(t testing.TB) *storage.DB {
	t.Helper()
	db, err := storage.Open("db", storage.Options{Logger: quiet, FS: vfs.NewMem(), OnFatal: func(err error) { t.Errorf("fatal: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fakeSink is an external sink that records calls and fails on demand.
type fakeSink struct {
	prepareErr  error
	commitFails int // fail this many Commit calls first
	calls       []string
	sleep       time.Duration
	recovered   Committed
}

func (f *fakeSink) Identity() string { return "fake" }
func (f *fakeSink) Close() error     { return nil }
func (f *fakeSink) Prepare(_ context.Context, txn uint64, outs []Output) (json.RawMessage, error) {
	f.calls = append(f.calls, "prepare")
	time.Sleep(f.sleep)
	if f.prepareErr != nil {
		return nil, f.prepareErr
	}
	return json.Marshal(map[string]int{"txn": int(txn), "outputs": len(outs)})
}
func (f *fakeSink) Commit(context.Context, uint64) error {
	f.calls = append(f.calls, "commit")
	if f.commitFails > 0 {
		f.commitFails--
		return errors.New("transient")
	}
	return nil
}
func (f *fakeSink) Abort(context.Context, uint64) error {
	f.calls = append(f.calls, "abort")
	return nil
}
func (f *fakeSink) Recover(_ context.Context, last Committed) error {
	f.recovered = last
	return nil
}

func TestCoordinator(t *testing.T) {
	tests := []struct {
		name      string
		sink      fakeSink
		timeout   time.Duration
		wantErr   error
		wantState txnState
		wantCalls string
		metrics   coordinatorMetrics // Total/Committed/Aborted/TimedOut/PrepareFailures only
	}{
		{name: "commit", wantState: txnCommitted, wantCalls: "[prepare commit]", metrics: coordinatorMetrics{Total: 2, Committed: 2}},
		{name: "prepare fails", sink: fakeSink{prepareErr: errors.New("disk full")},
			wantErr: errPrepareFailed, wantState: txnAborted, wantCalls: "[prepare abort]", metrics: coordinatorMetrics{Total: 2, Committed: 1, Aborted: 1, PrepareFailures: 1}},
		{name: "timeout", sink: fakeSink{sleep: 30 * time.Millisecond}, timeout: 10 * time.Millisecond,
			wantErr: errTxnTimedOut, wantState: txnTimedOut, wantCalls: "[prepare abort]", metrics: coordinatorMetrics{Total: 2, Committed: 1, Aborted: 1, TimedOut: 1}},
		{name: "phase 2 retried", sink: fakeSink{commitFails: 2}, wantState: txnCommitted,
			wantCalls: "[prepare commit commit commit]", metrics: coordinatorMetrics{Total: 2, Committed: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := memDB(t)
			sink := &fakeSink{}
			c := newCoordinator(db, "p", coordinatorConfig{Timeout: tt.timeout}, &parties{sink: sink})
			ctx := context.Background()
			if _, err := c.Begin(ctx); err == nil {
				t.Fatal("Begin before Recover succeeded")
			}
			d, err := c.Recover(ctx)
			if err != nil || d.TxnID != 0 || sink.recovered.Data != nil || sink.recovered.Pipeline != "p" {
				t.Fatalf("recover of a new pipeline: %+v %+v %v", d, sink.recovered, err)
			}
			*sink = tt.sink // faults are armed after the initial transaction of Recover
			txn, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			txn.effects.outputs = []Output{{Part: 0, Records: []OutRecord{{Value: []byte("x")}}}}
			err = c.Commit(ctx, txn)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("commit: %v, want %v", err, tt.wantErr)
			}
			if txn.State() != tt.wantState {
				t.Fatalf("state %s, want %s", txn.State(), tt.wantState)
			}
			if got := fmtCalls(sink.calls); got != tt.wantCalls {
				t.Fatalf("the sink saw %s, want %s", got, tt.wantCalls)
			}
			m := c.Metrics()
			m.AvgCommitTime, m.LastTxnID = 0, 0
			if m != tt.metrics {
				t.Fatalf("metrics %+v, want %+v", m, tt.metrics)
			}
			if err := c.Commit(ctx, txn); !errors.Is(err, errTxnFinished) {
				t.Fatalf("second commit: %v", err)
			}
			// A restarted coordinator resumes after the last decision, and
			// the sink recovers with what it prepared for it.
			sink2 := &fakeSink{}
			c2 := newCoordinator(db, "p", coordinatorConfig{}, &parties{sink: sink2})
			d, err = c2.Recover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantLast := uint64(0)
			if tt.wantErr == nil {
				wantLast = 1
				if want := `{"outputs":1,"txn":1}`; string(sink2.recovered.Data) != want || sink2.recovered.Txn != 1 {
					t.Fatalf("sink recovered with %+v, want txn 1 and %s", sink2.recovered, want)
				}
			}
			if d.TxnID != wantLast {
				t.Fatalf("recovered decision %d, want %d", d.TxnID, wantLast)
			}
			if next, _ := c2.Begin(ctx); next.ID() != wantLast+1 {
				t.Fatalf("next txn id %d", next.ID())
			}
		})
	}
}

// TestTimedOutTransactionHoldsEffects: a transaction that times out is
// aborted at the sink either way; with holdOnTimeout its message ids stay
// pending (the pipeline commits the same effects again), without it they
// are released.
func TestTimedOutTransactionHoldsEffects(t *testing.T) {
	for _, hold := range []bool{false, true} {
		t.Run(fmt.Sprintf("hold=%v", hold), func(t *testing.T) {
			ctx := context.Background()
			db := memDB(t)
			sink := &fakeSink{}
			dd := newDeduplicator(db, "p", DedupConfig{})
			c := newCoordinator(db, "p", coordinatorConfig{Timeout: 10 * time.Millisecond}, &parties{sink: sink, dedup: dd})
			if _, err := c.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			sink.sleep = 30 * time.Millisecond
			id := [16]byte{1}
			if dup, err := dd.CheckAndRecord(id); dup || err != nil {
				t.Fatalf("a new id: duplicate %v, %v", dup, err)
			}
			txn, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			txn.effects.outputs = []Output{{Part: 0, Records: []OutRecord{{Value: []byte("x")}}}}
			txn.effects.seen = []seenID{{0, id}}
			txn.holdOnTimeout = hold
			if err := c.Commit(ctx, txn); !errors.Is(err, errTxnTimedOut) {
				t.Fatalf("commit: %v, want a timeout", err)
			}
			if got := fmtCalls(sink.calls); got != "[prepare commit prepare abort]" {
				t.Fatalf("the sink saw %s", got)
			}
			if dup, _ := dd.CheckAndRecord(id); dup != hold {
				t.Fatalf("the id is pending after the timeout: %v, want %v", dup, hold)
			}
		})
	}
}

func fmtCalls(c []string) string {
	s := "["
	for i, x := range c {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s + "]"
}

func TestOffsetManagerCheckpoints(t *testing.T) {
	db := memDB(t)
	ctx := context.Background()
	om, err := newOffsetManager(db, "p", "log:t", 2, offsetConfig{CheckpointEvery: 100, KeepCheckpoints: 3})
	if err != nil {
		t.Fatal(err)
	}
	c := newCoordinator(db, "p", coordinatorConfig{}, &parties{offsets: om})
	if _, err := c.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if ck, _ := om.RecoverFromCheckpoint(); ck != nil {
		t.Fatal("checkpoint before any records")
	}
	for i := 1; i <= 10; i++ {
		txn, _ := c.Begin(ctx)
		txn.effects.offsets = []offsetMark{{part: uint32(i % 2), pos: Position{Offset: int64(i * 50), Ordinal: int64(i)}}}
		txn.effects.consumed = 50
		if err := c.Commit(ctx, txn); err != nil {
			t.Fatal(err)
		}
	}
	if pos, ok := om.Committed(0); !ok || pos.Offset != 500 {
		t.Fatalf("partition 0 at %v", pos)
	}
	cks, err := om.Checkpoints()
	if err != nil || len(cks) != 3 {
		t.Fatalf("%d checkpoints kept (%v), want 3", len(cks), err)
	}
	last, _ := om.RecoverFromCheckpoint()
	if last.Offsets[0].Offset != 500 || last.Offsets[1].Offset != 450 || last.ID != 4 {
		t.Fatalf("latest checkpoint %+v", last)
	}
	if _, err := om.CreateCheckpoint(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := om.CleanupOldCheckpoints(1); err != nil {
		t.Fatal(err)
	}
	if cks, _ := om.Checkpoints(); len(cks) != 1 || cks[0].ID != 5 {
		t.Fatalf("after cleanup: %+v", cks)
	}
	// A fresh manager loads the committed positions.
	om2, _ := newOffsetManager(db, "p", "log:t", 2, offsetConfig{})
	if pos, _ := om2.Committed(1); pos.Offset != 450 || pos.Ordinal != 9 {
		t.Fatalf("reloaded position %v", pos)
	}
}

func TestStateOverlay(t *testing.T) {
	db := memDB(t)
	ctx := context.Background()
	s := newStateStore(db, "p")
	c := newCoordinator(db, "p", coordinatorConfig{}, &parties{state: s})
	c.Recover(ctx)
	get := func(w *writeSet, k string) string {
		v, ok, err := w.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return "<none>"
		}
		return string(v)
	}
	w1 := s.NewWriteSet(0)
	w1.Put([]byte("a"), []byte("1"))
	w1.Put([]byte("b"), []byte("1"))
	s.Enqueue(w1)
	w2 := s.NewWriteSet(0) // the next batch sees w1 before it commits
	if get(w2, "a") != "1" {
		t.Fatal("pending write invisible to the next batch")
	}
	w2.Delete([]byte("b"))
	w2.Put([]byte("a"), []byte("2"))
	s.Enqueue(w2)
	if other := s.NewWriteSet(1); get(other, "a") != "<none>" {
		t.Fatal("state leaked across partitions")
	}
	txn, _ := c.Begin(ctx)
	txn.effects.state = []*writeSet{w1, w2}
	if err := c.Commit(ctx, txn); err != nil {
		t.Fatal(err)
	}
	w3 := s.NewWriteSet(0)
	if get(w3, "a") != "2" || get(w3, "b") != "<none>" {
		t.Fatalf("committed state a=%s b=%s", get(w3, "a"), get(w3, "b"))
	}
	if len(s.pending[0]) != 0 {
		t.Fatal("committed write sets still pending")
	}
}
