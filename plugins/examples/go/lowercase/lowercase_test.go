package main

import (
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func TestLowercase(t *testing.T) {
	optest.Run(t, "lowercase", nil, []optest.Case{
		{In: []string{"HeLLo", "", "ÉA 123", `{"A":"B"}`}, Out: []string{"0:hello", "1:", "2:Éa 123", `3:{"a":"b"}`}},
	})
}
