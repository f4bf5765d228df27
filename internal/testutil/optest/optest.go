// Package optest runs a Go example operator's table of cases twice: natively
// through the SDK's in-process mode and as WebAssembly through the real host,
// and benchmarks the two side by side.
package optest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

// Case is one batch: input values (keys are "k0"/"k1" alternating unless
// Keys is set) and the expected outputs as "inputIndex:value", or
// "inputIndex!message" for a failed record.
type Case struct {
	In   []string
	Keys []string
	Out  []string
}

func records(c Case) []abi.Record {
	recs := make([]abi.Record, len(c.In))
	for i, v := range c.In {
		k := fmt.Sprintf("k%d", i%2)
		if c.Keys != nil {
			k = c.Keys[i]
		}
		recs[i] = abi.Record{Key: []byte(k), Value: []byte(v), Offset: int64(i), Timestamp: 1}
	}
	return recs
}

func render(ents []abi.Entry) []string {
	var out []string
	for _, e := range ents {
		if e.Kind == abi.EntryKindFailed {
			out = append(out, fmt.Sprintf("%d!%s", e.InputIndex, e.Value))
		} else {
			out = append(out, fmt.Sprintf("%d:%s", e.InputIndex, e.Value))
		}
	}
	return out
}

// Run checks every case, in order (state carries over), natively and as the
// WebAssembly build of plugins/examples/go/NAME.
func Run(t *testing.T, name string, cfg []abi.Header, cases []Case) {
	t.Run("native", func(t *testing.T) {
		if err := helios.NativeInit(cfg); err != nil {
			t.Fatal(err)
		}
		for i, c := range cases {
			out, err := abi.DecodeOutput(nil, helios.NativeProcess(abi.AppendBatch(nil, records(c))), uint32(len(c.In)))
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			check(t, i, render(out), c.Out)
		}
	})
	t.Run("wasm", func(t *testing.T) {
		inst := instance(t, testutil.GoPlugin(t, name), cfg)
		st := testutil.MapState{}
		for i, c := range cases {
			ents, err := inst.Process(context.Background(), records(c), st)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			check(t, i, render(ents), c.Out)
		}
	})
}

func check(t *testing.T, i int, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("case %d:\n got %q\nwant %q", i, got, want)
	}
}

func instance(t testing.TB, path string, cfg []abi.Header) *host.Instance {
	t.Helper()
	ctx := context.Background()
	e, err := host.NewEngine(ctx, host.Config{CacheDir: os.Getenv("HELIOS_TEST_CACHE")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Compile(ctx, filepath.Base(path), wasm)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := p.NewInstance(ctx, host.InstanceConfig{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// BenchRecords makes n JSON records of about 100 bytes.
func BenchRecords(n int) []abi.Record {
	recs := make([]abi.Record, n)
	for i := range recs {
		v := fmt.Sprintf(`{"user":"u%d","id":%d,"msg":"the quick brown fox jumps over the lazy dog"}`, i%10, i)
		v += strings.Repeat(" ", max(0, 100-len(v)))
		recs[i] = abi.Record{Key: []byte(fmt.Sprintf("u%d", i%10)), Value: []byte(v), Offset: int64(i)}
	}
	return recs
}

// Bench measures the operator natively and as WebAssembly on batches of n
// records, reporting ns/record for each: "native" is the Go example run
// in-process through the SDK (with the host's batch encoding and output
// decoding, so that only the call differs), "wasm" its wasip1 build, and
// "lang=L" the same example written in each other language L that has it.
func Bench(b *testing.B, name string, cfg []abi.Header, n int) {
	recs := BenchRecords(n)
	b.Run("native", func(b *testing.B) {
		if err := helios.NativeInit(cfg); err != nil {
			b.Fatal(err)
		}
		buf := abi.AppendBatch(nil, recs)
		var ents []abi.Entry
		b.ResetTimer()
		for range b.N {
			// Encode and decode like the host does, so only the call differs.
			abi.EncodeBatch(buf, recs)
			out := helios.NativeProcess(buf)
			var err error
			if ents, err = abi.DecodeOutput(ents[:0], out, uint32(n)); err != nil {
				b.Fatal(err)
			}
		}
		report(b, n)
	})
	b.Run("wasm", func(b *testing.B) { benchWasm(b, instance(b, testutil.GoPlugin(b, name), cfg), recs) })
	for _, lang := range testutil.Langs[1:] {
		if lang == "wat" && name != "uppercase" {
			continue // WAT has only uppercase
		}
		b.Run("lang="+lang, func(b *testing.B) { benchWasm(b, instance(b, testutil.Plugin(b, lang, name), cfg), recs) })
	}
}

// BenchWasm measures the Go module built from the repository directory
// dir (testutil.GoPlugin) on batches of n BenchRecords, in ns/record.
func BenchWasm(b *testing.B, dir string, n int) {
	benchWasm(b, instance(b, testutil.GoPlugin(b, dir), nil), BenchRecords(n))
}

func benchWasm(b *testing.B, inst *host.Instance, recs []abi.Record) {
	st := testutil.MapState{}
	b.ResetTimer()
	for range b.N {
		if _, err := inst.Process(context.Background(), recs, st); err != nil {
			b.Fatal(err)
		}
	}
	report(b, len(recs))
}

// SameAsExample checks that the Go module built from the repository
// directory dir outputs what plugins/examples/go/EXAMPLE does (keys,
// values, timestamps, input indexes) for a batch of n BenchRecords.
func SameAsExample(t *testing.T, dir, example string, n int) {
	recs := BenchRecords(n)
	var outs [2][]string
	for i, path := range []string{testutil.GoPlugin(t, dir), testutil.GoPlugin(t, example)} {
		ents, err := instance(t, path, nil).Process(context.Background(), recs, testutil.MapState{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			outs[i] = append(outs[i], fmt.Sprintf("%d %d %q %q %q %d", e.Kind, e.InputIndex, e.Key, e.Value, e.Headers, e.Timestamp))
		}
	}
	if len(outs[1]) != n {
		t.Fatalf("the example output %d entries for %d records", len(outs[1]), n)
	}
	check(t, 0, outs[0], outs[1])
}

func report(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
