package eventtime

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseExtractorErrors(t *testing.T) {
	for _, tc := range []struct {
		spec, format string
		want         []string // every substring must appear
	}{
		{"json:", "", []string{"needs a field name"}},
		{"json:a..b", "", []string{"empty name at position 2"}},
		{"json:.a", "unix-s", []string{"empty name at position 1", `unknown event time format "unix-s"`}},
		{"header:", "", []string{"needs a header name"}},
		{"record:x", "unix", []string{"takes no argument", "applies only to json: and header:"}},
		{"xml:ts", "", []string{`unknown source "xml"`}},
		{"", "", []string{`unknown source ""`}},
	} {
		_, err := ParseExtractor(tc.spec, tc.format)
		if err == nil {
			t.Errorf("ParseExtractor(%q, %q): no error", tc.spec, tc.format)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseExtractor(%q, %q) = %v, want it to mention %q", tc.spec, tc.format, err, w)
			}
		}
	}
}

func TestExtract(t *testing.T) {
	const base = Time(1764515096000) // 2025-11-30T15:04:56Z
	hdr := func(k, v string) []abi.Header { return []abi.Header{{Key: []byte(k), Value: []byte(v)}} }
	for _, tc := range []struct {
		name, spec, format string
		rec                abi.Record
		want               Time
		err                error  // nil: want must match
		msg                string // substring of the error
	}{
		{"rfc3339", "json:ts", "", abi.Record{Value: []byte(`{"ts":"2025-11-30T15:04:56Z"}`)}, base, nil, ""},
		{"rfc3339 offset and fraction", "json:ts", "rfc3339", abi.Record{Value: []byte(`{"ts":"2025-11-30T16:04:56.1239+01:00"}`)}, base + 123, nil, ""},
		{"nested", "json:meta.time.at", "", abi.Record{Value: []byte(`{"x":1,"meta":{"time":{"at":"2025-11-30T15:04:56Z"}}}`)}, base, nil, ""},
		{"duplicate name: last wins", "json:ts", "unix-ms", abi.Record{Value: []byte(`{"ts":1,"ts":2}`)}, 2, nil, ""},
		{"unix", "json:ts", "unix", abi.Record{Value: []byte(`{"ts":1764515096}`)}, base, nil, ""},
		{"unix float", "json:ts", "unix", abi.Record{Value: []byte(`{"ts":1764515096.25}`)}, base + 250, nil, ""},
		{"unix exponent", "json:ts", "unix", abi.Record{Value: []byte(`{"ts":1.764515096e9}`)}, base, nil, ""},
		{"unix negative", "json:ts", "unix", abi.Record{Value: []byte(`{"ts":-1.5}`)}, -1500, nil, ""},
		{"unix-ms", "json:ts", "unix-ms", abi.Record{Value: []byte(`{"ts":1764515096000}`)}, base, nil, ""},
		{"header rfc3339", "header:event-time", "", abi.Record{Headers: hdr("event-time", "2025-11-30T15:04:56Z")}, base, nil, ""},
		{"header unix-ms", "header:t", "unix-ms", abi.Record{Headers: hdr("t", " 1764515096000 ")}, base, nil, ""},
		{"record", "record", "", abi.Record{Timestamp: int64(base)}, base, nil, ""},
		{"year 1", "json:ts", "", abi.Record{Value: []byte(`{"ts":"0001-01-01T00:00:00Z"}`)}, MinEventTime, nil, ""},

		{"missing field", "json:ts", "", abi.Record{Value: []byte(`{"t":1}`)}, 0, ErrMissing, `no field "ts"`},
		{"missing nested", "json:a.b", "", abi.Record{Value: []byte(`{"a":{}}`)}, 0, ErrMissing, `no field "a.b"`},
		{"missing header", "header:t", "", abi.Record{Headers: hdr("u", "1")}, 0, ErrMissing, `no header "t"`},
		{"not json", "json:ts", "", abi.Record{Value: []byte(`ts=1`)}, 0, ErrUnparsable, "not valid JSON"},
		{"empty value", "json:ts", "", abi.Record{}, 0, ErrUnparsable, "not valid JSON"},
		{"array value", "json:ts", "", abi.Record{Value: []byte(`[1]`)}, 0, ErrWrongType, "JSON array, not an object"},
		{"intermediate not object", "json:a.b", "", abi.Record{Value: []byte(`{"a":"x"}`)}, 0, ErrWrongType, `"a" is a JSON string, not an object`},
		{"number for rfc3339", "json:ts", "", abi.Record{Value: []byte(`{"ts":17}`)}, 0, ErrWrongType, "use format unix or unix-ms"},
		{"string for unix", "json:ts", "unix", abi.Record{Value: []byte(`{"ts":"17"}`)}, 0, ErrWrongType, "want a number of seconds"},
		{"null", "json:ts", "unix-ms", abi.Record{Value: []byte(`{"ts":null}`)}, 0, ErrWrongType, "JSON null"},
		{"bad rfc3339", "json:ts", "", abi.Record{Value: []byte(`{"ts":"30/11/2025"}`)}, 0, ErrUnparsable, `"30/11/2025" is not an RFC 3339 time`},
		{"header not a number", "header:t", "unix", abi.Record{Headers: hdr("t", "soon")}, 0, ErrUnparsable, `"soon" is not a number`},
		{"header Inf", "header:t", "unix", abi.Record{Headers: hdr("t", "Inf")}, 0, ErrUnparsable, "not a number"},
		{"header hex", "header:t", "unix-ms", abi.Record{Headers: hdr("t", "0x10")}, 0, ErrUnparsable, "not a number"},
		{"unix too large", "json:ts", "unix", abi.Record{Value: []byte(`{"ts":1e300}`)}, 0, ErrOutOfRange, "outside years 0001-9999"},
		{"unix overflow", "json:ts", "unix", abi.Record{Value: []byte(`{"ts":1e400}`)}, 0, ErrOutOfRange, "outside"},
		{"unix-ms too small", "json:ts", "unix-ms", abi.Record{Value: []byte(`{"ts":-62135596800001}`)}, 0, ErrOutOfRange, "outside"},
		{"year 0", "json:ts", "", abi.Record{Value: []byte(`{"ts":"0000-12-31T00:00:00Z"}`)}, 0, ErrOutOfRange, "outside"},
		{"record timestamp out of range", "record", "", abi.Record{Timestamp: 1 << 62}, 0, ErrOutOfRange, "record timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := ParseExtractor(tc.spec, tc.format)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Extract(&tc.rec)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Extract = %v (%d), %v; want %v (%d)", got, got, err, tc.want, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Extract error = %v; want %v mentioning %q", err, tc.err, tc.msg)
			}
		})
	}
}

