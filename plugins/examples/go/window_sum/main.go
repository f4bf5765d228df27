// Command window_sum is a window operator: it sums a JSON numeric field
// (--config field=NAME, required) of each key's records in each event-time
// window and emits
//
//	{"key":K,"window_start":"RFC3339","window_end":"RFC3339","sum":S}
//
// once per key and window when the window closes (--emit final), or after
// every record (--emit updates). Run it with --event-time and --window.
//
// The sum is a float64 (8 little-endian bytes of state), added in record
// order. S is its shortest decimal that reads back as the same float64, in
// plain notation, never an exponent (Go's strconv.FormatFloat(S, 'f', -1,
// 64)): 3, 0.30000000000000004, -2.5, 1000000000000000000000. A record
// whose field is missing or not a JSON number fails (code 3). Keys and
// window bounds are written as in window_count; --config key_field=NAME
// takes the key from a field as there.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
	"github.com/heliosdb/helios-wasm/plugins/sdk/go/window"
)

var field, keyField string

var (
	fieldKey []byte
	line     []byte
	errField error
)

func keyOf(r *helios.Record) ([]byte, error) {
	if keyField == "" {
		return r.Key, nil
	}
	raw, found, err := helios.JSONField(r.Value, keyField)
	if err != nil {
		return nil, helios.InvalidInput(errors.New("window_sum: value is not a JSON object"))
	}
	fieldKey = fieldKey[:0]
	if found {
		fieldKey, _ = helios.JSONString(fieldKey, raw)
	}
	return fieldKey, nil
}

func sum(key []byte) (float64, error) {
	v, found, err := helios.StateGet(key)
	if err != nil || !found {
		return 0, err
	}
	if len(v) != 8 {
		return 0, errors.New("window_sum: corrupt state")
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(v)), nil
}

func add(r *helios.Record, _ *window.Window) ([]byte, error) {
	raw, found, err := helios.JSONField(r.Value, field)
	if err != nil {
		return nil, helios.InvalidInput(errors.New("window_sum: value is not a JSON object"))
	}
	if !found || len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return nil, errField
	}
	x, err := strconv.ParseFloat(string(raw), 64) // out of float64's range fails too
	if err != nil {
		return nil, errField
	}
	key, err := keyOf(r)
	if err != nil {
		return nil, err
	}
	s, err := sum(key)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(s+x))
	return key, helios.StatePut(key, b[:])
}

func result(key []byte, w *window.Window, out *helios.Emitter) error {
	s, err := sum(key)
	if err != nil {
		return err
	}
	l := append(line[:0], `{"key":`...)
	l = helios.AppendJSONString(l, key)
	l = append(l, `,"window_start":"`...)
	l = window.AppendTime(l, w.StartMs)
	l = append(l, `","window_end":"`...)
	l = window.AppendTime(l, w.EndMs)
	l = append(l, `","sum":`...)
	l = strconv.AppendFloat(l, s, 'f', -1, 64)
	l = append(l, '}')
	line = l
	out.Emit(key, l)
	return nil
}

func init() {
	helios.OnInit(func(cfg helios.Config) error {
		var ok bool
		if field, ok = cfg.Get("field"); !ok || field == "" {
			return errors.New("window_sum: --config field=NAME is required: the JSON numeric field to sum")
		}
		keyField = cfg.Lookup("key_field", "")
		errField = helios.InvalidInput(fmt.Errorf("window_sum: field %q is missing or not a JSON number", field))
		return nil
	})
	window.Handle(window.Aggregate{Add: add, Result: result})
}

func main() {}
