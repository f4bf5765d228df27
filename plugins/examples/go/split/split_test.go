package main

import (
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func TestSplit(t *testing.T) {
	optest.Run(t, "split", nil, []optest.Case{
		{In: []string{"a b  c", "", "  one\ttwo\n", "naïve café"}, Out: []string{"0:a", "0:b", "0:c", "2:one", "2:two", "3:naïve", "3:café"}},
		{In: []string{"   "}, Out: nil},
	})
}
