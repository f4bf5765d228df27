package benchcheck

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Result
		wantErr  string
	}{
		{
			name: "several metrics",
			in:   "BenchmarkABIOverhead/batch=1000-2   \t  100000\t     22530 ns/op\t  22.53 ns/record\t  480 B/op\t 3 allocs/op\n",
			want: []Result{{Name: "BenchmarkABIOverhead/batch=1000", Procs: 2, Iterations: 100000,
				Metrics: map[string]float64{"ns/op": 22530, "ns/record": 22.53, "B/op": 480, "allocs/op": 3}}},
		},
		{
			name: "sub-benchmarks with slashes, dashes and = in their names",
			in: "BenchmarkEndToEnd/plugin=wat-passthrough/partitions=2-16 \t 1 \t 23012000000 ns/op \t 869108 records/s\n" +
				"BenchmarkKafkaToKafka/franz-go-2 \t 1 \t 5 ns/op\n" +
				"BenchmarkKafkaToKafka/franz-go \t 1 \t 5 ns/op\n", // GOMAXPROCS=1: no suffix
			want: []Result{
				{Name: "BenchmarkEndToEnd/plugin=wat-passthrough/partitions=2", Procs: 16, Iterations: 1, Metrics: map[string]float64{"ns/op": 23012000000, "records/s": 869108}},
				{Name: "BenchmarkKafkaToKafka/franz-go", Procs: 2, Iterations: 1, Metrics: map[string]float64{"ns/op": 5}},
				{Name: "BenchmarkKafkaToKafka/franz-go", Procs: 1, Iterations: 1, Metrics: map[string]float64{"ns/op": 5}},
			},
		},
		{
			name: "non-ASCII units and exponents",
			in:   "BenchmarkSwapStall-2 20 4.8e+08 ns/op 181 µs-gap-median\n",
			want: []Result{{Name: "BenchmarkSwapStall", Procs: 2, Iterations: 20, Metrics: map[string]float64{"ns/op": 4.8e8, "µs-gap-median": 181}}},
		},
		{
			name: "lines that are not results are skipped",
			in: "goos: linux\npkg: x\ncpu: AMD EPYC\n" +
				"BenchmarkEndToEnd/plugin=uppercase/partitions=2\n" + // the name alone
				"BenchmarkBoundedMemory-2   \tchild: started\n" + // the name, then the benchmark's own output
				"--- SKIP: BenchmarkKafkaToKafka\n    kafka_bench_test.go:30: no broker\n" +
				"--- BENCH: BenchmarkX-2\n    x_test.go:1: BenchmarkY-2 1 2 ns/op\n" + // indented log
				"Benchmarking is fun 3 x\n" + // prose is fine: "is" is no iteration count
				"PASS\nok  \tgithub.com/x\t1.2s\nFAIL\n",
			want: nil,
		},
		{name: "iterations and no metrics", in: "BenchmarkX-2 10\n", want: []Result{{Name: "BenchmarkX", Procs: 2, Iterations: 10, Metrics: map[string]float64{}}}},
		{name: "a value without its unit", in: "goos: linux\nBenchmarkX-2 10 5 ns/op 7\n", wantErr: "line 2: BenchmarkX-2: metrics are not value-unit pairs"},
		{name: "a value that is not a number", in: "BenchmarkX-2 10 fast ns/op\n", wantErr: `line 1: BenchmarkX-2: metric "ns/op": value "fast" is not a finite number`},
		{name: "NaN", in: "BenchmarkX-2 10 NaN x\n", wantErr: "not a finite number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSplitProcs(t *testing.T) {
	for _, tc := range []struct {
		in    string
		name  string
		procs int
	}{
		{"BenchmarkX-2", "BenchmarkX", 2},
		{"BenchmarkX", "BenchmarkX", 1},
		{"BenchmarkX/a=1-12", "BenchmarkX/a=1", 12},
		{"BenchmarkX/lang=go-x/batch=1", "BenchmarkX/lang=go-x/batch=1", 1}, // dash before the last slash
		{"BenchmarkX/franz-go", "BenchmarkX/franz-go", 1},
		{"BenchmarkX-", "BenchmarkX-", 1},
		{"BenchmarkX-+2", "BenchmarkX-+2", 1},
		{"BenchmarkX-0", "BenchmarkX-0", 1},
	} {
		if name, procs := splitProcs(tc.in); name != tc.name || procs != tc.procs {
			t.Errorf("splitProcs(%q) = %q, %d; want %q, %d", tc.in, name, procs, tc.name, tc.procs)
		}
	}
}

// TestParseFixture reads a whole `make bench` output (testdata/bench.txt,
// go test's format with the README's figures).
func TestParseFixture(t *testing.T) {
	res, err := ReadBenchOutput("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 101 { // 102 lines start with Benchmark: one is a name alone
		t.Errorf("%d results, want 101", len(res))
	}
	for _, c := range []struct {
		m    Metric
		want float64
	}{
		{Metric{"BenchmarkUppercase/batch=1000/native", "ns/record"}, 69.91},
		{Metric{"BenchmarkSchemaMigration", "ns/record-wasm-migrator"}, 5547},
		{Metric{"BenchmarkEndToEnd/plugin=wat-passthrough/partitions=2", "txns"}, 10021},
		{Metric{"BenchmarkEndToEnd/plugin=wat-passthrough/partitions=2", "raw-records/s"}, 1145632},
		{Metric{"BenchmarkEngines/engine=wasmtime/compile=cached/lang=go", "ns/op"}, 16600000},
		{Metric{"BenchmarkSwapStall", "µs-stall-median"}, 245},
	} {
		if got, ok := Lookup(res, c.m); !ok || got != c.want {
			t.Errorf("%s = %v, %v; want %v", c.m, got, ok, c.want)
		}
	}
}

// FuzzParse: Parse never panics, every result it returns is well formed,
// and printing a result the way go test does parses back to it.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile("testdata/bench.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	f.Add("BenchmarkX/a=b-c/d-2 10 1.5 ns/op 3 allocs/op\n")
	f.Add("BenchmarkX-2 10 5 ns/op 7\n--- FAIL: BenchmarkX\n")
	f.Fuzz(func(t *testing.T, in string) {
		res, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, r := range res {
			if !strings.HasPrefix(r.Name, "Benchmark") || r.Procs < 1 || r.Iterations < 1 {
				t.Fatalf("malformed result %+v", r)
			}
			line := r.Name
			if r.Procs != 1 {
				line += fmt.Sprintf("-%d", r.Procs)
			}
			line += fmt.Sprintf("\t%d", r.Iterations)
			for u, v := range r.Metrics {
				line += fmt.Sprintf("\t%v %s", v, u)
			}
			back, err := Parse(strings.NewReader(line))
			if err != nil || len(back) != 1 || !reflect.DeepEqual(back[0], r) {
				t.Fatalf("%+v printed as %q parses back as %+v, %v", r, line, back, err)
			}
		}
	})
}
