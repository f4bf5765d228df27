package benchcheck

import (
	"fmt"
	"math"
)

// Value is one ratio computed from one run. Missing, when set, says why
// there is no value (a benchmark or unit absent from the run, or a zero
// denominator).
type Value struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value,omitempty"`
	Missing string  `json:"missing,omitempty"`
}

// Lookup returns the metric's value in the first result of that name
// (bench.sh's tables also take the first).
func Lookup(results []Result, m Metric) (float64, bool) {
	for _, r := range results {
		if r.Name == m.Benchmark {
			v, ok := r.Metrics[m.Unit]
			return v, ok
		}
	}
	return 0, false
}

// Compute computes every ratio of b from results, in b's order.
func Compute(b *Baseline, results []Result) []Value {
	out := make([]Value, 0, len(b.Ratios))
	for _, r := range b.Ratios {
		out = append(out, compute(r, results))
	}
	return out
}

func compute(r Ratio, results []Result) Value {
	v := Value{Name: r.Name}
	num, okN := Lookup(results, r.Numerator)
	den, okD := Lookup(results, r.Denominator)
	switch {
	case !okN:
		v.Missing = "no " + r.Numerator.String() + " in the run"
	case !okD:
		v.Missing = "no " + r.Denominator.String() + " in the run"
	case den == 0:
		v.Missing = r.Denominator.String() + " is 0"
	default:
		v.Value = num / den
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			v = Value{Name: r.Name, Missing: fmt.Sprintf("%v / %v is not a number", num, den)}
		}
	}
	return v
}
