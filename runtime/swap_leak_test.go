package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/storage"
)

// startLogToLog starts pipeline name over logToLog, following, with plugin,
// and returns it once it is ready, with its Run's result.
func startLogToLog(t *testing.T, name string, plugin *host.Plugin) (*Pipeline, <-chan error) {
	t.Helper()
	db, src, sink := logToLog(t)
	p, err := New(Config{Name: name, DB: db, Plugin: plugin, Source: src, Sink: sink, Follow: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); runErr <- err }()
	<-p.Ready()
	return p, runErr
}

// TestSwapsDoNotLeak: 500 swaps (and a rollback) on an idle pipeline, whose
// workers therefore skip almost every version, leave no compiled plugin, no
// instance and no generation behind but the running one; the heap stays
// flat; records arriving next are processed. Refused swaps, and swaps after
// Run, close the plugin they were given.
func TestSwapsDoNotLeak(t *testing.T) {
	upper, lower := testPluginIn(t, "wat", "uppercase"), testPlugin(t, "lowercase")
	filter := testPlugin(t, "filter") // compiled (and cached) before counting
	e := upper.Engine()
	p, runErr := startLogToLog(t, "leak", upper)
	db := p.cfg.DB
	base := e.LivePlugins()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var heap100 uint64
	next := []*host.Plugin{lower, upper}
	for i := range 500 {
		if _, err := p.Swap(context.Background(), fresh(t, next[i%2]), nil); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
		if i == 99 {
			heap100 = heap()
		}
		if i%100 == 99 {
			t.Logf("after %d swaps: heap %d MiB, %d plugins open", i+1, heap()>>20, e.LivePlugins()-base)
		}
	}
	if _, err := p.Rollback(context.Background()); err != nil { // back to lower
		t.Fatal(err)
	}
	// A refused swap closes the plugin it was given at once.
	if _, err := p.Swap(context.Background(), fresh(t, filter), nil); !errors.Is(err, host.ErrInit) {
		t.Fatalf("swap to a plugin refusing its config: %v", err)
	}
	// Workers release what they used in the background.
	deadline := time.Now().Add(10 * time.Second)
	for e.LivePlugins() > base+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.LivePlugins() - base; n > 1 {
		t.Errorf("%d compiled plugins still open after 500 swaps, want at most 1 (the running one)", n)
	}
	p.gensMu.Lock()
	gens, refs := len(p.gens), len(p.pluginRefs)
	p.gensMu.Unlock()
	if gens > 1 || refs > 1 {
		t.Errorf("%d superseded generations and %d owned plugins kept, want at most 1 each", gens, refs)
	}
	// Pebble's memtables (the version history is written on every swap)
	// take a few MiB steps; one leaked Go instance alone costs more than
	// 1 MiB, and 400 swaps would leak 600 of them.
	if h := heap(); h > heap100+64<<20 {
		t.Errorf("heap grew from %d MiB after 100 swaps to %d MiB after 500", heap100>>20, h>>20)
	}

	b := db.NewBatch()
	for i := range 30 {
		b.Append("in", uint32(i%3), &storage.Entry{Value: []byte(fmt.Sprintf(`{"Rec":"MiXeD-%d"}`, i))})
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	drainAndStop(t, p, runErr, 30)
	for part := uint32(0); part < 3; part++ {
		in, out := inAndOut(t, db, part) // one output per input
		for i := range in {
			if !strings.EqualFold(string(out[i].Value), string(in[i].Value)) {
				t.Fatalf("partition %d offset %d: %q for %q", part, i, out[i].Value, in[i].Value)
			}
		}
	}
	if _, err := p.Swap(context.Background(), fresh(t, lower), nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("swap after Run: %v", err)
	}
	if n := e.LivePlugins() - base; n != 0 {
		t.Errorf("%d plugins the pipeline took over still open after Run", n)
	}
}

// TestSwapKeepsPluginInUse: a live dead-letter retry holds a use of the
// version it started with (useGeneration). Before, a swap during the retry
// closed that version's plugin when the partitions' workers had never taken
// it (idle), and the retry's next instance failed, stopping the pipeline.
func TestSwapKeepsPluginInUse(t *testing.T) {
	upper, lower := testPluginIn(t, "wat", "uppercase"), testPlugin(t, "lowercase")
	e := upper.Engine()
	p, runErr := startLogToLog(t, "inuse", upper)
	base := e.LivePlugins()
	v2 := fresh(t, lower)
	if _, err := p.Swap(context.Background(), v2, nil); err != nil {
		t.Fatal(err)
	}
	g, done := p.useGeneration()
	if g.plugin != v2 {
		t.Fatal("useGeneration did not return the current version")
	}
	v3 := fresh(t, upper)
	if _, err := p.Swap(context.Background(), v3, nil); err != nil {
		t.Fatal(err)
	}
	inst, err := v2.NewInstance(context.Background(), host.InstanceConfig{Partition: 1, Logger: quiet})
	if err != nil {
		t.Fatalf("the version in use was closed by the swap: %v", err)
	}
	inst.Close(context.Background())
	if n := e.LivePlugins() - base; n != 2 {
		t.Fatalf("%d plugins open besides the pipeline's first, want 2: the current one and v2 in use", n)
	}
	done()
	if n := e.LivePlugins() - base; n != 1 {
		t.Fatalf("%d plugins open besides the pipeline's first after the use ended, want the current one", n)
	}
	p.Stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	// Ended: no use can be taken any more, and the status names the
	// version the run ended with.
	if g, done := p.useGeneration(); g != nil {
		done()
		t.Error("useGeneration after Run returned a generation")
	}
	if st := p.Status(); !st.Ended || st.Error != "" || st.PluginHash != v3.Hash() || st.PluginVersion != 2 {
		t.Errorf("status after Run: ended %v, error %q, plugin %s version %d; want the version it ended with, %s version 2",
			st.Ended, st.Error, st.PluginHash[:12], st.PluginVersion, v3.ShortHash())
	}
}
