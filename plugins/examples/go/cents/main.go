// Command cents is a schema migrator (helios_migrate, abi.md "Schema
// migrators"): it migrates orders from version 2 (order_id, amount,
// customer_id) to version 3, where amount, a decimal number of currency
// units, becomes amount_cents, an integer number of cents. The Rust example
// of the same name emits byte-identical records (plugins/conformance).
package main

import (
	"errors"
	"math"
	"strconv"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

var buf []byte

func field(value []byte, name string) ([]byte, error) {
	raw, found, err := helios.JSONField(value, name)
	if err != nil {
		return nil, helios.InvalidInput(errors.New("the record is not a JSON object"))
	}
	if !found {
		return nil, helios.InvalidInput(errors.New("the record has no " + name))
	}
	return raw, nil
}

func cents(r *helios.Record, out *helios.Emitter) error {
	id, err := field(r.Value, "order_id")
	if err != nil {
		return err
	}
	amount, err := field(r.Value, "amount")
	if err != nil {
		return err
	}
	customer, err := field(r.Value, "customer_id")
	if err != nil {
		return err
	}
	f, err := strconv.ParseFloat(string(amount), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range: ±Inf, refused below
		return helios.InvalidInput(errors.New("amount is not a number"))
	}
	c := math.Round(f * 100) // half away from zero, as Rust's f64::round
	if !(math.Abs(c) <= 1<<53) {
		return helios.InvalidInput(errors.New("amount is out of range"))
	}
	b := append(buf[:0], `{"order_id":`...)
	b = helios.JSONCompact(b, id)
	b = append(b, `,"amount_cents":`...)
	b = strconv.AppendInt(b, int64(c), 10)
	b = append(b, `,"customer_id":`...)
	b = helios.JSONCompact(b, customer)
	b = append(b, '}')
	buf = b
	out.Emit(nil, b)
	return nil
}

func init() { helios.HandleMigrate(cents) }

func main() {}
