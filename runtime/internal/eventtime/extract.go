package eventtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
)

// Reasons an event time cannot be read. Extract wraps exactly one of them
// with the field or header and the offending value, so a DLQ entry says what
// to fix.
var (
	ErrMissing    = errors.New("event time missing")
	ErrWrongType  = errors.New("event time has the wrong type")
	ErrUnparsable = errors.New("event time unparsable")
	ErrOutOfRange = errors.New("event time out of range")
)

// Format says how a JSON value or header text encodes a time.
type Format uint8

const (
	// RFC3339 is a string such as "2026-11-30T15:04:05.123Z" (the default).
	RFC3339 Format = iota
	// Unix is a number of seconds since the epoch; fractions are allowed and
	// rounded to the nearest millisecond.
	Unix
	// UnixMs is a number of milliseconds since the epoch; fractions are
	// rounded to the nearest millisecond.
	UnixMs
)

var formatNames = [...]string{RFC3339: "rfc3339", Unix: "unix", UnixMs: "unix-ms"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat parses "rfc3339", "unix" or "unix-ms"; "" is RFC3339.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return RFC3339, nil
	}
	for f, name := range formatNames {
		if s == name {
			return Format(f), nil
		}
	}
	return 0, fmt.Errorf("unknown event time format %q (want rfc3339, unix or unix-ms)", s)
}

type sourceKind uint8

const (
	fromJSON sourceKind = iota
	fromHeader
	fromRecord
)

// Extractor reads a record's event time as its spec says. It is immutable
// and safe for concurrent use.
type Extractor struct {
	spec   string
	kind   sourceKind
	path   []string // fromJSON: field names, outermost first
	header string   // fromHeader
	format Format
}

// ParseExtractor parses a spec:
//
//	json:FIELD   a field of the JSON value; a dotted path (a.b.c) reaches
//	             into nested objects
//	header:NAME  a header's value (text)
//	record       the record's own timestamp (abi.Record.Timestamp, ms)
//
// format ("rfc3339" (default when empty), "unix" or "unix-ms") applies to
// json and header sources. The error lists every problem in the spec.
func ParseExtractor(spec, format string) (*Extractor, error) {
	e := &Extractor{spec: spec}
	var errs []error
	kind, arg, hasArg := strings.Cut(spec, ":")
	switch kind {
	case "json":
		e.kind = fromJSON
		if arg == "" {
			errs = append(errs, errors.New("json: needs a field name, e.g. json:ts or json:meta.ts"))
		} else {
			e.path = strings.Split(arg, ".")
			for i, p := range e.path {
				if p == "" {
					errs = append(errs, fmt.Errorf("field path %q has an empty name at position %d", arg, i+1))
				}
			}
		}
	case "header":
		e.kind = fromHeader
		e.header = arg
		if arg == "" {
			errs = append(errs, errors.New("header: needs a header name, e.g. header:event-time"))
		}
	case "record":
		e.kind = fromRecord
		if hasArg {
			errs = append(errs, fmt.Errorf("record takes no argument, got %q", arg))
		}
		if format != "" {
			errs = append(errs, fmt.Errorf("format %q applies only to json: and header: sources (record timestamps are milliseconds)", format))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown source %q (want json:FIELD, header:NAME or record)", kind))
	}
	f, err := ParseFormat(format)
	if err != nil && e.kind != fromRecord {
		errs = append(errs, err)
	}
	e.format = f
	if len(errs) > 0 {
		return nil, fmt.Errorf("event time spec %q: %w", spec, errors.Join(errs...))
	}
	return e, nil
}

// String returns the spec the Extractor was parsed from.
func (e *Extractor) String() string { return e.spec }

// Extract returns r's event time, or an error wrapping ErrMissing,
// ErrWrongType, ErrUnparsable or ErrOutOfRange that names the field or
// header and quotes the value.
func (e *Extractor) Extract(r *abi.Record) (Time, error) {
	switch e.kind {
	case fromRecord:
		return checkRange(float64(r.Timestamp), "record timestamp "+strconv.FormatInt(r.Timestamp, 10)+"ms")
	case fromHeader:
		var val []byte
		found := false
		for i := range r.Headers { // the last occurrence wins, as for dedup ids
			if string(r.Headers[i].Key) == e.header {
				val, found = r.Headers[i].Value, true
			}
		}
		if !found {
			return 0, fmt.Errorf("%w: no header %q", ErrMissing, e.header)
		}
		return parseText(string(val), e.format, "header "+strconv.Quote(e.header))
	}
	raw, err := lookupJSON(r.Value, e.path)
	if err != nil {
		return 0, err
	}
	return parseJSONValue(raw, e.format, "field "+strconv.Quote(strings.Join(e.path, ".")))
}

// lookupJSON returns the raw value at path in the JSON object data. A
// duplicated name resolves to its last occurrence (encoding/json's rule).
func lookupJSON(data []byte, path []string) (json.RawMessage, error) {
	raw := json.RawMessage(data)
	for i, name := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			if i == 0 {
				if !json.Valid(data) {
					return nil, fmt.Errorf("%w: record value is not valid JSON (%v)", ErrUnparsable, err)
				}
				return nil, fmt.Errorf("%w: record value is a JSON %s, not an object", ErrWrongType, jsonType(raw))
			}
			return nil, fmt.Errorf("%w: %q is a JSON %s, not an object", ErrWrongType, strings.Join(path[:i], "."), jsonType(raw))
		}
		v, ok := obj[name]
		if !ok {
			return nil, fmt.Errorf("%w: no field %q", ErrMissing, strings.Join(path[:i+1], "."))
		}
		raw = v
	}
	return raw, nil
}

