package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

func goPlugin(t testing.TB, e *Engine, name string) *Plugin {
	t.Helper()
	path := testutil.GoPlugin(t, name)
	return mustCompile(t, e, name+".wasm", readFile(t, path))
}

func values(recs ...string) []abi.Record {
	out := make([]abi.Record, len(recs))
	for i, v := range recs {
		out[i] = abi.Record{Key: []byte(fmt.Sprintf("k%d", i%2)), Value: []byte(v)}
	}
	return out
}

func TestGoGuestExamples(t *testing.T) { forEachEngine(t, testGoGuestExamples) }

func testGoGuestExamples(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	tests := []struct {
		plugin string
		config []abi.Header
		in     []abi.Record
		want   []string // "index:value"
	}{
		{"uppercase", nil, values("hello", "", "MiXeD 123 é"), []string{"0:HELLO", "1:", "2:MIXED 123 é"}},
		{"lowercase", nil, values("HeLLo", "ÉA"), []string{"0:hello", "1:Éa"}},
		{"split", nil, values("a b  c", "", "  one\ttwo\n"), []string{"0:a", "0:b", "0:c", "2:one", "2:two"}},
		{"filter", []abi.Header{{Key: []byte("field"), Value: []byte("user")}, {Key: []byte("equals"), Value: []byte("u1")}},
			values(`{"user":"u1","n":1}`, `{"user":"u2"}`, `{"n":3}`, `{"user":"u1"}`), []string{`0:{"user":"u1","n":1}`, `3:{"user":"u1"}`}},
		{"filter", []abi.Header{{Key: []byte("field"), Value: []byte("n")}, {Key: []byte("equals"), Value: []byte("3")}},
			values(`{"n": 3}`, `{"n":"3"}`, `{"n":4}`), []string{`0:{"n": 3}`, `1:{"n":"3"}`}},
		{"count", nil, values("a", "b", "c", "d", "e"), []string{`0:{"key":"k0","count":1}`, `1:{"key":"k1","count":1}`,
			`2:{"key":"k0","count":2}`, `3:{"key":"k1","count":2}`, `4:{"key":"k0","count":3}`}},
	}
	for _, tt := range tests {
		t.Run(tt.plugin, func(t *testing.T) {
			inst := mustInstance(t, goPlugin(t, e, tt.plugin), InstanceConfig{Config: tt.config})
			ents, err := inst.Process(context.Background(), tt.in, testutil.MapState{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, en := range ents {
				if en.Kind != abi.EntryKindRecord {
					t.Fatalf("entry %+v failed: %s", en, en.Value)
				}
				got = append(got, fmt.Sprintf("%d:%s", en.InputIndex, en.Value))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestGoGuestFailedRecord(t *testing.T) { forEachEngine(t, testGoGuestFailedRecord) }

func testGoGuestFailedRecord(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	inst := mustInstance(t, goPlugin(t, e, "filter"), InstanceConfig{Config: []abi.Header{{Key: []byte("field"), Value: []byte("u")}, {Key: []byte("equals"), Value: []byte("x")}}})
	ents, err := inst.Process(context.Background(), values(`{"u":"x"}`, `not json`, `{"u":"x"}`), testutil.MapState{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 3 || ents[1].Kind != abi.EntryKindFailed || ents[1].Code != abi.FailInvalidInput || !strings.Contains(string(ents[1].Value), "not a JSON object") {
		t.Fatalf("want the middle record failed with FailInvalidInput, got %+v", ents)
	}
}

func TestGoGuestInitRefused(t *testing.T) { forEachEngine(t, testGoGuestInitRefused) }

func testGoGuestInitRefused(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	_, err := goPlugin(t, e, "filter").NewInstance(context.Background(), InstanceConfig{})
	if !errors.Is(err, ErrInit) || !strings.Contains(err.Error(), "filter: needs --config field=NAME --config equals=VALUE") {
		t.Fatalf("got %v, want ErrInit with the operator's message", err)
	}
}

func TestGoGuestPanicIsTrapWithMessage(t *testing.T) {
	forEachEngine(t, testGoGuestPanicIsTrapWithMessage)
}

func testGoGuestPanicIsTrapWithMessage(t *testing.T, engine string) {
	e := newTestEngine(t, Config{Engine: engine})
	inst := mustInstance(t, goPlugin(t, e, "internal/testutil/guests/hostile"), InstanceConfig{})
	_, err := inst.Process(context.Background(), values("ok", "boom", "ok"), nil)
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "panic: boom: operator bug") {
		t.Fatalf("got %v, want a trap quoting the panic", err)
	}
	ents, err := inst.Process(context.Background(), values("ok"), nil)
	if err != nil || len(ents) != 1 {
		t.Fatalf("instance unusable after a panic: %v", err)
	}
}

// TestGoGuestSoak pushes 5 million records through a Go guest and checks
// that its memory stays flat and no call stalls (limits.md, gotcha 2: without
// the SDK's yield the heap grows to hundreds of MB and calls stall for
// seconds).
func TestGoGuestSoak(t *testing.T) { forEachEngine(t, testGoGuestSoak) }

func testGoGuestSoak(t *testing.T, engine string) {
	const total, batch = 5_000_000, 1000
	e := newTestEngine(t, Config{Engine: engine})
	inst := mustInstance(t, goPlugin(t, e, "uppercase"), InstanceConfig{})
	recs := make([]abi.Record, batch)
	for i := range recs {
		recs[i].Value = []byte(fmt.Sprintf(`{"user":"u%d","msg":"the quick brown fox jumps over the lazy dog %08d"}`, i%100, i))
	}
	var memAfterWarmup uint32
	var worst time.Duration
	for n := 0; n < total; n += batch {
		start := time.Now()
		ents, err := inst.Process(context.Background(), recs, nil)
		if err != nil {
			t.Fatalf("after %d records: %v", n, err)
		}
		if d := time.Since(start); d > worst {
			worst = d
		}
		if len(ents) != batch {
			t.Fatalf("after %d records: %d outputs", n, len(ents))
		}
		if n == 500_000 {
			memAfterWarmup = inst.mod.memory().Size()
		}
	}
	memEnd := inst.mod.memory().Size()
	t.Logf("guest memory after 500k records: %d KiB, after %d: %d KiB; worst batch %v", memAfterWarmup>>10, total, memEnd>>10, worst)
	if memEnd > memAfterWarmup+4<<20 {
		t.Errorf("guest memory grew from %d to %d KiB", memAfterWarmup>>10, memEnd>>10)
	}
	if memEnd > 32<<20 {
		t.Errorf("guest memory %d MiB: the guest GC is not keeping up", memEnd>>20)
	}
	if worst > time.Second {
		t.Errorf("worst batch took %v: the guest GC stalled", worst)
	}
}
