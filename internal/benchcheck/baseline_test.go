package benchcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBaselineValidate(t *testing.T) {
	good := func() *Baseline {
		return &Baseline{Tolerance: 0.25, Ratios: []Ratio{{Name: "r", Numerator: Metric{"BenchmarkA", "ns/op"}, Denominator: Metric{"BenchmarkB", "ns/op"}, Better: Lower, Baseline: 2}}}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*Baseline)
		wantErr string
	}{
		{"valid", func(*Baseline) {}, ""},
		{"default tolerance as a percentage", func(b *Baseline) { b.Tolerance = 25 }, "tolerance 25: want a fraction"},
		{"no ratios", func(b *Baseline) { b.Ratios = nil }, "no ratios"},
		{"no name", func(b *Baseline) { b.Ratios[0].Name = "" }, `ratio 0 (""): no name`},
		{"name twice", func(b *Baseline) { b.Ratios = append(b.Ratios, b.Ratios[0]) }, `ratio 1 ("r"): name used twice`},
		{"benchmark without its prefix", func(b *Baseline) { b.Ratios[0].Numerator.Benchmark = "Uppercase" }, `metric "Uppercase ns/op"`},
		{"no unit", func(b *Baseline) { b.Ratios[0].Denominator.Unit = "" }, `metric "BenchmarkB "`},
		{"better misspelt", func(b *Baseline) { b.Ratios[0].Better = "less" }, `better "less"`},
		{"baseline zero", func(b *Baseline) { b.Ratios[0].Baseline = 0 }, "baseline 0: want a positive number"},
		{"ratio tolerance 1", func(b *Baseline) { b.Ratios[0].Tolerance = 1 }, "tolerance 1: want a fraction between 0 and 1, or none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good()
			tc.edit(b)
			err := b.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadBaselineUnknownField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "baseline.json")
	if err := os.WriteFile(path, []byte(`{"tolerance": 0.25, "ratios": [{"name": "r", "optional": true}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBaseline(path); err == nil || !strings.Contains(err.Error(), `unknown field "optional"`) {
		t.Fatalf("err = %v, want the unknown field named", err)
	}
}

// TestCommittedBaselineCanonical: bench/baseline.json loads, and is
// written exactly as Save writes it, so that `bench-check -update` changes
// only the baselines that moved.
func TestCommittedBaselineCanonical(t *testing.T) {
	const path = "../../bench/baseline.json"
	b, err := LoadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "baseline.json")
	if err := b.Save(saved); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	got, _ := os.ReadFile(saved)
	if string(got) != string(want) {
		t.Fatalf("%s is not in Save's form; rewrite it with Save:\n%s", path, got)
	}
}
