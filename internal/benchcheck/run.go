package benchcheck

import (
	"encoding/json"
	"fmt"
	"os"
)

// Run is build/bench.json: every result of one `make bench` run and the
// ratios computed from them with the baselines' definitions at the time.
// bench-check recomputes the ratios from Benchmarks, so a ratio added to
// the baselines later is checked against an existing run.
type Run struct {
	Benchmarks []Result `json:"benchmarks"`
	Ratios     []Value  `json:"ratios"`
}

// ReadBenchOutput parses a go test -bench output file (build/bench.txt).
func ReadBenchOutput(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results", path)
	}
	return res, nil
}

// LoadRun reads a bench.json file.
func LoadRun(path string) (*Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Benchmarks) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results", path)
	}
	return &r, nil
}

// Save writes r to path, indented, with a final newline.
func (r *Run) Save(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
