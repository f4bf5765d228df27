package main

import (
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func TestSplit(t *testing.T) {
	optest.Run(t, "split", nil, []optest.Case{
		{In: []string{"a b  c", "", "  one\ttwo\n\v\f\rx", "naïve\u00a0café"}, Out: []string{"0:a", "0:b", "0:c", "2:one", "2:two", "2:x", "3:naïve\u00a0café"}},
		{In: []string{"   "}, Out: nil},
	})
}
