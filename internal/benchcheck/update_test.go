package benchcheck

import (
	"reflect"
	"testing"
)

func TestUpdate(t *testing.T) {
	b := &Baseline{Tolerance: 0.25, Ratios: []Ratio{
		{Name: "moved", Numerator: Metric{"BenchmarkA", "ns/op"}, Denominator: Metric{"BenchmarkB", "ns/op"}, Better: Lower, Baseline: 2, Tolerance: 0.4},
		{Name: "absent", Numerator: Metric{"BenchmarkC", "ns/op"}, Denominator: Metric{"BenchmarkB", "ns/op"}, Better: Lower, Baseline: 5},
		{Name: "zero", Numerator: Metric{"BenchmarkZ", "ns/op"}, Denominator: Metric{"BenchmarkB", "ns/op"}, Better: Higher, Baseline: 1},
	}}
	missing := Update(b, []Result{
		{Name: "BenchmarkA", Metrics: map[string]float64{"ns/op": 1000}},
		{Name: "BenchmarkB", Metrics: map[string]float64{"ns/op": 300}},
		{Name: "BenchmarkZ", Metrics: map[string]float64{"ns/op": 0}},
	})
	if got := []float64{b.Ratios[0].Baseline, b.Ratios[1].Baseline, b.Ratios[2].Baseline}; !reflect.DeepEqual(got, []float64{3.33, 5, 1}) {
		t.Errorf("baselines %v, want [3.33 5 1]", got)
	}
	if b.Ratios[0].Tolerance != 0.4 {
		t.Errorf("tolerance changed to %v", b.Ratios[0].Tolerance)
	}
	want := []string{"absent: no BenchmarkC ns/op in the run", "zero: the current value is not positive"}
	if !reflect.DeepEqual(missing, want) {
		t.Errorf("missing %q, want %q", missing, want)
	}
	if err := b.Validate(); err != nil {
		t.Error(err)
	}
}

func TestRound3(t *testing.T) {
	for in, want := range map[float64]float64{8.0123: 8.01, 0.58918: 0.589, 25.546: 25.5, 1234.5: 1230, 0.0012345: 0.00123, 1: 1} {
		if got := round3(in); got != want {
			t.Errorf("round3(%v) = %v, want %v", in, got, want)
		}
	}
}
