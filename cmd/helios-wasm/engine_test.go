package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/host"
)

// cliHasWasmtime: the CLI under test is built with the wasmtime tag when
// this test binary is (go test -tags wasmtime).
func cliHasWasmtime() bool { return slices.Contains(host.Engines(), host.EngineWasmtime) }

// TestEngineFlag: --engine (and HELIOS_ENGINE) picks the engine; an unknown
// one, or wasmtime in a binary built without it, is a usage error naming the
// flag and what to do.
func TestEngineFlag(t *testing.T) {
	p := plugin(t, "uppercase")
	r := runCLI(t, "", testEnv(t), "plugin", "inspect", "--engine", "v8", p)
	if r.code != 2 || !strings.Contains(r.stderr, "--engine (or HELIOS_ENGINE)") || !strings.Contains(r.stderr, `"v8": unknown engine`) {
		t.Fatalf("--engine v8: exit %d, stderr %q; want 2 naming the flag and the engines", r.code, r.stderr)
	}
	want := runCLI(t, "", testEnv(t), "plugin", "inspect", p)
	if want.code != 0 {
		t.Fatalf("plugin inspect: %+v", want)
	}
	r = runCLI(t, "", append(testEnv(t), "HELIOS_ENGINE=wasmtime"), "plugin", "inspect", p)
	if !cliHasWasmtime() {
		if r.code != 2 || !strings.Contains(r.stderr, "-tags wasmtime") {
			t.Fatalf("HELIOS_ENGINE=wasmtime without the tag: exit %d, stderr %q; want 2 naming the build tag", r.code, r.stderr)
		}
		return
	}
	if r.code != 0 || r.stdout != want.stdout {
		t.Fatalf("plugin inspect on wasmtime: exit %d\n%s\nwant the same as on wazero:\n%s\nstderr: %s", r.code, r.stdout, want.stdout, r.stderr)
	}
	in := `{"a":"hello"}` + "\n" + `{"a":"world"}` + "\n"
	r = runCLI(t, in, testEnv(t), "run", "--engine", "wasmtime", "--plugin", p, "--input", "-", "--output", "-", "--at-least-once",
		"--data-dir", t.TempDir(), "--admin", "")
	if r.code != 0 || r.stdout != strings.ToUpper(in) {
		t.Fatalf("run --engine wasmtime: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
}
