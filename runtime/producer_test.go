package runtime

import (
	"context"
	"errors"
	"testing"

	"github.com/heliosdb/helios-wasm/storage"
)

// TestZombieInstanceIsFenced: instance A of a pipeline stages outputs, a new
// instance B starts (new epoch) and commits; when A resumes, its commit is
// refused and nothing it staged becomes visible. A's aborted sequence
// numbers do not disturb B.
func TestZombieInstanceIsFenced(t *testing.T) {
	db := memDB(t)
	ctx := context.Background()
	db.CreateTopic("out", 1)
	instance := func() (*TransactionCoordinator, *LogSink) {
		sink, _ := NewLogSink(db, "out", 1)
		prod, err := NewIdempotentProducer(db, "pipeline:p")
		if err != nil {
			t.Fatal(err)
		}
		sink.SetProducer(prod)
		c := NewTransactionCoordinator(db, "p", CoordinatorConfig{})
		c.RegisterParticipant(sink)
		if _, err := c.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		return c, sink
	}
	stage := func(c *TransactionCoordinator, s *LogSink, v string) *Txn {
		txn, _ := c.Begin(ctx)
		if err := s.Stage(txn, 0, []OutRecord{{Value: []byte(v)}, {Value: []byte(v)}}); err != nil {
			t.Fatal(err)
		}
		return txn
	}
	ca, sa := instance()
	if err := ca.Commit(ctx, stage(ca, sa, "a1")); err != nil {
		t.Fatal(err)
	}
	zombie := stage(ca, sa, "a2") // A pauses here

	cb, sb := instance() // B starts: epoch 2
	if err := cb.Commit(ctx, stage(cb, sb, "b1")); err != nil {
		t.Fatal(err)
	}
	err := ca.Commit(ctx, zombie) // A resumes
	if !errors.Is(err, storage.ErrFenced) || zombie.State() != TxnAborted {
		t.Fatalf("zombie commit: %v (state %s), want ErrFenced and aborted", err, zombie.State())
	}
	if err := cb.Commit(ctx, stage(cb, sb, "b2")); err != nil {
		t.Fatalf("B after the zombie: %v", err)
	}
	ents, _, _ := db.ReadLog("out", 0, 0, 100, 1<<20, nil, nil)
	var got []string
	for _, e := range ents {
		got = append(got, string(e.Value))
	}
	if len(got) != 6 || got[0] != "a1" || got[2] != "b1" || got[4] != "b2" {
		t.Fatalf("log holds %q", got)
	}
}

func TestProducerRewindOnAbort(t *testing.T) {
	db := memDB(t)
	ctx := context.Background()
	db.CreateTopic("out", 1)
	sink, _ := NewLogSink(db, "out", 1)
	prod, _ := NewIdempotentProducer(db, "x")
	sink.SetProducer(prod)
	c := NewTransactionCoordinator(db, "x", CoordinatorConfig{})
	c.RegisterParticipant(sink)
	c.Recover(ctx)
	txn, _ := c.Begin(ctx)
	sink.Stage(txn, 0, []OutRecord{{Value: []byte("dropped")}})
	c.Abort(ctx, txn)
	txn, _ = c.Begin(ctx)
	sink.Stage(txn, 0, []OutRecord{{Value: []byte("kept")}})
	if err := c.Commit(ctx, txn); err != nil {
		t.Fatalf("commit after an abort: %v (sequence not rewound?)", err)
	}
	if _, seq, _, _ := db.LastSequence("x", "out", 0); seq != 0 {
		t.Fatalf("last sequence %d, want 0", seq)
	}
}
