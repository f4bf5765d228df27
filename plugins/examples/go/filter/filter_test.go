package main

import (
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil/optest"
)

func cfg(kv ...string) []abi.Header {
	var out []abi.Header
	for i := 0; i < len(kv); i += 2 {
		out = append(out, abi.Header{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return out
}

func TestFilterString(t *testing.T) {
	optest.Run(t, "filter", cfg("field", "user", "equals", "u1"), []optest.Case{{
		In:  []string{`{"user":"u1","n":1}`, `{"user":"u2"}`, `{"n":3}`, `{"user":"u1"}`, `[1,2]`, `{"user":"u\u0031"}`},
		Out: []string{`0:{"user":"u1","n":1}`, `3:{"user":"u1"}`, "4!filter: value is not a JSON object", `5:{"user":"u\u0031"}`},
	}})
}

func TestFilterNumber(t *testing.T) {
	optest.Run(t, "filter", cfg("field", "n", "equals", "3"), []optest.Case{{
		In:  []string{`{"n": 3}`, `{"n":"3"}`, `{"n":4}`, `{"n":30}`},
		Out: []string{`0:{"n": 3}`, `1:{"n":"3"}`},
	}})
}
