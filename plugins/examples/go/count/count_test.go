package main

import (
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func TestCountByKey(t *testing.T) {
	optest.Run(t, "count", nil, []optest.Case{
		{In: []string{"a", "b", "c"}, Out: []string{`0:{"key":"k0","count":1}`, `1:{"key":"k1","count":1}`, `2:{"key":"k0","count":2}`}},
		// State carries over from batch to batch.
		{In: []string{"d"}, Keys: []string{"k1"}, Out: []string{`0:{"key":"k1","count":2}`}},
		{In: []string{"e"}, Keys: []string{"say \"hi\"\n"}, Out: []string{`0:{"key":"say \"hi\"\n","count":1}`}},
	})
}

func TestCountByField(t *testing.T) {
	optest.Run(t, "count", []abi.Header{{Key: []byte("key_field"), Value: []byte("user")}}, []optest.Case{
		{In: []string{`{"user":"u1"}`, `{"user":"u2"}`, `{"user":"u1"}`, `nope`}, Out: []string{`0:{"key":"u1","count":1}`, `1:{"key":"u2","count":1}`,
			`2:{"key":"u1","count":2}`, "3!count: value is not a JSON object"}},
	})
}

func BenchmarkCount(b *testing.B) {
	b.Run("batch=1000", func(b *testing.B) { optest.Bench(b, "count", nil, 1000) })
}
