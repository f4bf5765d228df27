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
	instance := func() *coordinator {
		sink, _ := newLogSink(db, "out", 1)
		prod, err := newIdempotentProducer(db, "pipeline:p")
		if err != nil {
			t.Fatal(err)
		}
		c := newCoordinator(db, "p", coordinatorConfig{}, &parties{sink: sink, producer: prod})
		if _, err := c.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	stage := func(c *coordinator, v string) *transaction {
		txn, _ := c.Begin(ctx)
		txn.effects.outputs = []Output{{Records: []OutRecord{{Value: []byte(v)}, {Value: []byte(v)}}}}
		return txn
	}
	ca := instance()
	if err := ca.Commit(ctx, stage(ca, "a1")); err != nil {
		t.Fatal(err)
	}
	zombie := stage(ca, "a2") // A pauses here

	cb := instance() // B starts: epoch 2
	if err := cb.Commit(ctx, stage(cb, "b1")); err != nil {
		t.Fatal(err)
	}
	err := ca.Commit(ctx, zombie) // A resumes
	if !errors.Is(err, storage.ErrFenced) || zombie.State() != txnAborted {
		t.Fatalf("zombie commit: %v (state %s), want ErrFenced and aborted", err, zombie.State())
	}
	if err := cb.Commit(ctx, stage(cb, "b2")); err != nil {
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
	sink, _ := newLogSink(db, "out", 1)
	prod, _ := newIdempotentProducer(db, "x")
	c := newCoordinator(db, "x", coordinatorConfig{}, &parties{sink: sink, producer: prod})
	c.Recover(ctx)
	// A transaction whose appends took sequence numbers and then aborted
	// (its prepare failed after the sink staged).
	txn, _ := c.Begin(ctx)
	txn.effects.outputs = []Output{{Records: []OutRecord{{Value: []byte("dropped")}}}}
	txn.effects.dead = []DLQEntry{{Value: []byte("no queue: fails the write")}}
	if err := c.Commit(ctx, txn); !errors.Is(err, errPrepareFailed) {
		t.Fatalf("commit with an effect for an absent queue: %v, want ErrPrepareFailed", err)
	}
	txn, _ = c.Begin(ctx)
	txn.effects.outputs = []Output{{Records: []OutRecord{{Value: []byte("kept")}}}}
	if err := c.Commit(ctx, txn); err != nil {
		t.Fatalf("commit after an abort: %v (sequence not rewound?)", err)
	}
	if _, seq, _, _ := db.LastSequence("x", "out", 0); seq != 0 {
		t.Fatalf("last sequence %d, want 0", seq)
	}
}
