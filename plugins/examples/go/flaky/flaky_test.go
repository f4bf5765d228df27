package main

import (
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func TestFlakyFailMatch(t *testing.T) {
	optest.Run(t, "flaky", []abi.Header{{Key: []byte("fail_match"), Value: []byte("bad")}}, []optest.Case{
		{In: []string{"ok", "a bad one", "fine"}, Out: []string{"0:ok", `1!flaky: value contains "bad"`, "2:fine"}},
	})
}

func TestFlakyPassThrough(t *testing.T) {
	optest.Run(t, "flaky", nil, []optest.Case{{In: []string{"x", ""}, Out: []string{"0:x", "1:"}}})
}
