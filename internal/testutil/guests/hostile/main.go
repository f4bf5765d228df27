// Command hostile is a test operator that misbehaves on request: a record
// whose value contains "boom" panics, "loop" spins forever, "grow" allocates
// without bound, "fail" is marked failed, "retry" is marked retryable the
// first two times this instance sees it. Other records pass through
// unchanged.
package main

import (
	"errors"
	"strconv"
	"strings"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

var (
	hoard [][]byte
	seen  = map[string]int{}
)

func init() {
	helios.Handle(func(r *helios.Record, out *helios.Emitter) error {
		v := string(r.Value)
		switch {
		case strings.Contains(v, "boom"):
			panic("boom: operator bug")
		case strings.Contains(v, "loop"):
			for n := 0; ; n++ {
				if n < 0 {
					break
				}
			}
		case strings.Contains(v, "fail"):
			return errors.New("hostile: asked to fail")
		case strings.Contains(v, "retry") && seen[v] < 2:
			seen[v]++
			return helios.Retryable(errors.New("hostile: try again"))
		case strings.Contains(v, "tally"):
			b, _, err := helios.StateGet([]byte("tally"))
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(b))
			b = strconv.AppendInt(nil, int64(n+1), 10)
			if err := helios.StatePut([]byte("tally"), b); err != nil {
				return err
			}
			out.Emit(r.Key, b)
			return nil
		case strings.Contains(v, "grow"):
			for {
				hoard = append(hoard, make([]byte, 1<<20))
			}
		}
		out.Emit(r.Key, r.Value)
		return nil
	})
}

func main() {}
