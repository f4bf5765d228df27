package eventtime

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Window is the half-open event-time interval [Start, End).
type Window struct {
	Start, End Time
}

// Contains reports whether t lies in w.
func (w Window) Contains(t Time) bool { return w.Start <= t && t < w.End }

func (w Window) String() string { return "[" + w.Start.String() + ", " + w.End.String() + ")" }

// WindowKind is the kind of a WindowSpec.
type WindowKind uint8

const (
	Tumbling WindowKind = iota + 1
	Sliding
	Session
)

// maxWindowSize bounds sizes and gaps (100 years), so that window arithmetic
// on event times in [MinEventTime, MaxEventTime] cannot overflow.
const maxWindowSize = 100 * 366 * 24 * time.Hour

// WindowSpec says which windows a record belongs to. Tumbling and sliding
// windows are aligned to the Unix epoch.
type WindowSpec struct {
	Kind  WindowKind
	Size  time.Duration // tumbling, sliding: the window's length
	Slide time.Duration // sliding: the distance between window starts
	Gap   time.Duration // session: the inactivity that closes a session
}

// ParseWindowSpec parses "tumbling:SIZE", "sliding:SIZE/SLIDE" or
// "session:GAP", durations in Go syntax (1m, 30s, 1h30m). Durations must be
// whole milliseconds, positive and at most 100 years; a slide must not
// exceed its size (records between windows would belong to none). The error
// lists every problem.
func ParseWindowSpec(spec string) (WindowSpec, error) {
	var s WindowSpec
	var errs []error
	dur := func(name, v string) time.Duration {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q is not a duration (e.g. 30s, 1m, 1h)", name, v))
		case d <= 0:
			errs = append(errs, fmt.Errorf("%s %v must be positive", name, d))
		case d%time.Millisecond != 0:
			errs = append(errs, fmt.Errorf("%s %v is not a whole number of milliseconds", name, d))
		case d > maxWindowSize:
			errs = append(errs, fmt.Errorf("%s %v exceeds 100 years", name, d))
		}
		return d
	}
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "tumbling":
		s.Kind, s.Size = Tumbling, dur("size", arg)
	case "sliding":
		s.Kind = Sliding
		size, slide, ok := strings.Cut(arg, "/")
		if !ok {
			errs = append(errs, fmt.Errorf("sliding needs SIZE/SLIDE, e.g. sliding:10m/1m, got %q", arg))
			break
		}
		s.Size, s.Slide = dur("size", size), dur("slide", slide)
		if s.Slide > s.Size && s.Size > 0 {
			errs = append(errs, fmt.Errorf("slide %v exceeds size %v: records between windows would belong to none", s.Slide, s.Size))
		}
	case "session":
		s.Kind, s.Gap = Session, dur("gap", arg)
	default:
		errs = append(errs, fmt.Errorf("unknown window kind %q (want tumbling:SIZE, sliding:SIZE/SLIDE or session:GAP)", kind))
	}
	if len(errs) > 0 {
		return WindowSpec{}, fmt.Errorf("window spec %q: %w", spec, errors.Join(errs...))
	}
	return s, nil
}

// String returns the spec in ParseWindowSpec's syntax.
func (s WindowSpec) String() string {
	switch s.Kind {
	case Tumbling:
		return "tumbling:" + s.Size.String()
	case Sliding:
		return "sliding:" + s.Size.String() + "/" + s.Slide.String()
	case Session:
		return "session:" + s.Gap.String()
	}
	return "invalid"
}

// CloseBefore returns the bound below which window ends are due: a window
// closes when watermark >= end + allowedLateness, i.e. end <= the result.
func CloseBefore(watermark Time, allowedLateness time.Duration) Time {
	return watermark.Add(-allowedLateness)
}

// Assign returns the windows containing t, earliest start first: one for
// tumbling, Size/Slide (rounded up or down) for sliding, and for session the
// record's own [t, t+Gap), which a SessionIndex merges with its key's
// sessions. t must lie in [MinEventTime, MaxEventTime].
func (s WindowSpec) Assign(t Time) []Window { return s.AppendWindows(nil, t) }

// AppendWindows is Assign appending to dst.
func (s WindowSpec) AppendWindows(dst []Window, t Time) []Window {
	switch s.Kind {
	case Tumbling:
		size := s.Size.Milliseconds()
		start := Time(floorDiv(int64(t), size) * size)
		return append(dst, Window{start, start + Time(size)})
	case Sliding:
		size, slide := s.Size.Milliseconds(), s.Slide.Milliseconds()
		// Starts are the multiples of slide in (t-size, t].
		first := (floorDiv(int64(t)-size, slide) + 1) * slide
		last := floorDiv(int64(t), slide) * slide
		for start := first; start <= last; start += slide {
			dst = append(dst, Window{Time(start), Time(start + size)})
		}
		return dst
	case Session:
		return append(dst, Window{t, t.Add(s.Gap)})
	}
	return dst
}
