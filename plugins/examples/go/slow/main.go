// Command slow passes records through after burning a configured amount of
// CPU per record, to show backpressure: --config work=N runs N rounds of a
// hash over the value (default 10,000, roughly tens of microseconds).
// The work is deterministic (no clock), so replays give identical output.
package main

import (
	"fmt"
	"strconv"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

var rounds = 10_000

func configure(cfg helios.Config) error {
	if s, ok := cfg.Get("work"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("slow: work=%q: want a non-negative number of rounds", s)
		}
		rounds = n
	}
	return nil
}

var sink uint64 // keeps the work from being optimised away

func slow(r *helios.Record, out *helios.Emitter) error {
	h := uint64(14695981039346656037)
	for i := 0; i < rounds; i++ {
		var b byte
		if len(r.Value) > 0 {
			b = r.Value[i%len(r.Value)]
		}
		h ^= uint64(b + byte(i))
		h *= 1099511628211
	}
	sink += h
	out.Emit(r.Key, r.Value)
	return nil
}

func init() {
	helios.OnInit(configure)
	helios.Handle(slow)
}

func main() {}
