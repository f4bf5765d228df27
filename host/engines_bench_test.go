package host_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func benchPlugin(b *testing.B, lang string) []byte {
	path := testutil.GoPlugin(b, "uppercase")
	if lang != "go" {
		path = testutil.Plugin(b, lang, "uppercase")
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return wasm
}

func benchEngine(b *testing.B, engine, cacheDir string) *host.Engine {
	e, err := host.NewEngine(context.Background(), host.Config{Engine: engine, CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkEngines compares the engines of this build side by side (make
// bench builds it with the wasmtime tag when gcc is present): the uppercase
// operator's cost per record in every language at batch 1, 100 and 1000;
// compiling the Go guest (the largest module) cold and from the on-disk
// cache; and hot-swap preparation, what a swap does per partition before
// switching (instantiate, start, helios_init).
func BenchmarkEngines(b *testing.B) {
	ctx := context.Background()
	for _, engine := range host.Engines() {
		b.Run("engine="+engine, func(b *testing.B) {
			for _, lang := range testutil.Langs {
				wasm := benchPlugin(b, lang)
				e := benchEngine(b, engine, os.Getenv("HELIOS_TEST_CACHE"))
				p, err := e.Compile(ctx, lang+"-uppercase.wasm", wasm)
				if err != nil {
					b.Fatal(err)
				}
				for _, n := range []int{1, 100, 1000} {
					recs := optest.BenchRecords(n)
					b.Run(fmt.Sprintf("lang=%s/batch=%d", lang, n), func(b *testing.B) {
						inst, err := p.NewInstance(ctx, host.InstanceConfig{})
						if err != nil {
							b.Fatal(err)
						}
						defer inst.Close(ctx)
						st := testutil.MapState{}
						b.ResetTimer()
						for range b.N {
							if _, err := inst.Process(ctx, recs, st); err != nil {
								b.Fatal(err)
							}
						}
						b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
					})
				}
				if lang == "go" {
					b.Run("swap-prepare/lang=go", func(b *testing.B) {
						for range b.N {
							inst, err := p.NewInstance(ctx, host.InstanceConfig{})
							if err != nil {
								b.Fatal(err)
							}
							inst.Close(ctx)
						}
					})
				}
				e.Close(ctx)
			}
			wasm := benchPlugin(b, "go")
			for _, cached := range []bool{false, true} {
				name := "compile=cold/lang=go"
				if cached {
					name = "compile=cached/lang=go"
				}
				b.Run(name, func(b *testing.B) {
					dir := b.TempDir()
					if cached { // fill the cache
						e := benchEngine(b, engine, dir)
						if _, err := e.Compile(ctx, "go-uppercase.wasm", wasm); err != nil {
							b.Fatal(err)
						}
						e.Close(ctx)
					}
					b.ResetTimer()
					for i := range b.N {
						b.StopTimer()
						d := dir
						if !cached {
							d = fmt.Sprintf("%s/%d", dir, i) // empty: nothing to load
						}
						e := benchEngine(b, engine, d)
						b.StartTimer()
						if _, err := e.Compile(ctx, "go-uppercase.wasm", wasm); err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						e.Close(ctx)
						b.StartTimer()
					}
				})
			}
		})
	}
}
