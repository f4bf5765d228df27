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
// that copies each record to the output; batch=1000/floor is the same
// call without the host's per-record work.
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
	// The floor of the same path: the batch, encoded once beforehand, is
	// copied into guest memory in one move, the guest runs, and the output's
	// header is read; no per-record encoding, no decoding or validation.
	// What BenchmarkABIOverhead measures above it is the host's per-record
	// work.
	b.Run("batch=1000/floor", func(b *testing.B) {
		recs := make([]abi.Record, 1000)
		for i := range recs {
			recs[i] = abi.Record{Key: []byte("user-0001"), Value: make([]byte, 100), Offset: int64(i)}
		}
		enc := abi.AppendBatch(nil, recs)
		e := newTestEngine(b, Config{})
		p := mustCompile(b, e, "passthrough.wat", testutil.WAT(b, string(readFile(b, "testdata/passthrough.wat"))))
		inst := mustInstance(b, p, InstanceConfig{})
		ctx := context.Background()
		if _, err := inst.Process(ctx, recs, nil); err != nil { // starts the instance and sizes its input buffer
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			view, _ := inst.mod.memory().Read(inst.inPtr, uint32(len(enc)))
			copy(view, enc)
			inst.stack[0], inst.stack[1] = uint64(inst.inPtr), uint64(len(enc))
			if err := inst.call(ctx, abi.ExportProcess, inst.stack[:]); err != nil {
				b.Fatal(err)
			}
			ptr, n := abi.UnpackResult(inst.stack[0])
			out, _ := inst.mod.memory().Read(ptr, n)
			if c, ok := outputCount(out); !ok || c != uint32(len(recs)) {
				b.Fatalf("output count %d (%v), want %d", c, ok, len(recs))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	})
}
