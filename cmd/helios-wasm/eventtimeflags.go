package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/runtime"
)

// Defaults of the event-time flags (and of serve's pipeline fields).
const (
	defaultWatermarkDelay  = 5 * time.Second
	defaultAllowedLateness = 5 * time.Minute
	defaultLateOutput      = "dlq"
)

// eventTimeFlags turn on event time (run). serve takes the same settings
// per pipeline in its file (servedSpec).
func eventTimeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "event-time", Usage: "read each record's event time from `SOURCE`: json:FIELD (a dotted path reaches into objects), header:NAME or record (the record's timestamp); turns on watermarks and late-data handling (default: off); a record whose event time cannot be read is dead-lettered (code 113)"},
		&cli.StringFlag{Name: "event-time-format", Usage: "how json: and header: event times are written: rfc3339 (default), unix (seconds) or unix-ms"},
		&cli.DurationFlag{Name: "watermark-delay", Value: defaultWatermarkDelay, Usage: "bounded out-of-orderness: a partition's watermark is its largest event time minus this"},
		&cli.DurationFlag{Name: "idle-timeout", Usage: "a partition without records for this long stops holding the watermark back (default 0: never idle)"},
		&cli.DurationFlag{Name: "allowed-lateness", Value: defaultAllowedLateness, Usage: "a record at most this far behind the watermark is still processed; a later one goes to --late-output"},
		&cli.StringSliceFlag{Name: "allowed-lateness-for", Usage: "`PARTITION=DURATION`: the allowed lateness of one input partition (repeatable)"},
		&cli.StringFlag{Name: "window", Usage: "group records into event-time windows: tumbling:SIZE, sliding:SIZE/SLIDE or session:GAP (e.g. tumbling:1m, sliding:10m/1m, session:30s; sessions are per record key); the operator must be a window operator (helios_window_close, abi.md \"Windows\"); a window emits once the watermark passes its end plus --allowed-lateness, and every open window at the end of a bounded input (default: no windows)"},
		&cli.StringFlag{Name: "emit", Usage: "how a window operator emits: final (default: one result per key and window, when it closes) or updates (the result after every record); needs --window"},
		&cli.StringFlag{Name: "late-output", Value: defaultLateOutput, Usage: "where records beyond the allowed lateness go: dlq (code 114), log:TOPIC (same transaction), kafka:TOPIC (kafka: -> kafka: pipelines, same Kafka transaction) or drop (counted in helios_late_records_total)"},
	}
}

// eventTimeSettings are the event-time settings as given (flags or a served
// pipeline's fields), before validation.
type eventTimeSettings struct {
	source, format  string
	delay, idle     time.Duration
	lateness        time.Duration
	latenessFor     []string // PARTITION=DURATION
	lateOutput      string
	window, emit    string
	setWithoutEvent []string // settings given without source, for the error
}

// eventTimeFromFlags reads run's event-time flags.
func eventTimeFromFlags(c *cli.Context) eventTimeSettings {
	s := eventTimeSettings{source: c.String("event-time"), format: c.String("event-time-format"),
		delay: c.Duration("watermark-delay"), idle: c.Duration("idle-timeout"), lateness: c.Duration("allowed-lateness"),
		latenessFor: c.StringSlice("allowed-lateness-for"), lateOutput: c.String("late-output"),
		window: c.String("window"), emit: c.String("emit")}
	for _, f := range eventTimeFlags()[1:] {
		if c.IsSet(f.Names()[0]) {
			s.setWithoutEvent = append(s.setWithoutEvent, flagSource(c, f.Names()[0]))
		}
	}
	return s
}

// config validates s and returns the pipeline's EventTime (nil: off).
// where names a setting ("watermark-delay", ...) in messages.
func (s eventTimeSettings) config(where func(setting string) string) (*runtime.EventTimeConfig, error) {
	if s.source == "" {
		if len(s.setWithoutEvent) > 0 {
			return nil, fmt.Errorf("%s: event-time settings need %s (where to read the event time)", strings.Join(s.setWithoutEvent, ", "), where("event-time"))
		}
		return nil, nil
	}
	var errs []error
	for _, d := range []struct {
		setting string
		v       time.Duration
	}{{"watermark-delay", s.delay}, {"idle-timeout", s.idle}, {"allowed-lateness", s.lateness}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", where(d.setting), d.v))
		}
	}
	cfg := &runtime.EventTimeConfig{Extract: s.source, Format: s.format, WatermarkDelay: s.delay, IdleTimeout: s.idle,
		AllowedLateness: s.lateness, LateOutput: s.lateOutput, Window: s.window, Emit: s.emit}
	if s.window != "" {
		if err := runtime.ValidateWindow(s.window); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where("window"), err))
		}
	}
	switch {
	case s.emit != "" && s.emit != runtime.EmitFinal && s.emit != runtime.EmitUpdates:
		errs = append(errs, fmt.Errorf("%s %q: want final or updates", where("emit"), s.emit))
	case s.emit != "" && s.window == "":
		errs = append(errs, fmt.Errorf("%s %s: applies to windows only: set %s too", where("emit"), s.emit, where("window")))
	}
	for _, kv := range s.latenessFor {
		p, d, err := parseLatenessFor(kv)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", where("allowed-lateness-for"), kv, err))
			continue
		}
		if cfg.AllowedLatenessFor == nil {
			cfg.AllowedLatenessFor = map[uint32]time.Duration{}
		}
		if _, dup := cfg.AllowedLatenessFor[p]; dup {
			errs = append(errs, fmt.Errorf("%s %q: partition %d given twice", where("allowed-lateness-for"), kv, p))
		}
		cfg.AllowedLatenessFor[p] = d
	}
	switch out := s.lateOutput; {
	case out == "dlq" || out == "drop" || strings.HasPrefix(out, "log:") && len(out) > len("log:") ||
		strings.HasPrefix(out, "kafka:") && len(out) > len("kafka:"):
	default:
		errs = append(errs, fmt.Errorf("%s %q: want dlq, log:TOPIC, kafka:TOPIC or drop", where("late-output"), out))
	}
	if s.format != "" && s.source == "record" {
		errs = append(errs, fmt.Errorf("%s %q: applies to json: and header: sources only (record timestamps are milliseconds)", where("event-time-format"), s.format))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseLatenessFor parses PARTITION=DURATION.
func parseLatenessFor(kv string) (uint32, time.Duration, error) {
	ps, ds, ok := strings.Cut(kv, "=")
	if !ok {
		return 0, 0, errors.New("want PARTITION=DURATION, e.g. 3=10m")
	}
	p, err := strconv.ParseUint(strings.TrimSpace(ps), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("partition %q is not a partition number", ps)
	}
	d, err := time.ParseDuration(strings.TrimSpace(ds))
	if err != nil || d < 0 {
		return 0, 0, fmt.Errorf("duration %q: want a non-negative duration such as 30s or 10m", ds)
	}
	return uint32(p), d, nil
}

// windowSpec is the window spec of an event-time configuration ("" for none).
func windowSpec(c *runtime.EventTimeConfig) string {
	if c == nil {
		return ""
	}
	return c.Window
}