// jsonType names the type of a valid JSON value.
func jsonType(raw json.RawMessage) string {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	if s == "" {
		return "empty value"
	}
	switch s[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func parseJSONValue(raw json.RawMessage, f Format, where string) (Time, error) {
	typ := jsonType(raw)
	switch {
	case f == RFC3339 && typ == "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrUnparsable, where, err)
		}
		return parseText(s, f, where)
	case f != RFC3339 && typ == "number":
		return parseNumber(strings.TrimSpace(string(raw)), f, where)
	case f == RFC3339:
		return 0, fmt.Errorf("%w: %s is a JSON %s (%s), want an RFC 3339 string (for numbers use format unix or unix-ms)", ErrWrongType, where, typ, clip(string(raw)))
	}
	return 0, fmt.Errorf("%w: %s is a JSON %s (%s), want a number of %s", ErrWrongType, where, typ, clip(string(raw)), unitName(f))
}

func unitName(f Format) string {
	if f == Unix {
		return "seconds (format unix)"
	}
	return "milliseconds (format unix-ms)"
}

// parseText parses header text (or a JSON string's contents) in format f.
func parseText(s string, f Format, where string) (Time, error) {
	if f != RFC3339 {
		return parseNumber(strings.TrimSpace(s), f, where)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %q is not an RFC 3339 time (e.g. 2026-11-30T15:04:05Z)", ErrUnparsable, where, clip(s))
	}
	return checkRange(float64(t.Unix())*1000+float64(t.Nanosecond()/1e6), where+" "+strconv.Quote(clip(s)))
}

func parseNumber(s string, f Format, where string) (Time, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) || !isDecimal(s) {
		return 0, fmt.Errorf("%w: %s: %q is not a number of %s", ErrUnparsable, where, clip(s), unitName(f))
	}
	if f == Unix {
		v *= 1000
	}
	return checkRange(math.Round(v), where+" "+clip(s))
}

// isDecimal reports whether s is written with digits, sign, point and
// exponent only: ParseFloat also takes "Inf", "NaN", "0x1p3" and "1_0".
func isDecimal(s string) bool {
	return s != "" && strings.Trim(s, "0123456789+-.eE") == ""
}

// checkRange converts ms to a Time if it lies in [MinEventTime, MaxEventTime].
func checkRange(ms float64, what string) (Time, error) {
	if !(ms >= float64(MinEventTime) && ms <= float64(MaxEventTime)) {
		return 0, fmt.Errorf("%w: %s is outside years 0001-9999", ErrOutOfRange, what)
	}
	return Time(ms), nil
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
