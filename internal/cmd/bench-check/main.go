// Command bench-check is `make bench-check`: it compares the ratios of the
// last `make bench` run with the baselines committed in bench/baseline.json
// and exits 1 when one regressed beyond its tolerance or a required one is
// missing from the run.
//
//	bench-check -record          # build/bench.txt -> build/bench.json (make bench)
//	bench-check                  # check build/bench.json (make bench-check)
//	bench-check -update          # rewrite the baselines from build/bench.json
//
// It exits 2 when it cannot run (a file missing or malformed).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/heliosdb/helios-wasm/internal/benchcheck"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baseline := fs.String("baseline", "bench/baseline.json", "the ratio definitions and their baselines")
	txt := fs.String("txt", "build/bench.txt", "go test -bench output that -record reads")
	js := fs.String("json", "build/bench.json", "the run's results that -record writes and the check and -update read")
	record := fs.Bool("record", false, "parse -txt, write -json with every metric and the computed ratios, and exit")
	update := fs.Bool("update", false, "set every baseline to its value in -json (review the diff before committing)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *record && *update {
		fmt.Fprintln(stderr, "bench-check: -record and -update are exclusive")
		return 2
	}
	b, err := benchcheck.LoadBaseline(*baseline)
	if err != nil {
		fmt.Fprintln(stderr, "bench-check:", err)
		return 2
	}
	if *record {
		res, err := benchcheck.ReadBenchOutput(*txt)
		if err == nil {
			out := benchcheck.Run{Benchmarks: res, Ratios: benchcheck.Compute(b, res)}
			err = out.Save(*js)
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench-check:", err)
			return 2
		}
		fmt.Fprintf(stdout, "wrote %s (%d results); `make bench-check` compares its ratios with %s\n", *js, len(res), *baseline)
		return 0
	}
	r, err := benchcheck.LoadRun(*js)
	if err != nil {
		fmt.Fprintf(stderr, "bench-check: %v (run `make bench` first)\n", err)
		return 2
	}
	if *update {
		for _, m := range benchcheck.Update(b, r.Benchmarks) {
			fmt.Fprintf(stderr, "bench-check: kept the baseline of %s\n", m)
		}
		if err := b.Save(*baseline); err != nil {
			fmt.Fprintln(stderr, "bench-check:", err)
			return 2
		}
		fmt.Fprintf(stdout, "updated %s from %s; review `git diff %s` before committing\n", *baseline, *js, *baseline)
		return 0
	}
	rep := benchcheck.Check(b, r.Benchmarks)
	rep.Write(stdout)
	if rep.Failed() {
		return 1
	}
	return 0
}
