// Command split is a helios-wasm operator that emits one record per word of
// each value, keeping the key. Words are separated by ASCII whitespace
// (space, \t, \n, \v, \f, \r); other bytes, UTF-8 or not, belong to words.
package main

import helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func split(r *helios.Record, out *helios.Emitter) error {
	v := r.Value
	for i := 0; i < len(v); {
		for i < len(v) && isSpace(v[i]) {
			i++
		}
		j := i
		for j < len(v) && !isSpace(v[j]) {
			j++
		}
		if j > i {
			out.Emit(r.Key, v[i:j])
		}
		i = j
	}
	return nil
}

func init() { helios.Handle(split) }

func main() {}
