// Command filter is a helios-wasm operator that keeps the records whose JSON
// value has a top-level field equal to a configured value:
//
//	--config field=user --config equals=u1
//
// A string field is compared with its decoded text; any other JSON value with
// its compact JSON text (so equals=3 matches {"n":3} and {"n": 3}). A value
// that is not a JSON object fails that record (code INVALID_INPUT). Every
// language's filter example follows exactly these rules.
package main

import (
	"errors"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

var field, equals string

func configure(cfg helios.Config) error {
	var okField, okEquals bool
	field, okField = cfg.Get("field")
	equals, okEquals = cfg.Get("equals")
	if !okField || field == "" || !okEquals {
		return errors.New("filter: needs --config field=NAME --config equals=VALUE")
	}
	return nil
}

var scratch []byte

func keep(r *helios.Record, out *helios.Emitter) error {
	raw, found, err := helios.JSONField(r.Value, field)
	if err != nil {
		return helios.InvalidInput(errors.New("filter: value is not a JSON object"))
	}
	if !found {
		return nil
	}
	text, isString := helios.JSONString(scratch[:0], raw)
	if !isString {
		text = helios.JSONCompact(scratch[:0], raw)
	}
	scratch = text
	if string(text) == equals {
		out.Emit(r.Key, r.Value)
	}
	return nil
}

func init() {
	helios.OnInit(configure)
	helios.Handle(keep)
}

func main() {}
