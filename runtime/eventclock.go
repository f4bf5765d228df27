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

// Records of storage.SeqEventTime, per pipeline.
const (
	eventTimeWatermarks uint64 = 0
	eventTimeLate       uint64 = 1
)

// maxTrackedLate bounds the recent late records kept (and committed with
// every transaction that has late records).
const maxTrackedLate = 100

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
	late, err := eventtime.NewLateDataHandler(cfg.AllowedLateness, maxTrackedLate)
	if err != nil {
		return nil, err
	}
	for part, d := range cfg.AllowedLatenessFor {
		if err := late.SetAllowedLateness(part, d); err != nil {
			return nil, err
		}
	}
	c := &eventClock{db: db, pipeline: pipeline, marks: marks, late: late}
	for _, s := range []struct {
		id uint64
		u  interface{ UnmarshalBinary([]byte) error }
	}{{eventTimeWatermarks, marks}, {eventTimeLate, late}} {
		data, found, err := db.GetSeq(storage.SeqEventTime, pipeline, s.id)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: event-time state: %w", pipeline, err)
		}
		if found {
			if err := s.u.UnmarshalBinary(data); err != nil {
				return nil, fmt.Errorf("pipeline %s: committed event-time state is damaged: %w", pipeline, err)
			}
		}
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

// apply makes the calls a transaction's marks and late records stand for.
func apply(marks *eventtime.Watermarks, late *eventtime.LateDataHandler, e *effects) {
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
	for _, l := range e.late {
		late.Handle(l.part, l.id, l.eventTime, l.watermark)
	}
}

// after returns the watermarks and late records as they will be once e
// commits.
func (c *eventClock) after(e *effects) (*eventtime.Watermarks, *eventtime.LateDataHandler) {
	marks, late := c.marks.Clone(), c.late.Clone()
	apply(marks, late, e)
	return marks, late
}

// write adds the snapshots after e, and the log: late output's records, to b.
func (c *eventClock) write(b *storage.Batch, e *effects) error {
	marks, late := c.after(e)
	if len(e.marks) > 0 {
		data, _ := marks.MarshalBinary()
		if err := b.PutSeq(storage.SeqEventTime, c.pipeline, eventTimeWatermarks, data); err != nil {
			return fmt.Errorf("event time: %w", err)
		}
	}
	if len(e.late) > 0 {
		data, _ := late.MarshalBinary()
		if err := b.PutSeq(storage.SeqEventTime, c.pipeline, eventTimeLate, data); err != nil {
			return fmt.Errorf("event time: %w", err)
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
func (c *eventClock) committed(e *effects) { apply(c.marks, c.late, e) }

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
