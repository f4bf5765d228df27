package eventtime

import (
	"math"
	"strconv"
	"time"
)

// Time is an event time or a watermark in milliseconds since the Unix epoch
// (UTC), the unit of abi.Record.Timestamp.
type Time int64

const (
	// MinEventTime and MaxEventTime bound the event times an Extractor
	// returns: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, the range
	// of RFC 3339. Window arithmetic inside this range never overflows.
	MinEventTime Time = -62135596800000
	MaxEventTime Time = 253402300799999

	// NoWatermark is the watermark of a partition that has seen no record.
	NoWatermark Time = math.MinInt64
	// EndOfTime is the watermark after the end of a bounded input: every
	// window is complete.
	EndOfTime Time = math.MaxInt64
)

// FromStd converts t to a Time (truncated to the millisecond).
func FromStd(t time.Time) Time { return Time(t.UnixMilli()) }

// Std converts t to a time.Time in UTC.
func (t Time) Std() time.Time { return time.UnixMilli(int64(t)).UTC() }

// String formats t as RFC 3339 with milliseconds; the two sentinels print
// as "no-watermark" and "end-of-time".
func (t Time) String() string {
	switch {
	case t == NoWatermark:
		return "no-watermark"
	case t == EndOfTime:
		return "end-of-time"
	case t < MinEventTime || t > MaxEventTime:
		return strconv.FormatInt(int64(t), 10) + "ms"
	}
	return t.Std().Format("2006-01-02T15:04:05.000Z07:00")
}

// Add returns t+d (d truncated to the millisecond), saturating at
// NoWatermark and EndOfTime instead of wrapping; the sentinels stay put.
func (t Time) Add(d time.Duration) Time {
	if t == NoWatermark || t == EndOfTime {
		return t
	}
	ms := d.Milliseconds()
	switch {
	case ms > 0 && t > EndOfTime-Time(ms):
		return EndOfTime
	case ms < 0 && t < NoWatermark-Time(ms):
		return NoWatermark
	}
	return t + Time(ms)
}

// floorDiv is a/b rounded towards negative infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
