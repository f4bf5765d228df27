package kafkademo

import (
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxProblems caps the problems check lists one by one.
const maxProblems = 10

// check verifies the count operator's outputs for inputs 0..total-1 keyed
// key(i, keys): exactly one output per input, each {"key":K,"count":N}
// keyed K, and every key's counts running 1, 2, ..., its number of inputs,
// in order (a key's outputs share one partition, read in order). A lost
// input leaves a gap or a short final count, a duplicated output or a
// state update applied twice repeats a count, lost state restarts at 1. It
// returns what is wrong, nothing when all is right.
func check(recs []*kgo.Record, total, keys int) []string {
	var problems []string
	more := 0
	report := func(format string, args ...any) {
		if len(problems) < maxProblems {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	if len(recs) != total {
		report("%d outputs for %d inputs (want exactly one per input)", len(recs), total)
	}
	last := map[string]int{}
	for _, r := range recs {
		var out struct {
			Key   *string `json:"key"`
			Count int     `json:"count"`
		}
		if err := json.Unmarshal(r.Value, &out); err != nil || out.Key == nil {
			report("partition %d offset %d: %q is not a count output {\"key\":K,\"count\":N}", r.Partition, r.Offset, r.Value)
			continue
		}
		k := *out.Key
		if k != string(r.Key) {
			report("partition %d offset %d: output for key %q has the record key %q", r.Partition, r.Offset, k, r.Key)
		}
		switch want := last[k] + 1; {
		case out.Count == want:
		case out.Count <= last[k]:
			report("key %s: count %d after %d (an output or a state update repeated, or state lost)", k, out.Count, last[k])
		default:
			report("key %s: count %d after %d (inputs %d..%d of the key lost)", k, out.Count, last[k], want, out.Count-1)
		}
		last[k] = out.Count
	}
	for u := range keys {
		k := key(u, keys)
		if want := total/keys + btoi(u < total%keys); last[k] != want {
			report("key %s: final count %d, want %d (its number of inputs)", k, last[k], want)
		}
	}
	if len(last) > keys {
		report("%d keys in the output, want %d", len(last), keys)
	}
	if more > 0 {
		problems = append(problems, fmt.Sprintf("... and %d more", more))
	}
	return problems
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
