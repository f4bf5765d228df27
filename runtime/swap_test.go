package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestHotSwapUnderLoad is the race-detector variant of hotSwapUnderLoad;
// TestHotSwap50UnderLoad (built without -race) runs the full load.
func TestHotSwapUnderLoad(t *testing.T) { hotSwapUnderLoad(t, 10, 250, 0) }

// hotSwapUnderLoad swaps uppercase and lowercase back and forth while
// records keep arriving (perCommit records every 5 ms, at least minRate a
// second). Every record is output exactly once, wholly in one case (one
// plugin version), and per partition the versions form contiguous runs: no
// more runs than versions.
func hotSwapUnderLoad(t *testing.T, swaps, perCommit int, minRate float64) {
	db, src, sink := logToLog(t)
	upper, lower := testPlugin(t, "uppercase"), testPlugin(t, "lowercase")
	p, err := New(Config{Name: "swap", DB: db, Plugin: upper, Source: src, Sink: sink, Follow: true, BatchSize: 50, Logger: quiet,
		KeepVersions: swaps + 1}) // the whole history is checked below
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); runErr <- err }()
	<-p.Ready()

	stopProducing := produceContinuously(t, db, perCommit)
	next := []*host.Plugin{lower, upper}
	start := time.Now()
	for i := 0; i < swaps; i++ {
		time.Sleep(20 * time.Millisecond)
		if _, err := p.Swap(context.Background(), fresh(t, next[i%2]), nil); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
	}
	// A module that refuses its configuration is refused; the old one keeps running.
	if _, err := p.Swap(context.Background(), fresh(t, testPlugin(t, "filter")), nil); !errors.Is(err, host.ErrInit) {
		t.Fatalf("bad swap: %v", err)
	}
	produced := stopProducing()
	rate := float64(produced) / time.Since(start).Seconds()
	t.Logf("%d swaps while input arrived at %.0f records/s", swaps, rate)
	if rate < minRate {
		t.Errorf("input arrived at %.0f records/s, below the %.0f the test needs", rate, minRate)
	}
	drainAndStop(t, p, runErr, produced)
	total := 0
	for part := uint32(0); part < 3; part++ {
		in, out := inAndOut(t, db, part)
		runs, prev := 0, ""
		for i := range in {
			o := string(out[i].Value)
			if strings.ToUpper(o) != strings.ToUpper(string(in[i].Value)) {
				t.Fatalf("partition %d offset %d: %q is not %q", part, i, o, in[i].Value)
			}
			kase := "upper"
			switch o {
			case strings.ToUpper(o):
			case strings.ToLower(o):
				kase = "lower"
			default:
				t.Fatalf("partition %d offset %d: %q is processed by neither version alone", part, i, o)
			}
			if kase != prev {
				runs, prev = runs+1, kase
			}
		}
		if runs > swaps+1 {
			t.Fatalf("partition %d: %d runs of versions for %d swaps", part, runs, swaps)
		}
		total += len(out)
	}
	if total != produced {
		t.Fatalf("%d outputs, %d produced", total, produced)
	}
	versions, _ := pluginVersions(db, "swap")
	if len(versions) != swaps+1 || versions[0].Reason != "start" || versions[swaps].Hash != upper.Hash() {
		t.Fatalf("%d versions recorded: %+v", len(versions), versions)
	}
}

