// Command filter is a helios-wasm operator that keeps the records whose JSON
// value has a top-level field equal to a configured value:
//
//	--config field=user --config equals=u1
//
// A string field is compared with its decoded text; any other JSON value with
// its compact JSON text (so equals=3 matches {"n":3}). A value that is not a
// JSON object fails that record.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

var field, equals string

func configure(cfg helios.Config) error {
	var ok bool
	var missing []string
	if field, ok = cfg.Get("field"); !ok || field == "" {
		missing = append(missing, "field")
	}
	if equals, ok = cfg.Get("equals"); !ok {
		missing = append(missing, "equals")
	}
	if len(missing) > 0 {
		return fmt.Errorf("filter: missing config %v (use --config field=NAME --config equals=VALUE)", missing)
	}
	return nil
}

func keep(r *helios.Record, out *helios.Emitter) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.Value, &obj); err != nil {
		return helios.InvalidInput(fmt.Errorf("filter: value is not a JSON object: %v", err))
	}
	raw, ok := obj[field]
	if !ok {
		return nil
	}
	if matches(raw) {
		out.Emit(r.Key, r.Value)
	}
	return nil
}

func matches(raw json.RawMessage) bool {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil && s == equals
	}
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return false
	}
	return c.String() == equals
}

func init() {
	helios.OnInit(configure)
	helios.Handle(keep)
}

func main() {}
