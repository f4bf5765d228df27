// Command count is a stateful helios-wasm operator: it keeps a running count
// per key in host state and emits {"key":K,"count":N} for every record.
//
// The key is the record key, or, with --config key_field=NAME, the string
// value of that top-level field of the JSON value (empty when the field is
// absent or not a string; a value that is not a JSON object fails the
// record). The count is stored as 8 little-endian bytes; the key is written
// as a JSON string escaping only '"', '\', newline (as \n) and other control
// bytes (as \u00XX), so every language's count example emits the same bytes.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

var keyField string

func configure(cfg helios.Config) error {
	keyField = cfg.Lookup("key_field", "")
	return nil
}

var (
	line     []byte
	fieldKey []byte
)

func count(r *helios.Record, out *helios.Emitter) error {
	key := r.Key
	if keyField != "" {
		raw, found, err := helios.JSONField(r.Value, keyField)
		if err != nil {
			return helios.InvalidInput(errors.New("count: value is not a JSON object"))
		}
		key = nil
		if found {
			fieldKey, _ = helios.JSONString(fieldKey[:0], raw)
			key = fieldKey // empty unless the field is a string
		}
	}
	n := uint64(0)
	v, found, err := helios.StateGet(key)
	if err != nil {
		return err // the SDK classifies it: too large fails the record, a host failure is retryable
	}
	if found {
		if len(v) != 8 {
			return errors.New("count: corrupt state")
		}
		n = binary.LittleEndian.Uint64(v)
	}
	n++
	var cnt [8]byte
	binary.LittleEndian.PutUint64(cnt[:], n)
	if err := helios.StatePut(key, cnt[:]); err != nil {
		return err
	}
	l := append(line[:0], `{"key":`...) // a local slice: cheaper than a global in wasm
	l = helios.AppendJSONString(l, key)
	l = append(l, `,"count":`...)
	l = strconv.AppendUint(l, n, 10)
	l = append(l, '}')
	line = l
	out.Emit(key, l)
	return nil
}

func init() {
	helios.OnInit(configure)
	helios.Handle(count)
}

func main() {}
