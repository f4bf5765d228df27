// Command flaky passes records through unchanged, except:
//
//	--config fail_match=S   a record whose value contains S is marked failed
//	                        (it goes to the dead-letter queue)
//	--config trap_match=S   a batch holding a value that contains S panics
//	                        (the host isolates the record by bisection)
//
// It exists to show and test how helios-wasm handles bad records.
package main

import (
	"bytes"
	"fmt"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

var failMatch, trapMatch []byte

func configure(cfg helios.Config) error {
	if s, ok := cfg.Get("fail_match"); ok && s != "" {
		failMatch = []byte(s)
	}
	if s, ok := cfg.Get("trap_match"); ok && s != "" {
		trapMatch = []byte(s)
	}
	return nil
}

func flaky(r *helios.Record, out *helios.Emitter) error {
	if trapMatch != nil && bytes.Contains(r.Value, trapMatch) {
		panic(fmt.Sprintf("flaky: value contains %q", trapMatch))
	}
	if failMatch != nil && bytes.Contains(r.Value, failMatch) {
		return fmt.Errorf("flaky: value contains %q", failMatch)
	}
	out.Emit(r.Key, r.Value)
	return nil
}

func init() {
	helios.OnInit(configure)
	helios.Handle(flaky)
}

func main() {}
