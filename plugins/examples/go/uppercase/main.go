// Command uppercase is a helios-wasm operator that ASCII-upper-cases each
// record's value and keeps its key.
package main

import helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"

var buf []byte

func upper(r *helios.Record, out *helios.Emitter) error {
	b := append(buf[:0], r.Value...)
	for i, c := range b {
		if c-'a' < 26 { // 'a' <= c <= 'z' (bytes wrap around below 'a')
			b[i] = c - ('a' - 'A')
		}
	}
	buf = b
	out.Emit(r.Key, b)
	return nil
}

func init() { helios.Handle(upper) }

func main() {}
