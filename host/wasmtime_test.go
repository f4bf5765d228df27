//go:build wasmtime

package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// TestWasmtimeWASIMatchesWazero: the host's WASI for wasmtime has every
// function of wazero's, with the same signature, so a module that loads on
// one engine loads on the other.
func TestWasmtimeWASIMatchesWazero(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		t.Fatal(err)
	}
	want := rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()
	ours := map[string]hostFunc{}
	for _, f := range wasiFuncs {
		ours[f.name] = f
	}
	for name, def := range want {
		f, ok := ours[name]
		if !ok {
			t.Errorf("wasi_snapshot_preview1.%s: missing", name)
			continue
		}
		if !sameTypes(f.params, def.ParamTypes()) || !sameTypes(f.results, def.ResultTypes()) {
			t.Errorf("wasi_snapshot_preview1.%s: (%v) -> (%v), wazero has (%v) -> (%v)", name,
				typeNames(f.params), typeNames(f.results), typeNames(def.ParamTypes()), typeNames(def.ResultTypes()))
		}
	}
	if len(ours) != len(want) {
		t.Errorf("%d WASI functions, wazero has %d", len(ours), len(want))
	}
}

// TestWasmtimeCache: a compiled module is serialized under the wasmtime
// version's directory, named by the SHA-256 of the instrumented module; a
// later engine loads it; a damaged file is compiled again and replaced.
func TestWasmtimeCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := testutil.WAT(t, string(readFile(t, "testdata/passthrough.wat")))
	instrumented, err := instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(instrumented)
	matches, _ := filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-*", hex.EncodeToString(sum[:])))
	if len(matches) != 0 {
		t.Fatal("cache not empty before the first compile")
	}
	roundTrip := func(what string) {
		t.Helper()
		e := newTestEngine(t, Config{Engine: EngineWasmtime, CacheDir: dir})
		p := mustCompile(t, e, "passthrough.wat", wasm)
		inst := mustInstance(t, p, InstanceConfig{})
		recs := testRecords(3)
		ents, err := inst.Process(ctx, recs, nil)
		if err != nil || len(ents) != 3 || !bytes.Equal(ents[2].Value, recs[2].Value) {
			t.Fatalf("%s: %v (%d entries)", what, err, len(ents))
		}
	}
	roundTrip("cold")
	matches, _ = filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-*", hex.EncodeToString(sum[:])))
	if len(matches) != 1 {
		t.Fatalf("after a compile, cache entries %v, want one named by the module's hash", matches)
	}
	good, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	roundTrip("from the cache")
	if err := os.WriteFile(matches[0], []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	roundTrip("damaged cache entry")
	if again, _ := os.ReadFile(matches[0]); len(again) != len(good) {
		t.Fatalf("damaged cache entry not replaced: %d bytes, want %d", len(again), len(good))
	}
}

// TestWasmtimeConcurrentInstances: instances of one plugin, one per
// goroutine (as partitions are), each with its own store, call host
// functions concurrently (run with -race).
func TestWasmtimeConcurrentInstances(t *testing.T) {
	e := newTestEngine(t, Config{Engine: EngineWasmtime})
	process := `(drop (call $state_put (i32.const 1024) (i32.const 2) (local.get $ptr) (i32.const 4))) (call $empty)`
	p := mustCompile(t, e, "put.wasm", watOperator{process: process, extra: `(data (i32.const 1024) "k1")`}.build(t))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for part := range 4 {
		inst := mustInstance(t, p, InstanceConfig{Partition: int32(part)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := testutil.MapState{}
			for i := range 200 {
				if _, err := inst.Process(context.Background(), []abi.Record{{Value: []byte(fmt.Sprint(i))}}, st); err != nil {
					errs <- err
					return
				}
				if len(st["k1"]) != 4 {
					errs <- fmt.Errorf("partition %d batch %d: state %q", part, i, st)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !slices.Contains(Engines(), EngineWasmtime) {
		t.Fatal("a wasmtime build lists no wasmtime engine")
	}
}
