package runtime

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/storage"
)

// variants returns n distinct modules (distinct hashes) of the WAT
// uppercase operator: each has a custom section with its number.
func variants(t *testing.T, e *host.Engine, n int) []*host.Plugin {
	t.Helper()
	base, err := os.ReadFile(testutil.Plugin(t, "wat", "uppercase"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*host.Plugin, n)
	for i := range out {
		name, payload := "test.variant", fmt.Sprint(i)
		body := append([]byte{byte(len(name))}, name...)
		body = append(body, payload...)
		wasm := append(append([]byte(nil), base...), 0, byte(len(body))) // custom section (id 0), size < 128
		wasm = append(wasm, body...)
		if out[i], err = e.Compile(context.Background(), fmt.Sprintf("v%d.wasm", i), wasm); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// startFollowing starts a following pipeline from topic "in" to topic out and
// stops it at the end of the test.
func startFollowing(t *testing.T, db *storage.DB, name, out string, plugin *host.Plugin, keep int) *Pipeline {
	t.Helper()
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, out, 3)
	p, err := New(Config{Name: name, DB: db, Plugin: plugin, Source: src, Sink: sink, Follow: true, KeepVersions: keep, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { _, err := p.Run(context.Background()); runErr <- err }()
	<-p.Ready()
	t.Cleanup(func() {
		p.Stop()
		if err := <-runErr; err != nil {
			t.Error(err)
		}
	})
	return p
}

func hasBlob(t *testing.T, db *storage.DB, hash string) bool {
	t.Helper()
	_, found, err := db.GetBlob(hash)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestKeepVersions: 500 swaps to distinct modules with KeepVersions 10
// leave 10 version records and only their modules, except a module another
// pipeline still runs; rollback still works.
func TestKeepVersions(t *testing.T) {
	const swaps, keep = 500, 10
	db, _, _ := logToLog(t)
	first := testPluginIn(t, "wat", "uppercase")
	mods := variants(t, first.Engine(), swaps)
	shared := mods[3]
	startFollowing(t, db, "other", "out2", shared, 0) // also runs module 3
	p := startFollowing(t, db, "keep", "out", first, keep)
	for i, m := range mods {
		if _, err := p.Swap(context.Background(), m, nil); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
	}
	versions, err := pluginVersions(db, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != keep {
		t.Fatalf("%d versions stored after %d swaps, want %d", len(versions), swaps, keep)
	}
	for i, v := range versions {
		if want := mods[swaps-keep+i].Hash(); v.Hash != want || !hasBlob(t, db, v.Hash) {
			t.Fatalf("kept version %d: %s (module stored: %v), want %s", i, v.Hash, hasBlob(t, db, v.Hash), want)
		}
	}
	if hasBlob(t, db, first.Hash()) || hasBlob(t, db, mods[0].Hash()) || hasBlob(t, db, mods[swaps-keep-1].Hash()) {
		t.Fatal("a pruned version's module is still stored")
	}
	if !hasBlob(t, db, shared.Hash()) {
		t.Fatal("the module of another pipeline's version was deleted")
	}
	res, err := p.Rollback(context.Background())
	if err != nil || res.Hash != mods[swaps-2].Hash() {
		t.Fatalf("rollback: %+v %v, want %s", res, err, mods[swaps-2].Hash())
	}
}

// TestKeepVersionsKeepsRollbackTarget: however often the same module is
// swapped in again, the version before it survives pruning.
func TestKeepVersionsKeepsRollbackTarget(t *testing.T) {
	db, _, _ := logToLog(t)
	first := testPluginIn(t, "wat", "uppercase")
	mods := variants(t, first.Engine(), 2)
	p := startFollowing(t, db, "rb", "out", first, 3)
	if _, err := p.Swap(context.Background(), mods[0], nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := p.Swap(context.Background(), mods[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	versions, _ := pluginVersions(db, "rb")
	if len(versions) != 3 || versions[0].Hash != mods[0].Hash() {
		t.Fatalf("versions %+v: want 3, the first the rollback target %s", versions, mods[0].Hash())
	}
	if res, err := p.Rollback(context.Background()); err != nil || res.Hash != mods[0].Hash() {
		t.Fatalf("rollback: %+v %v, want %s", res, err, mods[0].Hash())
	}
	if _, err := New(Config{Name: "bad", DB: db, Plugin: first, Source: p.cfg.Source, Sink: p.cfg.Sink, KeepVersions: 1}); err == nil {
		t.Fatal("KeepVersions 1 accepted")
	}
}
