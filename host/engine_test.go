package host

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestEngineChoice(t *testing.T) {
	if !slices.Contains(Engines(), EngineWazero) {
		t.Fatalf("Engines() = %v, want wazero in every build", Engines())
	}
	e := newTestEngine(t, Config{})
	if got := e.Config().Engine; got != EngineWazero {
		t.Errorf("default engine %q, want %q", got, EngineWazero)
	}
	_, err := NewEngine(context.Background(), Config{Engine: "v8"})
	if err == nil || !strings.Contains(err.Error(), `unknown engine "v8"`) || !strings.Contains(err.Error(), EngineWazero) {
		t.Errorf("unknown engine: %v, want an error naming it and the engines of this build", err)
	}
	_, err = NewEngine(context.Background(), Config{Engine: EngineWasmtime})
	if !slices.Contains(Engines(), EngineWasmtime) {
		if err == nil || !strings.Contains(err.Error(), "-tags wasmtime") {
			t.Errorf("wasmtime in a build without the tag: %v, want an error naming the build tag", err)
		}
	} else if err != nil {
		t.Errorf("wasmtime in a build with the tag: %v", err)
	}
}

// forEachEngine runs fn as a subtest for every engine of this build: wazero
// always, wasmtime in builds with the wasmtime tag (make test-wasmtime).
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, name := range Engines() {
		t.Run(name, func(t *testing.T) { fn(t, name) })
	}
}

func withEngine(cfg Config, engine string) Config {
	cfg.Engine = engine
	return cfg
}