// fresh compiles another Plugin of p's module: Swap takes over (and later
// closes) the plugin it is given, and the test cache's plugins are shared.
func fresh(t testing.TB, p *host.Plugin) *host.Plugin {
	t.Helper()
	f, err := p.Engine().Compile(context.Background(), p.Name(), p.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// logToLog opens a data directory with a 3-partition topic "in" and returns
// a source on it and a sink to topic "out".
func logToLog(t *testing.T) (*storage.DB, Source, Sink) {
	t.Helper()
	db := diskDB(t, filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() { db.Close() })
	db.CreateTopic("in", 3)
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", 3)
	return db, src, sink
}

// drainAndStop waits until the pipeline has read all produced records, then
// stops it.
func drainAndStop(t *testing.T, p *Pipeline, runErr <-chan error, produced int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for p.in.Load() < int64(produced) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

// inAndOut reads partition part of topics "in" and "out", which must hold
// as many records.
func inAndOut(t *testing.T, db *storage.DB, part uint32) (in, out []storage.Entry) {
	t.Helper()
	in, _, _ = db.ReadLog("in", part, 0, 1<<30, 1<<40, nil, nil)
	out, _, _ = db.ReadLog("out", part, 0, 1<<30, 1<<40, nil, nil)
	if len(out) != len(in) {
		t.Fatalf("partition %d: %d outputs for %d inputs", part, len(out), len(in))
	}
	return in, out
}

// produceContinuously appends perCommit records to topic "in" (3
// partitions) every 5 ms until the returned function is called; that
// function returns how many records were produced.
func produceContinuously(t *testing.T, db *storage.DB, perCommit int) (stop func() int) {
	var produced int
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			b := db.NewBatch()
			for j := 0; j < perCommit; j++ {
				n := i*perCommit + j
				b.Append("in", uint32(n%3), &storage.Entry{Value: []byte(fmt.Sprintf(`{"Rec":"MiXeD-%d"}`, n))})
			}
			if err := db.Commit(b); err != nil {
				t.Error(err)
				return
			}
			produced += perCommit
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() int {
		close(done)
		wg.Wait()
		return produced
	}
}

// TestHotSwapAcrossLanguages swaps the same operator from language to
// language while records arrive: every record is output exactly once,
// upper-cased, and every version is recorded.
func TestHotSwapAcrossLanguages(t *testing.T) {
	db, src, sink := logToLog(t)
	langs := []string{"rust", "c", "cpp", "assemblyscript", "zig", "wat", "go"}
	versions := []*host.Plugin{testPlugin(t, "uppercase")}
	for _, l := range langs {
		versions = append(versions, testPluginIn(t, l, "uppercase"))
	}
	p, err := New(Config{Name: "polyglot", DB: db, Plugin: versions[0], Source: src, Sink: sink, Follow: true, BatchSize: 50, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); runErr <- err }()
	<-p.Ready()
	stop := produceContinuously(t, db, 100)
	for i, v := range versions[1:] {
		time.Sleep(30 * time.Millisecond)
		if _, err := p.Swap(context.Background(), fresh(t, v), nil); err != nil {
			t.Fatalf("swap to %s: %v", langs[i], err)
		}
	}
	produced := stop()
	drainAndStop(t, p, runErr, produced)
	total := 0
	for part := uint32(0); part < 3; part++ {
		in, out := inAndOut(t, db, part)
		for i := range in {
			if want := strings.ToUpper(string(in[i].Value)); string(out[i].Value) != want {
				t.Fatalf("partition %d offset %d: %q, want %q", part, i, out[i].Value, want)
			}
		}
		total += len(out)
	}
	if total != produced {
		t.Fatalf("%d outputs, %d produced", total, produced)
	}
	recorded, _ := pluginVersions(db, "polyglot")
	if len(recorded) != len(versions) {
		t.Fatalf("%d versions recorded, want %d: %+v", len(recorded), len(versions), recorded)
	}
	for i, v := range versions {
		if recorded[i].Hash != v.Hash() {
			t.Fatalf("version %d is %s, want %s (%s)", i, recorded[i].Hash, v.Hash(), v.Name())
		}
	}
}

func TestRollback(t *testing.T) {
	dir := t.TempDir()
	db := diskDB(t, filepath.Join(dir, "data"))
	defer db.Close()
	db.CreateTopic("in", 1)
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", 1)
	upper, lower := testPlugin(t, "uppercase"), testPlugin(t, "lowercase")
	p, _ := New(Config{Name: "rb", DB: db, Plugin: upper, Source: src, Sink: sink, Follow: true, Logger: quiet})
	runErr := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); runErr <- err }()
	<-p.Ready()
	if _, err := p.Rollback(context.Background()); err == nil {
		t.Fatal("rollback without an earlier version succeeded")
	}
	if _, err := p.Swap(context.Background(), fresh(t, lower), nil); err != nil {
		t.Fatal(err)
	}
	res, err := p.Rollback(context.Background())
	if err != nil || res.Hash != upper.Hash() || res.Previous != lower.Hash() {
		t.Fatalf("rollback: %+v %v", res, err)
	}
	if st := p.Status(); st.PluginHash != upper.Hash() || st.PluginVersion != 2 || st.Swaps != 2 {
		t.Fatalf("status %+v", st)
	}
	p.Pause()
	if !p.Status().Paused {
		t.Fatal("not paused")
	}
	p.Resume()
	p.Stop()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}
