package runtime

import (
	"fmt"
	"math"
	"time"

	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// The event-time component: a pipeline's committed watermarks and late-data
// counters (Config.EventTime). Transactions carry what their batches saw
// (effects.marks, effects.late); write stores the resulting snapshots in the
// transaction's batch, committed applies the same calls to the in-memory
// view, so the view is always the last durable snapshot.

// Records of storage.SeqEventTime, per pipeline: the watermarks snapshot,
// the late-data counters, and one record per tracked late record (the most
// recent eventtime.DefaultMaxTracked), in slot lateSlots + seq % bound, so
// that a transaction writes a few bytes per late record, not the ring.
const (
	eventTimeWatermarks uint64 = 0
	eventTimeLate       uint64 = 1
	lateSlots           uint64 = 1 << 32
)

// eventMark is what one processed batch saw of event time.
type eventMark struct {
	part uint32
	max  eventtime.Time // largest event time read; NoWatermark if none
	now  eventtime.Time // processing time of the batch
}

// lateMark is a record behind the pipeline watermark when it was read.
type lateMark struct {
	part      uint32
	id        [16]byte
	eventTime eventtime.Time
	watermark eventtime.Time
	// entry is the record for a log: late output; nil when the record is
	// accepted, or goes to the dead-letter queue (as a dead letter of its
	// transaction) or is dropped.
	entry *storage.Entry
}

// eventClock is the committed event-time state of one pipeline.
type eventClock struct {
	db          *storage.DB
	pipeline    string
	marks       *eventtime.Watermarks
	late        *eventtime.LateDataHandler
	lateTopic   string // the log: late output's topic, "" otherwise
	lateParts   uint32
	lateToKafka bool // late records go to a kafka: late output, in a fleet's Kafka transactions
}

// newEventClock loads the committed snapshots of pipeline.
func newEventClock(db *storage.DB, pipeline string, partitions uint32, cfg *EventTimeConfig) (*eventClock, error) {
	marks, err := eventtime.NewWatermarks(cfg.WatermarkDelay, cfg.IdleTimeout)
	if err != nil {
		return nil, err
	}
	late, err := eventtime.NewLateDataHandler(cfg.AllowedLateness, eventtime.DefaultMaxTracked)
	if err != nil {
		return nil, err
	}
	for part, d := range cfg.AllowedLatenessFor {
		if err := late.SetAllowedLateness(part, d); err != nil {
			return nil, err
		}
	}
	c := &eventClock{db: db, pipeline: pipeline, marks: marks, late: late}
	data, found, err := db.GetSeq(storage.SeqEventTime, pipeline, eventTimeWatermarks)
	if err == nil && found {
		if err = marks.UnmarshalBinary(data); err != nil {
			err = fmt.Errorf("committed watermarks: %w", err)
		}
	}
	if err == nil {
		err = loadLate(db, pipeline, late)
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: event-time state is damaged or unreadable: %w", pipeline, err)
	}
	kind, topic := parseLateOutput(cfg.LateOutput)
	c.lateToKafka = kind == lateToKafka
	if kind == lateToLog {
		if _, err := db.Topic(topic); err != nil {
			if err := db.CreateTopic(topic, max(partitions, 1)); err != nil {
				return nil, fmt.Errorf("late output: %w", err)
			}
		}
		ti, err := db.Topic(topic)
		if err != nil {
			return nil, fmt.Errorf("late output: %w", err)
		}
		c.lateTopic, c.lateParts = topic, ti.Partitions
	}
	return c, nil
}

// loadLate restores late's committed counters and tracked records.
func loadLate(db *storage.DB, pipeline string, late *eventtime.LateDataHandler) error {
	data, found, err := db.GetSeq(storage.SeqEventTime, pipeline, eventTimeLate)
	switch {
	case err != nil || !found:
	case eventtime.IsCounters(data):
		err = late.RestoreCounters(data, func(slot uint64) ([]byte, bool, error) {
			return db.GetSeq(storage.SeqEventTime, pipeline, lateSlots+slot)
		})
	default:
		err = late.UnmarshalBinary(data) // a snapshot with the records in it, from an earlier version
	}
	if err != nil {
		return fmt.Errorf("committed late-data state: %w", err)
	}
	return nil
}

// applyMarks makes the calls a transaction's marks stand for.
func applyMarks(marks *eventtime.Watermarks, e *effects) {
	now := eventtime.NoWatermark
	for _, m := range e.marks {
		if m.max != eventtime.NoWatermark {
			marks.Observe(m.part, m.max, m.now)
		} else {
			marks.Register(m.part, m.now)
		}
		now = max(now, m.now)
	}
	if len(e.marks) > 0 {
		marks.Tick(now)
	}
}

// marksAfter returns the watermarks as they will be once e commits.
func (c *eventClock) marksAfter(e *effects) *eventtime.Watermarks {
	marks := c.marks.Clone()
	applyMarks(marks, e)
	return marks
}

func lateInputs(e *effects) []eventtime.LateInput {
	in := make([]eventtime.LateInput, len(e.late))
	for i, l := range e.late {
		in[i] = eventtime.LateInput{Partition: l.part, ID: l.id, EventTime: l.eventTime, Watermark: l.watermark}
	}
	return in
}

// write adds the snapshots after e, and the log: late output's records, to b.
func (c *eventClock) write(b *storage.Batch, e *effects) error {
	if len(e.marks) > 0 {
		data, _ := c.marksAfter(e).MarshalBinary()
		if err := b.PutSeq(storage.SeqEventTime, c.pipeline, eventTimeWatermarks, data); err != nil {
			return fmt.Errorf("event time: %w", err)
		}
	}
	if len(e.late) > 0 {
		counters, tracked := c.late.Preview(lateInputs(e))
		if err := b.PutSeq(storage.SeqEventTime, c.pipeline, eventTimeLate, counters); err != nil {
			return fmt.Errorf("event time: %w", err)
		}
		for _, t := range tracked {
			slot := lateSlots + t.Seq%uint64(c.late.MaxTracked())
			if err := b.PutSeq(storage.SeqEventTime, c.pipeline, slot, eventtime.EncodeLateRecord(t.LateRecord)); err != nil {
				return fmt.Errorf("event time: %w", err)
			}
		}
	}
	for _, l := range e.late {
		if l.entry == nil || c.lateToKafka {
			continue // nothing to write here, or produced in the Kafka transaction
		}
		if c.lateTopic == "" {
			return fmt.Errorf("a late record for a log: late output, but the pipeline has none")
		}
		if err := b.Append(c.lateTopic, l.part%c.lateParts, l.entry); err != nil {
			return fmt.Errorf("late output: %w", err)
		}
	}
	return nil
}

// committed updates the in-memory view once e is durable.
func (c *eventClock) committed(e *effects) {
	applyMarks(c.marks, e)
	for _, l := range e.late {
		c.late.Handle(l.part, l.id, l.eventTime, l.watermark)
	}
}

// seconds converts a watermark to Unix seconds for a gauge: -Inf before any
// record, +Inf at the end of a bounded input.
func seconds(t eventtime.Time) float64 {
	switch t {
	case eventtime.NoWatermark:
		return math.Inf(-1)
	case eventtime.EndOfTime:
		return math.Inf(1)
	}
	return float64(t) / 1000
}

// updateMetrics sets the watermark gauges of pipeline from the committed
// view.
func (c *eventClock) updateMetrics(m *Metrics, name string, parts uint32, now time.Time) {
	m.Watermark.WithLabelValues(name).Set(seconds(c.marks.Current()))
	for part := range parts {
		mark, _, ok := c.marks.Partition(part)
		if !ok || mark == eventtime.NoWatermark {
			continue
		}
		lag := 0.0
		if mark != eventtime.EndOfTime {
			lag = max(float64(eventtime.FromStd(now)-mark)/1000, 0)
		}
		m.WatermarkLag.WithLabelValues(name, partName(part)).Set(lag)
	}
}
