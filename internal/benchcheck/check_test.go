package benchcheck

import (
	"bytes"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	lower := Ratio{Name: "wasm/native", Numerator: Metric{"BenchmarkW", "ns/record"}, Denominator: Metric{"BenchmarkN", "ns/record"}, Better: Lower, Baseline: 8}
	higher := Ratio{Name: "e2e/raw", Numerator: Metric{"BenchmarkW", "ns/record"}, Denominator: Metric{"BenchmarkN", "ns/record"}, Better: Higher, Baseline: 0.8}
	run := func(w, n float64) []Result {
		return []Result{
			{Name: "BenchmarkW", Metrics: map[string]float64{"ns/record": w}},
			{Name: "BenchmarkN", Metrics: map[string]float64{"ns/record": n}},
		}
	}
	withTol := func(r Ratio, t float64) Ratio { r.Tolerance = t; return r }
	optional := func(r Ratio) Ratio { r.OptionalBecause = "no broker"; return r }
	for _, tc := range []struct {
		name    string
		r       Ratio
		results []Result
		want    Status
	}{
		{"lower: equal", lower, run(8, 1), OK},
		{"lower: worse within tolerance", lower, run(9.9, 1), OK},
		{"lower: at the limit", lower, run(10, 1), OK},
		{"lower: worse beyond tolerance", lower, run(10.1, 1), Regressed},
		{"lower: better beyond tolerance", lower, run(5, 1), Improved},
		{"lower: per-ratio tolerance", withTol(lower, 0.5), run(11.9, 1), OK},
		{"lower: per-ratio tolerance exceeded", withTol(lower, 0.1), run(8.9, 1), Regressed},
		{"higher: worse within tolerance", higher, run(0.61, 1), OK},
		{"higher: worse beyond tolerance", higher, run(0.59, 1), Regressed},
		{"higher: better beyond tolerance", higher, run(1.01, 1), Improved},
		{"required ratio missing", lower, run(8, 1)[:1], Missing},
		{"optional ratio missing", optional(lower), run(8, 1)[:1], MissingOptional},
		{"optional ratio present and regressed", optional(lower), run(20, 1), Regressed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &Baseline{Tolerance: 0.25, Ratios: []Ratio{tc.r}}
			rep := Check(b, tc.results)
			if got := rep.Outcomes[0].Status; got != tc.want {
				t.Fatalf("status %q, want %q (%s)", got, tc.want, rep.Outcomes[0].describe())
			}
			if failed := tc.want == Regressed || tc.want == Missing; rep.Failed() != failed {
				t.Fatalf("Failed() = %v, want %v", rep.Failed(), failed)
			}
		})
	}
}

// TestCheckReport: a regression's line names the ratio, its baseline, the
// current value and the tolerance; a missing ratio says which metric.
func TestCheckReport(t *testing.T) {
	b := &Baseline{Tolerance: 0.25, Ratios: []Ratio{
		{Name: "go wasm/native", Numerator: Metric{"BenchmarkW", "ns/record"}, Denominator: Metric{"BenchmarkN", "ns/record"}, Better: Lower, Baseline: 8},
		{Name: "kafka", Numerator: Metric{"BenchmarkK", "records/s"}, Denominator: Metric{"BenchmarkN", "ns/record"}, Better: Higher, Baseline: 1, OptionalBecause: "no broker"},
		{Name: "count", Numerator: Metric{"BenchmarkC", "ns/record"}, Denominator: Metric{"BenchmarkN", "ns/record"}, Better: Lower, Baseline: 2},
	}}
	rep := Check(b, []Result{
		{Name: "BenchmarkW", Metrics: map[string]float64{"ns/record": 12}},
		{Name: "BenchmarkN", Metrics: map[string]float64{"ns/record": 1}},
	})
	var out bytes.Buffer
	rep.Write(&out)
	for _, want := range []string{
		"REGRESSED go wasm/native: baseline 8, current 12, tolerance 25% (lower is better: want <= 10)",
		"missing (optional)  kafka: baseline 1, current none (no BenchmarkK records/s in the run); optional: no broker",
		"MISSING count: baseline 2, current none (no BenchmarkC ns/record in the run)",
		"FAILED: 1 regressed, 1 required missing (3 ratios: 0 within tolerance, 0 improved, 1 missing (optional))",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCheckFixture checks the committed ratio definitions against a run in
// go test's format (testdata/bench.txt): every ratio is found under the
// names go test prints, and none regresses from the run's own figures. Without the wasmtime lines
// (no gcc) the engine ratios are missing but optional; without the native
// count line the count ratios are missing and the check fails.
func TestCheckFixture(t *testing.T) {
	b, err := LoadBaseline("../../bench/baseline.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ReadBenchOutput("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The committed definitions, with the fixture's figures as baselines
	// (the committed values are a real run's).
	if missing := Update(b, res); len(missing) > 0 {
		t.Fatalf("the fixture has no %v", missing)
	}
	without := func(prefix string) []Result {
		var out []Result
		for _, r := range res {
			if !strings.HasPrefix(r.Name, prefix) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		results    []Result
		wantFailed bool
		want       map[Status]int
	}{
		{"full run", res, false, map[Status]int{OK: len(b.Ratios)}},
		{"no wasmtime", without("BenchmarkEngines/engine=wasmtime"), false, map[Status]int{OK: len(b.Ratios) - 7, MissingOptional: 7}},
		{"no native count", without("BenchmarkCount/batch=1000/native"), true, map[Status]int{OK: len(b.Ratios) - 6, Missing: 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Check(b, tc.results)
			got := map[Status]int{}
			for _, o := range rep.Outcomes {
				got[o.Status]++
			}
			if rep.Failed() != tc.wantFailed || len(got) != len(tc.want) {
				var out bytes.Buffer
				rep.Write(&out)
				t.Fatalf("failed %v, statuses %v; want %v, %v\n%s", rep.Failed(), got, tc.wantFailed, tc.want, out.String())
			}
			for s, n := range tc.want {
				if got[s] != n {
					t.Errorf("%d %q, want %d", got[s], s, n)
				}
			}
		})
	}
}
