package runtime

import (
	"fmt"

	"github.com/heliosdb/helios-wasm/storage"
)

// A transaction is a value: effects holds everything it changes, parties
// turns that into the data directory's single synced batch (write) and,
// once the batch is durable or discarded, into the components' in-memory
// views (committed, aborted). Adding a kind of effect means a field here and
// a case in each of the three functions below; TestEveryEffectIsWritten
// fails for a field that write ignores.

// Output is the outputs of one processed batch read from input partition
// Part, in order.
type Output struct {
	Part    uint32
	Records []OutRecord
}

// effects is everything one transaction changes.
type effects struct {
	outputs     []Output
	offsets     []offsetMark    // in batch order: the last one per partition wins
	consumed    int             // input records (decision record, checkpoint cadence)
	checkpoint  bool            // write a checkpoint whatever the record count
	state       []*writeSet     // operator state, in call order
	dead        []DLQEntry      // new dead-letter entries; write assigns their ids
	deadRemoved []uint64        // entries that leave the queue (retried, purged)
	deadUpdated []DLQEntry      // entries rewritten (failed again on retry)
	seen        []seenID        // message ids to remember (dedup)
	archive     []storage.Entry // input of a non-resumable source, for replay
	marks       []eventMark     // event time seen per batch: watermarks advance
	late        []lateMark      // records behind the watermark: counted, log: late output
}

// seenID is a message id to remember, with the input partition of its
// record (a fleet's dedup ids follow their partition).
type seenID struct {
	part uint32
	id   [16]byte
}

// offsetMark is how far a transaction consumed a source partition.
type offsetMark struct {
	part uint32
	pos  Position
	// assignment is the fleet assignment the batch was read under (0
	// outside a fleet; fleet.owns).
	assignment uint64
}

// parties are the components of one pipeline that its transactions change.
// A nil component is absent; an effect aimed at an absent component is an
// error, never dropped.
type parties struct {
	pipeline string
	sink     Sink // nil: the transaction writes no outputs (dlq purge)
	offsets  *offsetManager
	state    *stateStore
	dlq      *DeadLetterQueue
	dedup    *deduplicator
	// producer fences and numbers a StoreSink's appends: a zombie instance
	// of the pipeline (an older epoch) cannot commit.
	producer   *idempotentProducer
	archiveMax int         // records kept in the archive topic (0: no archive)
	clock      *eventClock // watermarks and late-data counters (Config.EventTime)
}

// external is the sink when it lives outside the data directory (nil
// otherwise): the one participant of two-phase commit.
func (ps *parties) external() TxnSink {
	s, _ := ps.sink.(TxnSink)
	return s
}

// write adds t's effects to its batch.
func (ps *parties) write(t *transaction) error {
	e, b := &t.effects, t.batch
	absent := func(kind, what string) error {
		return fmt.Errorf("transaction %d has %s but the pipeline has no %s", t.id, kind, what)
	}
	if ps.producer != nil {
		b.SetProducer(ps.producer.ID(), ps.producer.Epoch())
		b.SequenceAppends(ps.producer.Reserve)
	}
	// A StoreSink stages every transaction, with or without outputs (an
	// outbox replaces its content); a TxnSink's Prepare writes them.
	if s, ok := ps.sink.(StoreSink); ok {
		if err := s.Stage(b, e.outputs); err != nil {
			return fmt.Errorf("sink %s: %w", s.Identity(), err)
		}
	} else if len(e.outputs) > 0 && ps.external() == nil {
		return absent("outputs", "sink that can write them")
	}
	if len(e.offsets) > 0 || e.checkpoint {
		if ps.offsets == nil {
			return absent("source offsets", "offset manager")
		}
		ckpt, err := ps.offsets.write(b, t.id, e)
		if err != nil {
			return err
		}
		t.checkpointed = ckpt
	}
	if len(e.state) > 0 {
		if ps.state == nil {
			return absent("state writes", "state store")
		}
		if err := ps.state.write(b, e.state); err != nil {
			return err
		}
	}
	if len(e.dead)+len(e.deadRemoved)+len(e.deadUpdated) > 0 {
		if ps.dlq == nil {
			return absent("dead letters", "dead-letter queue")
		}
		if err := ps.dlq.write(b, e); err != nil {
			return err
		}
	}
	if len(e.seen) > 0 {
		if ps.dedup == nil {
			return absent("message ids", "deduplicator")
		}
		if err := ps.dedup.write(b, e.seen); err != nil {
			return err
		}
	}
	if len(e.archive) > 0 {
		if ps.archiveMax <= 0 {
			return absent("input to archive", "archive")
		}
		topic := ArchiveTopic(ps.pipeline)
		for i := range e.archive {
			if err := b.Append(topic, 0, &e.archive[i]); err != nil {
				return fmt.Errorf("archive: %w", err)
			}
		}
		b.RetainLog(topic, 0, uint64(ps.archiveMax))
	}
	if len(e.marks)+len(e.late) > 0 {
		if ps.clock == nil {
			return absent("event time", "event-time state")
		}
		if err := ps.clock.write(b, e); err != nil {
			return err
		}
	}
	return nil
}

// committed updates the in-memory views after t's batch is durable.
func (ps *parties) committed(t *transaction) {
	e := &t.effects
	if ps.offsets != nil {
		ps.offsets.committed(e, t.checkpointed)
	}
	if ps.state != nil {
		ps.state.committed(e.state)
	}
	if ps.dlq != nil {
		ps.dlq.committed(len(e.dead), len(e.deadRemoved))
	}
	if ps.dedup != nil {
		ps.dedup.release(e.seen)
	}
	if ps.clock != nil {
		ps.clock.committed(e)
	}
}

// aborted releases what t held: dead-letter room, pending message ids and
// the sequence numbers its appends took. The batch must still be open.
func (ps *parties) aborted(t *transaction) {
	e := &t.effects
	if ps.dlq != nil {
		ps.dlq.aborted(len(e.dead))
	}
	if ps.dedup != nil {
		ps.dedup.release(e.seen)
	}
	ps.abandoned(t)
	// Event time: the in-memory view changes only on commit; nothing to
	// release. State write sets stay pending: the pipeline stops after an
	// abort, and a restart rebuilds state from the store.
}

// abandoned gives back the sequence numbers t's appends took and nothing
// else: t's effects stay held for another transaction that writes them
// (write changes nothing in memory, so they can be written again). The
// batch must still be open.
func (ps *parties) abandoned(t *transaction) {
	if ps.producer != nil {
		t.batch.FirstSequences(ps.producer.Rewind)
	}
}
