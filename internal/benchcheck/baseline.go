package benchcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// Baseline is bench/baseline.json: the ratios `make bench-check` guards,
// each with its value in the run the baselines were taken from.
type Baseline struct {
	About     string  `json:"about,omitempty"`
	Tolerance float64 `json:"tolerance"` // default relative tolerance, 0 < t < 1
	Ratios    []Ratio `json:"ratios"`
}

// Ratio is Numerator / Denominator, both taken from the same run.
type Ratio struct {
	Name        string  `json:"name"`
	Numerator   Metric  `json:"numerator"`
	Denominator Metric  `json:"denominator"`
	Better      string  `json:"better"` // "lower" or "higher"
	Baseline    float64 `json:"baseline"`
	// Tolerance overrides the file's default for a noisier ratio.
	Tolerance float64 `json:"tolerance,omitempty"`
	// OptionalBecause, when set, says why the ratio may be missing from a
	// run (no C compiler for wasmtime, no Kafka broker): it is then
	// reported but not an error.
	OptionalBecause string `json:"optional_because,omitempty"`
}

// Metric names one value of one benchmark: Benchmark is the full name
// without the -N suffix ("BenchmarkUppercase/batch=1000/wasm"), Unit the
// unit printed after the value ("ns/record").
type Metric struct {
	Benchmark string `json:"benchmark"`
	Unit      string `json:"unit"`
}

func (m Metric) String() string { return m.Benchmark + " " + m.Unit }

// Values of Ratio.Better.
const (
	Lower  = "lower"
	Higher = "higher"
)

// LoadBaseline reads and validates a baseline file.
func LoadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the baselines: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Baseline
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// Validate reports every invalid entry at once.
func (b *Baseline) Validate() error {
	var errs []error
	if !validTolerance(b.Tolerance) {
		errs = append(errs, fmt.Errorf("tolerance %v: want a fraction between 0 and 1 (0.25 = 25%%)", b.Tolerance))
	}
	if len(b.Ratios) == 0 {
		errs = append(errs, errors.New("no ratios"))
	}
	seen := map[string]bool{}
	for i, r := range b.Ratios {
		bad := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("ratio %d (%q): %s", i, r.Name, fmt.Sprintf(format, a...)))
		}
		switch {
		case r.Name == "":
			bad("no name")
		case seen[r.Name]:
			bad("name used twice")
		}
		seen[r.Name] = true
		for _, m := range []Metric{r.Numerator, r.Denominator} {
			if !strings.HasPrefix(m.Benchmark, "Benchmark") || m.Unit == "" {
				bad("metric %q: want a benchmark name starting with \"Benchmark\" and a unit", m.String())
			}
		}
		if r.Better != Lower && r.Better != Higher {
			bad("better %q: want %q or %q", r.Better, Lower, Higher)
		}
		if !(r.Baseline > 0) || math.IsInf(r.Baseline, 0) {
			bad("baseline %v: want a positive number", r.Baseline)
		}
		if r.Tolerance != 0 && !validTolerance(r.Tolerance) {
			bad("tolerance %v: want a fraction between 0 and 1, or none for the file's default", r.Tolerance)
		}
	}
	return errors.Join(errs...)
}

func validTolerance(t float64) bool { return t > 0 && t < 1 }

// ToleranceOf is the ratio's own tolerance, or else the file's.
func (b *Baseline) ToleranceOf(r Ratio) float64 {
	if r.Tolerance != 0 {
		return r.Tolerance
	}
	return b.Tolerance
}

// Save writes b to path, indented, with a final newline.
func (b *Baseline) Save(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