// FuzzExtractJSON: any value and any field/format either yields a time in
// range or one of the four reasons, never a panic; a time written as
// RFC 3339 or unix-ms reads back as itself.
func FuzzExtractJSON(f *testing.F) {
	f.Add([]byte(`{"ts":"2025-11-30T15:04:56Z"}`), "ts", uint8(0), int64(0))
	f.Add([]byte(`{"a":{"b":1.5e3}}`), "a.b", uint8(1), int64(-1))
	f.Add([]byte(`{"ts":-0}`), "ts", uint8(2), int64(253402300799999))
	f.Add([]byte(`[`), "x", uint8(2), int64(-62135596800000))
	f.Fuzz(func(t *testing.T, value []byte, field string, format uint8, ms int64) {
		fm := Format(format % 3)
		e, err := ParseExtractor("json:"+field, fm.String())
		if err != nil {
			return
		}
		got, err := e.Extract(&abi.Record{Value: value})
		if err == nil && (got < MinEventTime || got > MaxEventTime) {
			t.Fatalf("Extract(%q) = %d, outside the range", value, got)
		}
		if err != nil && !errors.Is(err, ErrMissing) && !errors.Is(err, ErrWrongType) && !errors.Is(err, ErrUnparsable) && !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("Extract(%q): error without a reason: %v", value, err)
		}
		// Round trip of a valid time through the header source.
		tm := MinEventTime + Time(uint64(ms)%uint64(MaxEventTime-MinEventTime+1))
		for _, c := range []struct {
			format, text string
		}{{"rfc3339", tm.Std().Format(time.RFC3339Nano)}, {"unix-ms", strconv.FormatInt(int64(tm), 10)}} {
			h, _ := ParseExtractor("header:h", c.format)
			back, err := h.Extract(&abi.Record{Headers: []abi.Header{{Key: []byte("h"), Value: []byte(c.text)}}})
			if err != nil || back != tm {
				t.Fatalf("%s %q read back as %d, %v; want %d", c.format, c.text, back, err, tm)
			}
		}
	})
}
