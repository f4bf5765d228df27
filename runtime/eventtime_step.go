package runtime

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// The event-time step: each record's event time is read before the
// operator; a record without a readable one is dead-lettered, a record
// later than the committed watermark minus the allowed lateness goes to the
// late output, and the batch's largest event time advances its partition's
// watermark when the batch commits (eventclock.go).

// EventTimeConfig turns on event time (Config.EventTime). Its zero
// durations mean none: no out-of-orderness, partitions never idle, no
// lateness allowed (the CLI's defaults are 5s, none and 5m).
type EventTimeConfig struct {
	// Extract says where a record's event time is: "json:FIELD" (a dotted
	// path reaches into nested objects), "header:NAME" or "record" (the
	// record's timestamp). Required.
	Extract string
	// Format of json: and header: values: "rfc3339" (default), "unix"
	// (seconds) or "unix-ms". Must be empty for "record".
	Format string
	// WatermarkDelay is the bounded out-of-orderness: a partition's
	// watermark is its largest event time minus this.
	WatermarkDelay time.Duration
	// IdleTimeout: a partition without records for this long (processing
	// time) stops holding the pipeline watermark back. 0: never idle.
	IdleTimeout time.Duration
	// AllowedLateness: a record at most this far behind the watermark is
	// still processed; a later one goes to the late output.
	// AllowedLatenessFor overrides it per input partition.
	AllowedLateness    time.Duration
	AllowedLatenessFor map[uint32]time.Duration
	// Window, when set, groups the kept records into event-time windows:
	// "tumbling:SIZE", "sliding:SIZE/SLIDE" (durations in Go syntax, whole
	// milliseconds; windows aligned to the Unix epoch) or "session:GAP"
	// (per record key, records at most GAP apart share a session; sessions
	// merge as records bridge them). The operator is called once per
	// window (per key and session) of a batch with its state scoped to it,
	// and its helios_window_close export (required) once the pipeline
	// watermark passes a window's end plus the allowed lateness (abi.md,
	// "Windows"). Default "": no windows.
	Window string
	// Emit is how a windowed operator emits: EmitFinal (default, "" too):
	// once per key and window, when the window closes; EmitUpdates: after
	// every record, the close call only freeing the window's state.
	// Requires Window.
	Emit string
	// LateOutput receives the records beyond the allowed lateness: "dlq"
	// (default: the dead-letter queue, code abi.FailLate), "log:TOPIC"
	// (appended in the same transaction; the topic is created with the
	// input's partition count if absent) or "drop" (counted in
	// helios_late_records_total and Stats.Late, not kept).
	LateOutput string
}

// Emit modes of a windowed pipeline (EventTimeConfig.Emit).
const (
	EmitFinal   = "final"
	EmitUpdates = "updates"
)

type lateKind uint8

const (
	lateToDLQ lateKind = iota
	lateToLog
	lateToKafka // in a fleet's Kafka transactions (sink_kafka_fleet.go)
	lateDropped
	lateUnknown
)

// parseLateOutput returns the late output's kind and, for log:, its topic.
func parseLateOutput(s string) (lateKind, string) {
	switch {
	case s == "" || s == "dlq":
		return lateToDLQ, ""
	case s == "drop":
		return lateDropped, ""
	case strings.HasPrefix(s, "log:"):
		return lateToLog, strings.TrimPrefix(s, "log:")
	case strings.HasPrefix(s, "kafka:") && len(s) > len("kafka:"):
		return lateToKafka, strings.TrimPrefix(s, "kafka:")
	}
	return lateUnknown, ""
}

// validate reports every problem of e in c.
func (e *EventTimeConfig) validate(c *Config) []error {
	var errs []error
	if _, err := eventtime.ParseExtractor(e.Extract, e.Format); err != nil {
		errs = append(errs, fmt.Errorf("pipeline: EventTime: %w", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"WatermarkDelay", e.WatermarkDelay}, {"IdleTimeout", e.IdleTimeout}, {"AllowedLateness", e.AllowedLateness}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("pipeline: EventTime: %s %v is negative", d.name, d.v))
		}
	}
	for part, d := range e.AllowedLatenessFor {
		if d < 0 {
			errs = append(errs, fmt.Errorf("pipeline: EventTime: allowed lateness %v for partition %d is negative", d, part))
		}
		if c.Source != nil && part >= c.Source.Partitions() {
			errs = append(errs, fmt.Errorf("pipeline: EventTime: allowed lateness for partition %d, but %s has %d partitions", part, c.Source.Identity(), c.Source.Partitions()))
		}
	}
	errs = append(errs, e.validateWindow(c)...)
	switch kind, topic := parseLateOutput(e.LateOutput); kind {
	case lateUnknown:
		errs = append(errs, fmt.Errorf("pipeline: EventTime: late output %q: want dlq, log:TOPIC, kafka:TOPIC or drop", e.LateOutput))
	case lateToKafka:
		_, kin := c.Source.(*kafkaSource)
		_, kout := c.Sink.(*kafkaSink)
		if !kin || !kout {
			errs = append(errs, fmt.Errorf("pipeline: EventTime: late output %s: a kafka: late output needs a kafka: input and a kafka: output "+
				"(its records commit in the pipeline's Kafka transactions); choose dlq, log:TOPIC or drop", e.LateOutput))
		}
		for _, other := range []struct {
			what string
			io   interface{ Identity() string }
		}{{"input", c.Source}, {"output", c.Sink}} {
			if other.io != nil && other.io.Identity() == e.LateOutput {
				errs = append(errs, fmt.Errorf("pipeline: EventTime: the late output %s is also the pipeline's %s: choose another topic", e.LateOutput, other.what))
			}
		}
	case lateToDLQ:
		if c.DisableDeadLetter {
			errs = append(errs, errors.New("pipeline: EventTime: the late output is the dead-letter queue, which is disabled: choose log:TOPIC or drop"))
		}
	case lateToLog:
		if err := storage.ValidateName("topic", topic); err != nil {
			errs = append(errs, fmt.Errorf("pipeline: EventTime: late output: %w", err))
		}
		for _, other := range []struct {
			what string
			io   interface{ Identity() string }
		}{{"input", c.Source}, {"output", c.Sink}} {
			if other.io != nil && other.io.Identity() == e.LateOutput {
				errs = append(errs, fmt.Errorf("pipeline: EventTime: the late output %s is also the pipeline's %s: choose another topic", e.LateOutput, other.what))
			}
		}
	}
	return errs
}

