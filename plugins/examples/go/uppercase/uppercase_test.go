package main

import (
	"fmt"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func TestUppercase(t *testing.T) {
	optest.Run(t, "uppercase", nil, []optest.Case{
		{In: []string{"hello", "", "MiXeD 123 é", `{"a":"b"}`}, Out: []string{"0:HELLO", "1:", "2:MIXED 123 é", `3:{"A":"B"}`}},
		{In: nil, Out: nil},
	})
}

func BenchmarkUppercase(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			optest.Bench(b, "uppercase", nil, n)
			// The same operator by hand against the ABI, in Go without the
			// SDK: the floor of Go's wasm backend for it.
			b.Run("go-floor", func(b *testing.B) { optest.BenchWasm(b, "internal/testutil/guests/floor", n) })
		})
	}
}

// TestFloorGuest: the hand-written Go guest of the floor benchmark
// computes what the uppercase example does.
func TestFloorGuest(t *testing.T) {
	optest.SameAsExample(t, "internal/testutil/guests/floor", "uppercase", 100)
}
