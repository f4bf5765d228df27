// Command split is a helios-wasm operator that emits one record per
// whitespace-separated word of each value, keeping the key.
package main

import (
	"unicode"
	"unicode/utf8"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

func split(r *helios.Record, out *helios.Emitter) error {
	v := r.Value
	for len(v) > 0 {
		i := 0
		for i < len(v) {
			c, n := utf8.DecodeRune(v[i:])
			if !unicode.IsSpace(c) {
				break
			}
			i += n
		}
		v = v[i:]
		j := 0
		for j < len(v) {
			c, n := utf8.DecodeRune(v[j:])
			if unicode.IsSpace(c) {
				break
			}
			j += n
		}
		if j > 0 {
			out.Emit(r.Key, v[:j])
		}
		v = v[j:]
	}
	return nil
}

func init() { helios.Handle(split) }

func main() {}
