package benchcheck

import (
	"reflect"
	"testing"
)

func TestCompute(t *testing.T) {
	results := []Result{
		{Name: "BenchmarkA", Metrics: map[string]float64{"ns/record": 30, "x": 2}},
		{Name: "BenchmarkB", Metrics: map[string]float64{"ns/record": 10, "zero": 0}},
		{Name: "BenchmarkB", Metrics: map[string]float64{"ns/record": 99}}, // a second run: the first counts
	}
	ratio := func(num, den Metric) Ratio { return Ratio{Name: "r", Numerator: num, Denominator: den} }
	for _, tc := range []struct {
		name string
		r    Ratio
		want Value
	}{
		{"two benchmarks", ratio(Metric{"BenchmarkA", "ns/record"}, Metric{"BenchmarkB", "ns/record"}), Value{Name: "r", Value: 3}},
		{"two units of one benchmark", ratio(Metric{"BenchmarkA", "ns/record"}, Metric{"BenchmarkA", "x"}), Value{Name: "r", Value: 15}},
		{"numerator absent", ratio(Metric{"BenchmarkC", "ns/record"}, Metric{"BenchmarkB", "ns/record"}), Value{Name: "r", Missing: "no BenchmarkC ns/record in the run"}},
		{"unit absent", ratio(Metric{"BenchmarkA", "ns/record"}, Metric{"BenchmarkB", "records/s"}), Value{Name: "r", Missing: "no BenchmarkB records/s in the run"}},
		{"zero denominator", ratio(Metric{"BenchmarkA", "ns/record"}, Metric{"BenchmarkB", "zero"}), Value{Name: "r", Missing: "BenchmarkB zero is 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(&Baseline{Ratios: []Ratio{tc.r}}, results)
			if !reflect.DeepEqual(got, []Value{tc.want}) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
