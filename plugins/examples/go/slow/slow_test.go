package main

import (
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func TestSlowPassesThrough(t *testing.T) {
	optest.Run(t, "slow", []abi.Header{{Key: []byte("work"), Value: []byte("100")}}, []optest.Case{
		{In: []string{"a", "", "ccc"}, Out: []string{"0:a", "1:", "2:ccc"}},
	})
}
