// Command panicky is a test operator: it panics on the value "boom" and
// otherwise passes records through. It lives under testdata so it is built
// only by the host tests.
package main

import helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"

func init() {
	helios.Handle(func(r *helios.Record, out *helios.Emitter) error {
		if string(r.Value) == "boom" {
			panic("boom: operator bug")
		}
		out.Emit(r.Key, r.Value)
		return nil
	})
}

func main() {}
