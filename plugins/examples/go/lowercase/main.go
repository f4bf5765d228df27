// Command lowercase is a helios-wasm operator that ASCII-lower-cases each
// record's value and keeps its key.
package main

import helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"

var buf []byte

func lower(r *helios.Record, out *helios.Emitter) error {
	buf = append(buf[:0], r.Value...)
	for i, c := range buf {
		if 'A' <= c && c <= 'Z' {
			buf[i] = c + ('a' - 'A')
		}
	}
	out.Emit(r.Key, buf)
	return nil
}

func init() { helios.Handle(lower) }

func main() {}
