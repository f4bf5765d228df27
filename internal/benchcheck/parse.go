// Package benchcheck guards `make bench` against regressions: it parses Go
// benchmark output, computes the ratios bench/baseline.json names (each
// taken within one run, never absolute times), and compares them with the
// baselines committed there. It is the library of internal/cmd/bench-check.
package benchcheck

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Result is one benchmark result line:
//
//	BenchmarkName/sub=1-2   	     100	  559.9 ns/record	  12 allocs/op
//
// Name keeps the "Benchmark" prefix and the sub-benchmark path but not the
// "-N" GOMAXPROCS suffix, which goes to Procs (1 when absent, as go test
// prints no suffix then).
type Result struct {
	Name       string             `json:"name"`
	Procs      int                `json:"procs"`
	Iterations int64              `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"`
}

// Parse reads go test -bench output and returns its result lines in order.
// Lines that are not results are skipped: go test's headers (goos:, pkg:),
// PASS/ok/FAIL, --- SKIP and indented log lines, and a benchmark's name
// printed alone or followed by the benchmark's own output instead of an
// iteration count (go test prints the name before running it). A line with
// a name and an iteration count whose metrics are not value-unit pairs is an
// error naming the line.
func Parse(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		res, ok, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("benchmark output line %d: %w", n, err)
		}
		if ok {
			out = append(out, res)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading benchmark output: %w", err)
	}
	return out, nil
}

// parseLine returns ok=false for a line that is not a result.
func parseLine(line string) (Result, bool, error) {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(line, "Benchmark") {
		return Result{}, false, nil
	}
	iters, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || iters <= 0 {
		return Result{}, false, nil // the name, then the benchmark's own output
	}
	name, procs := splitProcs(f[0])
	res := Result{Name: name, Procs: procs, Iterations: iters, Metrics: map[string]float64{}}
	pairs := f[2:]
	if len(pairs)%2 != 0 {
		return Result{}, false, fmt.Errorf("%s: metrics are not value-unit pairs: %q", f[0], strings.Join(pairs, " "))
	}
	for i := 0; i < len(pairs); i += 2 {
		v, err := strconv.ParseFloat(pairs[i], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Result{}, false, fmt.Errorf("%s: metric %q: value %q is not a finite number", f[0], pairs[i+1], pairs[i])
		}
		if _, dup := res.Metrics[pairs[i+1]]; !dup { // go test never repeats a unit; keep the first
			res.Metrics[pairs[i+1]] = v
		}
	}
	return res, true, nil
}

// splitProcs splits "BenchmarkX/a=1-2" into "BenchmarkX/a=1" and 2. The
// suffix is only looked for after the last slash, so "-" inside a
// sub-benchmark name (lang=go-x/batch=1) stays in the name.
func splitProcs(s string) (string, int) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 || i < strings.LastIndexByte(s, '/') || !allDigits(s[i+1:]) {
		return s, 1
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p <= 0 {
		return s, 1
	}
	return s[:i], p
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
