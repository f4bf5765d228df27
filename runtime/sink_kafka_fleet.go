package runtime

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
	"github.com/heliosdb/helios-wasm/storage"
)

// A kafka: sink in a fleet (fleet.go): the Kafka transaction is the
// decision, and the data directory is written after it.

// decidingSink is an external participant whose own commit is the
// transaction's decision: the coordinator prepares it with every effect
// (not only the outputs), commits it first, and then writes the data
// directory's batch, which is a cache that recovery can rebuild.
type decidingSink interface {
	TxnSink
	prepareAll(ctx context.Context, t *transaction) (json.RawMessage, error)
}

// recoverFleet opens the instance's transactional writer, which fences
// this instance's previous process and aborts its open transaction. There
// is nothing to roll forward: a transaction Kafka did not commit never
// reached the data directory.
func (s *kafkaSink) recoverFleet(ctx context.Context, last kafkaSinkData) error {
	s.instance = s.fleet.instanceID(last.Instance)
	s.opts.Instance = s.instance
	return s.open(ctx)
}

// fleetSink is the kafka: sink of a fleet: the one decidingSink.
type fleetSink struct{ *kafkaSink }

// prepareAll produces transaction t in one Kafka transaction: its outputs,
// its state changes to the changelog (partition = input partition; a
// deletion is a tombstone), its dedup ids to the dedup topic, its records
// for a kafka: late output, its dead letters to the dead-letter topic, and
// its input offsets for the group. The changelog and dedup offsets the
// broker gave are added to t's batch: the data directory is then known to
// include those topics up to them.
func (s fleetSink) prepareAll(ctx context.Context, t *transaction) (json.RawMessage, error) {
	if s.w == nil {
		return nil, errors.New("kafka sink: Prepare before Recover")
	}
	e := &t.effects
	f := s.fleet
	if err := s.convert(e.outputs); err != nil {
		return nil, err
	}
	var placed []kafka.PlacedRecord
	var parts []uint32 // the input partition of each changelog and dedup record, placed first
	for _, ws := range e.state {
		for _, k := range ws.keys {
			r := kafka.PlacedRecord{Topic: f.changelog, Partition: int32(ws.part), Key: []byte(k)}
			if v := ws.vals[k]; v != nil {
				r.Value = *v
				if r.Value == nil {
					r.Value = []byte{} // an empty value is a value, not a tombstone
				}
			}
			placed = append(placed, r)
			parts = append(parts, ws.part)
		}
	}
	if len(e.seen) > 0 {
		expiry := binary.BigEndian.AppendUint64(nil, uint64(f.p.dedup.expiry()))
		for _, id := range e.seen {
			placed = append(placed, kafka.PlacedRecord{Topic: f.dedupTopic, Partition: int32(id.part), Key: id.id[:], Value: expiry})
			parts = append(parts, id.part)
		}
	}
	for _, l := range e.late {
		if l.entry != nil && f.lateTopic != "" {
			placed = append(placed, lateRecord(f.lateTopic, f.lateParts, l))
		}
	}
	for i := range e.dead {
		placed = append(placed, deadLetterRecord(f.deadTopic, f.src.parts, &e.dead[i]))
	}
	data, err := json.Marshal(kafkaSinkData{Topic: s.topic, Txn: t.id, Instance: s.instance})
	if err != nil {
		return nil, err
	}
	if s.produced = len(s.recs) > 0 || len(placed) > 0 || len(e.offsets) > 0; !s.produced {
		return data, nil // nothing for Kafka (the pipeline's first, empty transaction)
	}
	var got []int64
	var marks *eventtime.Watermarks // the partitions' watermarks once t commits
	if f.p.clock != nil {
		marks = f.p.clock.marksAfter(e)
	}
	retryUntil := time.Now().Add(max(3*f.src.cfg.SessionTimeout, 30*time.Second))
	for {
		offsets, err := f.offsets(e.offsets)
		if err != nil {
			return nil, err
		}
		txn := kafka.Txn{Outputs: s.recs, Placed: placed, Offsets: offsets}
		if offsets != nil {
			txn.OffsetMetadata = func(got []int64) map[int32]string { return f.offsetMetadata(offsets, placed, parts, got, marks) }
		}
		got, err = s.w.PrepareTxn(ctx, t.id, txn)
		if err == nil {
			break
		}
		if errors.Is(err, kafka.ErrTxnTimedOut) && f.awaitDisowned(ctx, e.offsets) {
			// Frozen beyond both the session and the transaction timeout
			// (a long pause): the broker aborted the transaction, whose
			// partitions are lost anyway. A new writer goes on.
			if oerr := s.open(ctx); oerr != nil {
				return nil, errors.Join(err, oerr)
			}
			return nil, fmt.Errorf("%w: %w", errDisowned, err)
		}
		if time.Now().After(retryUntil) {
			return nil, s.fenced(err)
		}
		switch {
		case errors.Is(err, kafka.ErrRebalanced) && offsets != nil:
			// A rebalance began between reading the group's generation
			// and the broker's check: the Kafka transaction is aborted,
			// and the same one is made again under the next generation,
			// unless a partition it commits was lost meanwhile (f.offsets
			// refuses).
			if err := f.awaitGeneration(ctx, offsets.Generation, e.offsets); err != nil {
				return nil, err
			}
		case kafka.Transient(err):
			// A broker died (the transaction's coordinator, a leader):
			// nothing of the transaction is committed anywhere. A new
			// writer (which fences the old one's transaction) makes it
			// again once the cluster has moved the broker's work.
			f.p.cfg.Logger.Warn("a Kafka transaction failed on a broker that is down or moving: making it again",
				"pipeline", f.p.cfg.Name, "txn", t.id, "error", err)
			if oerr := s.reopen(ctx, retryUntil); oerr != nil {
				return nil, errors.Join(err, oerr)
			}
		default:
			return nil, s.fenced(err)
		}
	}
	// The data directory's batch now holds the transaction's state and
	// ids: record how far into the two topics it reaches.
	applied, appliedIDs := map[uint32]int64{}, map[uint32]int64{}
	for i, part := range parts {
		if placed[i].Topic == f.dedupTopic {
			appliedIDs[part] = max(appliedIDs[part], got[i]+1)
		} else {
			applied[part] = max(applied[part], got[i]+1)
		}
	}
	for part, next := range applied {
		if err := f.putApplied(t.batch, part, next); err != nil {
			return nil, err
		}
	}
	for part, next := range appliedIDs {
		if err := t.batch.PutOffset(s.pipeline, f.dedupSource(), part, storage.Position{Offset: next}); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// reopen replaces the transactional writer after a second's pause, trying
// again while the brokers stay unreachable, until deadline.
func (s fleetSink) reopen(ctx context.Context, deadline time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		err := s.open(ctx)
		if err == nil || !kafka.Transient(err) || time.Now().After(deadline) {
			return err
		}
	}
}

// lateRecord is a record beyond the allowed lateness as a record of a
// kafka: late output of parts partitions: as it was read, in its input
// partition modulo parts.
func lateRecord(topic string, parts uint32, l lateMark) kafka.PlacedRecord {
	r := kafka.PlacedRecord{Topic: topic, Partition: int32(l.part % max(parts, 1)), Key: l.entry.Key, Value: l.entry.Value}
	if r.Value == nil {
		r.Value = []byte{}
	}
	r.Headers, _ = blockHeaders(l.entry.Headers) // encoded by the host from a record it read
	return r
}

// deadLetterRecord is a dead letter as a record of the pipeline's
// dead-letter topic: the input record's key and value, what failed in
// headers, in the input record's partition.
func deadLetterRecord(topic string, parts uint32, d *DLQEntry) kafka.PlacedRecord {
	r := kafka.PlacedRecord{Topic: topic, Partition: int32(d.Partition % max(parts, 1)), Key: d.Key, Value: d.Value}
	if r.Value == nil {
		r.Value = []byte{}
	}
	r.Headers = []kafka.Header{
		{Key: "helios-error", Value: []byte(d.Error)},
		{Key: "helios-error-code", Value: strconv.AppendUint(nil, uint64(d.Code), 10)},
		{Key: "helios-source", Value: []byte(d.Source)},
		{Key: "helios-partition", Value: strconv.AppendUint(nil, uint64(d.Partition), 10)},
		{Key: "helios-offset", Value: strconv.AppendInt(nil, d.Offset, 10)},
		{Key: "helios-message-id", Value: []byte(d.MessageID)},
		{Key: "helios-plugin-hash", Value: []byte(d.PluginHash)},
	}
	for _, k := range slices.Sorted(maps.Keys(d.Metadata)) { // a window close's state and window
		r.Headers = append(r.Headers, kafka.Header{Key: "helios-" + strings.ReplaceAll(k, "_", "-"), Value: []byte(d.Metadata[k])})
	}
	return r
}
