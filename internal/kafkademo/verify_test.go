package kafkademo

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// outputs is what a correct run of the count operator writes for inputs
// 0..total-1 keyed key(i, keys), in input order.
func outputs(total, keys int) []*kgo.Record {
	seen := map[string]int{}
	var recs []*kgo.Record
	for i := range total {
		k := key(i, keys)
		seen[k]++
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, `{"key":%q,"count":%d}`, k, seen[k]), Offset: int64(i)})
	}
	return recs
}

// TestCheck: check passes a correct output and names each way one can be
// wrong.
func TestCheck(t *testing.T) {
	const total, keys = 20, 3 // u0 and u1 get 7 inputs, u2 6
	for _, tc := range []struct {
		name  string
		edit  func([]*kgo.Record) []*kgo.Record
		wants []string // substrings of the problems, in order; none for a pass
	}{
		{"exact", func(r []*kgo.Record) []*kgo.Record { return r }, nil},
		{"an output lost", func(r []*kgo.Record) []*kgo.Record { return slices.Delete(r, 4, 5) }, // u1's 2nd
			[]string{"19 outputs for 20 inputs", "key u1: count 3 after 1 (inputs 2..2 of the key lost)"}},
		{"the last output lost", func(r []*kgo.Record) []*kgo.Record { return r[:total-1] }, // u1's 7th
			[]string{"19 outputs for 20 inputs", "key u1: final count 6, want 7"}},
		{"an output duplicated", func(r []*kgo.Record) []*kgo.Record { return slices.Insert(r, 6, r[5]) }, // u2's 2nd
			[]string{"21 outputs for 20 inputs", "key u2: count 2 after 2 (an output or a state update repeated, or state lost)"}},
		{"state lost in a move", func(r []*kgo.Record) []*kgo.Record {
			for _, x := range r[9:] { // u0 restarts from 1 at its 4th input
				if string(x.Key) == "u0" {
					var n int
					fmt.Sscanf(string(x.Value), `{"key":"u0","count":%d}`, &n)
					x.Value = fmt.Appendf(nil, `{"key":"u0","count":%d}`, n-3)
				}
			}
			return r
		}, []string{"key u0: count 1 after 3", "key u0: final count 4, want 7"}},
		{"wrong record key", func(r []*kgo.Record) []*kgo.Record { r[0].Key = []byte("u9"); return r },
			[]string{`offset 0: output for key "u0" has the record key "u9"`}},
		{"not a count output", func(r []*kgo.Record) []*kgo.Record { r[1].Value = []byte(`{"n":1}`); return r },
			[]string{`offset 1: "{\"n\":1}" is not a count output`, "key u1: count 2 after 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := check(tc.edit(outputs(total, keys)), total, keys)
			if len(got) != len(tc.wants) {
				t.Fatalf("problems:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.wants), tc.wants)
			}
			for i, want := range tc.wants {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d: %q, want it to say %q", i, got[i], want)
				}
			}
		})
	}
}

// TestCheckCapsProblems: a badly wrong output lists maxProblems problems
// and how many more there are, not thousands of lines.
func TestCheckCapsProblems(t *testing.T) {
	var twice []*kgo.Record
	for _, r := range outputs(1000, 7) {
		twice = append(twice, r, r) // every output twice
	}
	got := check(twice, 1000, 7)
	if len(got) != maxProblems+1 || !strings.HasPrefix(got[maxProblems], "... and ") {
		t.Fatalf("%d problems:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 250000: "250,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}
