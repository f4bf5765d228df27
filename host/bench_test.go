package host

import (
	"context"
	"fmt"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// BenchmarkABIOverhead measures the whole per-batch ABI path (encode the
// batch into guest memory, call, copy the output out, decode and validate
// it) around an operator that does no work of its own: a WAT passthrough
// that copies each record to the output.
func BenchmarkABIOverhead(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		recs := make([]abi.Record, n)
		for i := range recs {
			recs[i] = abi.Record{Key: []byte("user-0001"), Value: make([]byte, 100), Offset: int64(i)}
		}
		{
			b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
				e := newTestEngine(b, Config{})
				p := mustCompile(b, e, "passthrough.wat", testutil.WAT(b, string(readFile(b, "testdata/passthrough.wat"))))
				inst := mustInstance(b, p, InstanceConfig{})
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := inst.Process(context.Background(), recs, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			})
		}
	}
}