// ValidateWindow checks a window spec (EventTimeConfig.Window) as New
// does, so that a caller can report it against its own setting.
func ValidateWindow(spec string) error {
	_, err := eventtime.ParseWindowSpec(spec)
	return err
}

// validateWindow reports the problems of Window and Emit.
func (e *EventTimeConfig) validateWindow(c *Config) []error {
	var errs []error
	switch e.Emit {
	case "", EmitFinal, EmitUpdates:
	default:
		errs = append(errs, fmt.Errorf("pipeline: EventTime: emit %q: want %s or %s", e.Emit, EmitFinal, EmitUpdates))
	}
	if e.Window == "" {
		if e.Emit != "" {
			errs = append(errs, fmt.Errorf("pipeline: EventTime: emit %q without a window: set the window too", e.Emit))
		}
		return errs
	}
	if err := ValidateWindow(e.Window); err != nil {
		errs = append(errs, fmt.Errorf("pipeline: EventTime: %w", err))
	}
	if c.Plugin != nil && !c.Plugin.Info().WindowClose {
		errs = append(errs, fmt.Errorf("pipeline: EventTime: window %s: the plugin %s does not export %s, which a windowed operator needs to emit and free each window "+
			"(abi.md, section Windows); build it with a window API (the Go SDK's window package)", e.Window, c.Plugin.Name(), abi.ExportWindowClose))
	}
	return errs
}

// eventStep is what the event-time step made of one batch.
type eventStep struct {
	kept    []abi.Record     // records for the operator, in order
	times   []eventtime.Time // with windows: the event time of each kept record
	marks   []eventMark      // the batch's one mark
	late    []lateMark       // records behind the watermark, accepted or not
	dead    []DLQEntry       // unreadable event times, and late records for a dlq late output
	lateOut int              // records sent to the late output (any kind)
}

// eventTimes reads the event times of a partition's batch and routes its
// records against the committed pipeline watermark: a batch never judges
// its records by its own event times, so the decisions follow from the
// committed state the batch was read after.
func (p *Pipeline) eventTimes(part uint32, gen *generation, recs []abi.Record, lines []lineAt) (eventStep, error) {
	now := eventtime.FromStd(p.now())
	wm := p.clock.marks.Current()
	mark := eventMark{part: part, max: eventtime.NoWatermark, now: now}
	st := eventStep{kept: recs[:0]}
	w := &work{part: part, gen: gen, lines: lines}
	kind, _ := parseLateOutput(p.cfg.EventTime.LateOutput)
	for i := range recs {
		r := &recs[i]
		t, err := p.extract.Extract(r)
		if err != nil {
			msg := "event time: " + err.Error()
			if p.dlq == nil {
				return st, &RecordError{Source: p.cfg.Source.Identity(), Partition: part, Offset: r.Offset, ID: r.ID, Code: abi.FailEventTime, Message: msg}
			}
			st.dead = append(st.dead, p.deadEntry(w, r, abi.FailEventTime, msg))
			continue
		}
		mark.max = max(mark.max, t)
		late, d := p.clock.late.Decide(part, t, wm)
		if !late || d == eventtime.Accept {
			if late {
				st.late = append(st.late, lateMark{part: part, id: r.ID, eventTime: t, watermark: wm})
			}
			st.kept = append(st.kept, *r)
			if p.windows != nil {
				st.times = append(st.times, t)
			}
			continue
		}
		lm := lateMark{part: part, id: r.ID, eventTime: t, watermark: wm}
		st.lateOut++
		switch kind {
		case lateToDLQ:
			msg := fmt.Sprintf("late: event time %s is %v behind the watermark %s (allowed lateness %v)",
				t, time.Duration(wm-t)*time.Millisecond, wm, p.clock.late.AllowedLateness(part))
			st.dead = append(st.dead, p.deadEntry(w, r, abi.FailLate, msg))
		case lateToLog, lateToKafka:
			lm.entry = &archiveEntries(recs[i : i+1])[0]
		}
		st.late = append(st.late, lm)
	}
	st.marks = []eventMark{mark}
	return st, nil
}

// now is the processing time the step passes to the watermarks.
func (p *Pipeline) now() time.Time {
	if p.clockNow != nil {
		return p.clockNow()
	}
	return time.Now()
}
