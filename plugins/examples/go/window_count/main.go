// Command window_count is a window operator: it counts the records of each
// key in each event-time window and emits
//
//	{"key":K,"window_start":"RFC3339","window_end":"RFC3339","count":N}
//
// once per key and window when the window closes (--emit final), or after
// every record (--emit updates). Run it with --event-time and --window.
//
// The key is the record key, or, with --config key_field=NAME, the string
// value of that top-level field of the JSON value (empty when absent or not
// a string; a value that is not a JSON object fails the record). The count
// is stored as 8 little-endian bytes in the window's state. Window bounds
// are formatted by window.AppendTime; the key is escaped as the count
// example does, so every language's window_count emits the same bytes.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
	"github.com/heliosdb/helios-wasm/plugins/sdk/go/window"
)

var keyField string

var (
	fieldKey []byte
	line     []byte
)

// keyOf returns the record's key (aliasing a reused buffer).
func keyOf(r *helios.Record) ([]byte, error) {
	if keyField == "" {
		return r.Key, nil
	}
	raw, found, err := helios.JSONField(r.Value, keyField)
	if err != nil {
		return nil, helios.InvalidInput(errors.New("window_count: value is not a JSON object"))
	}
	fieldKey = fieldKey[:0]
	if found {
		fieldKey, _ = helios.JSONString(fieldKey, raw)
	}
	return fieldKey, nil
}

func count(key []byte) (uint64, error) {
	v, found, err := helios.StateGet(key)
	if err != nil || !found {
		return 0, err
	}
	if len(v) != 8 {
		return 0, errors.New("window_count: corrupt state")
	}
	return binary.LittleEndian.Uint64(v), nil
}

func add(r *helios.Record, _ *window.Window) ([]byte, error) {
	key, err := keyOf(r)
	if err != nil {
		return nil, err
	}
	n, err := count(key)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n+1)
	return key, helios.StatePut(key, b[:])
}

func result(key []byte, w *window.Window, out *helios.Emitter) error {
	n, err := count(key)
	if err != nil {
		return err
	}
	l := append(line[:0], `{"key":`...)
	l = helios.AppendJSONString(l, key)
	l = append(l, `,"window_start":"`...)
	l = window.AppendTime(l, w.StartMs)
	l = append(l, `","window_end":"`...)
	l = window.AppendTime(l, w.EndMs)
	l = append(l, `","count":`...)
	l = strconv.AppendUint(l, n, 10)
	l = append(l, '}')
	line = l
	out.Emit(key, l)
	return nil
}

func init() {
	helios.OnInit(func(cfg helios.Config) error {
		keyField = cfg.Lookup("key_field", "")
		return nil
	})
	window.Handle(window.Aggregate{Add: add, Result: result})
}

func main() {}
