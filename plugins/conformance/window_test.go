package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// windowLangs lists, per window example, the languages that implement it
// besides Go, the reference.
var windowLangs = map[string][]string{
	"window_count": {"rust", "c", "assemblyscript"},
	"window_sum":   {"rust", "c"},
}

// windowInput is JSON Lines whose event times run out of order (some
// beyond the allowed lateness: they go to the late output, never to the
// operator), with keys that need escaping, amounts whose sums print as
// integers, decimals, 0.30000000000000004, very large and very small
// numbers, and records the operators fail (no amount, a string amount, a
// value that is not an object, an amount out of float64's range).
func windowInput() []byte {
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	keys := []string{`u0`, `q"uote`, `back\slash`, "new\nline", "ctl\u0001", `é`, ``}
	amounts := []string{`1`, `0.1`, `0.2`, `-2.5`, `1e21`, `1E-7`, `-0`, `2.5e3`, `123456789.125`, `0.30000000000000004`, `-1`, `5e-324`, `17`}
	var b bytes.Buffer
	for i := range 400 {
		// 2 s a record, up to 40 s out of order (within the allowed
		// lateness of 2 min, whatever the committed watermark lags); every
		// 50th record 10 min behind (beyond it, whatever the lag).
		at := base.Add(time.Duration(i*2+(i*37)%80-40) * time.Second)
		if i%50 == 49 {
			at = at.Add(-10 * time.Minute)
		}
		at = at.Add(time.Duration(i%3) * 250 * time.Millisecond)
		k, _ := json.Marshal(keys[i%len(keys)])
		key := string(k)
		switch {
		case i%97 == 13:
			fmt.Fprintf(&b, `{"user":%s,"ts":%q}`+"\n", key, at.Format(time.RFC3339Nano))
		case i%89 == 7:
			fmt.Fprintf(&b, `{"user":%s,"ts":%q,"amount":"12"}`+"\n", key, at.Format(time.RFC3339Nano))
		case i%83 == 5:
			fmt.Fprintf(&b, `{"user":%s,"ts":%q,"amount":1e400}`+"\n", key, at.Format(time.RFC3339Nano))
		default:
			fmt.Fprintf(&b, `{"user":%s,"ts":%q,"amount":%s}`+"\n", key, at.Format(time.RFC3339Nano), amounts[(i*7)%len(amounts)])
		}
	}
	// One record per key in the last minutes: sums that are a single
	// amount, among them exact ties between two shortest decimals (Go
	// takes the even one) and powers of two (asymmetric rounding
	// intervals).
	for i, a := range edgeAmounts {
		at := base.Add(800*time.Second + time.Duration(i)*time.Second)
		fmt.Fprintf(&b, `{"user":"edge%d","ts":%q,"amount":%s}`+"\n", i, at.Format(time.RFC3339Nano), a)
	}
	return b.Bytes()
}

var edgeAmounts = []string{`0.0000000298023223876953125`, `1125899906842624.25`, `2161636471855163.25`, `7.120236347223045e-307`,
	`8.98846567431158e307`, `-1e-320`, `9007199254740993`, `1e23`, `123e-2`, `-0.0`}

// windowRun is what a windowed pipeline produced: its output file and its
// dead letters (by offset; a late record's without the host's message,
// which names the committed watermark of the moment).
type windowRun struct {
	out  []byte
	dead []string
}

// runWindowed runs lang's example op through a real windowed pipeline
// (file input, event time from "ts", file output) to the end of the input.
func runWindowed(t *testing.T, lang, op, window, emit string, cfg []abi.Header, input string) windowRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	db, err := storage.Open(filepath.Join(dir, "db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ep := runtime.Endpoints{DB: db}
	src, err := runtime.ParseSource(ctx, "file:"+input, ep)
	if err != nil {
		t.Fatal(err)
	}
	outPath := filepath.Join(dir, "out.jsonl")
	sink, err := runtime.ParseSink(ctx, "file:"+outPath, ep, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := runtime.New(runtime.Config{Name: "w", DB: db, Plugin: compile(t, engine(t), lang, op), PluginConfig: cfg,
		Source: src, Sink: sink, BatchSize: 7, FinalLine: true,
		EventTime: &runtime.EventTimeConfig{Extract: "json:ts", Window: window, Emit: emit, AllowedLateness: 2 * time.Minute},
		Flow:      runtime.FlowConfig{MaxQueueDepth: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(ctx); err != nil {
		t.Fatalf("%s/%s: %v", lang, op, err)
	}
	var res windowRun
	if res.out, err = os.ReadFile(outPath); err != nil {
		t.Fatal(err)
	}
	q, err := runtime.NewDeadLetterQueue(db, "w")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.List(func(e runtime.DLQEntry) error {
		if e.Code == abi.FailLate {
			e.Error = "" // the host's, naming the watermark of the moment
		}
		res.dead = append(res.dead, fmt.Sprintf("offset=%08d code=%d error=%q", e.Offset, e.Code, e.Error))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(res.dead)
	return res
}

// TestConformanceWindowSumFormat: window_sum prints every sum as the Go
// example does (strconv.FormatFloat(S, 'f', -1, 64)) in every language:
// each of many amounts (random bit patterns, short decimals, every power
// of two and its neighbours) is the only record of its key, emitted under
// updates, through a window call of the host.
func TestConformanceWindowSumFormat(t *testing.T) {
	ctx := context.Background()
	var recs []abi.Record
	add := func(x float64) {
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return
		}
		v := `{"amount":` + strconv.FormatFloat(x, 'g', -1, 64) + `}`
		recs = append(recs, abi.Record{Key: []byte(strconv.Itoa(len(recs))), Value: []byte(v)})
	}
	for e := -1074; e <= 1023; e++ {
		x := math.Ldexp(1, e)
		add(x)
		add(-math.Nextafter(x, 0))
		add(math.Nextafter(x, math.Inf(1)))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		add(math.Float64frombits(r.Uint64()))
		add(float64(r.IntN(2_000_000)-1_000_000) / 1000)
	}
	w := host.Window{Start: 0, End: 60_000, Updates: true}
	var ref []abi.Entry
	for _, lang := range append([]string{"go"}, windowLangs["window_sum"]...) {
		inst, err := compile(t, engine(t), lang, "window_sum").NewInstance(ctx, host.InstanceConfig{Config: kv("field", "amount")})
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		var got []abi.Entry
		for i := 0; i < len(recs); i += 1000 {
			ents, err := inst.ProcessWindow(ctx, recs[i:min(i+1000, len(recs))], testutil.MapState{}, w)
			if err != nil {
				t.Fatalf("%s: %v", lang, err)
			}
			for _, en := range ents { // entries alias the instance's buffers until its next call
				en.Value = bytes.Clone(en.Value)
				got = append(got, en)
			}
		}
		inst.Close(ctx)
		if len(got) != len(recs) {
			t.Fatalf("%s: %d outputs for %d records", lang, len(got), len(recs))
		}
		if ref == nil {
			ref = got
			continue
		}
		bad := 0
		for i := range got {
			if !bytes.Equal(got[i].Value, ref[i].Value) || got[i].Kind != ref[i].Kind {
				if bad++; bad <= 5 {
					t.Errorf("%s: %s: got %s, want %s", lang, recs[i].Value, sumOf(got[i].Value), sumOf(ref[i].Value))
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d sums printed differently from go", lang, bad, len(recs))
		}
	}
}

func sumOf(line []byte) []byte {
	if i := bytes.Index(line, []byte(`"sum":`)); i >= 0 {
		return line[i:]
	}
	return line
}

// TestConformanceWindows: window_count and window_sum in every language
// with window examples produce the Go examples' output file byte for byte
// (and the same dead letters) through the same windowed pipeline: tumbling
// and sliding windows (whole and fractional seconds), final and updates,
// out-of-order event times with late records.
func TestConformanceWindows(t *testing.T) {
	input := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(input, windowInput(), 0o644); err != nil {
		t.Fatal(err)
	}
	user := kv("key_field", "user")
	sum := kv("key_field", "user", "field", "amount")
	for _, tc := range []struct {
		op, window, emit string
		cfg              []abi.Header
	}{
		{"window_count", "tumbling:1m", "final", user},
		{"window_count", "sliding:2m/30s", "updates", user},
		{"window_count", "tumbling:1500ms", "final", nil}, // record keys (none): one empty key
		{"window_sum", "tumbling:1m", "final", sum},
		{"window_sum", "tumbling:1m", "updates", sum},
		{"window_sum", "sliding:90s/1500ms", "final", sum},
		// Sessions of the file's one (empty) record key, 1.5 s apart at
		// most: they open ahead and behind, merge (the host replays the
		// merged sessions' records) and span millisecond bounds.
		{"window_count", "session:1500ms", "final", user},
		{"window_sum", "session:1500ms", "updates", sum},
	} {
		t.Run(tc.op+"/"+tc.window+"/"+tc.emit+cfgSuffix(tc.cfg), func(t *testing.T) {
			ref := runWindowed(t, "go", tc.op, tc.window, tc.emit, tc.cfg, input)
			lines := bytes.Count(ref.out, []byte("\n"))
			if lines < 20 || len(ref.dead) == 0 {
				t.Fatalf("go reference: %d output lines, %d dead letters: the fixture does not exercise windows", lines, len(ref.dead))
			}
			for _, lang := range windowLangs[tc.op] {
				got := runWindowed(t, lang, tc.op, tc.window, tc.emit, tc.cfg, input)
				want, have := string(ref.out), string(got.out)
				if tc.emit == "final" {
					// Where a final result lands among the others depends on
					// when its window closed, which follows the committed
					// watermark, so on timing: compare the lines as a set.
					want, have = sortedLines(want), sortedLines(have)
				}
				if have != want {
					t.Errorf("%s: output differs from go's:\n%s", lang, firstDiff(want, have))
				}
				if strings.Join(got.dead, "\n") != strings.Join(ref.dead, "\n") {
					t.Errorf("%s: dead letters differ from go's:\n%s", lang, firstDiff(strings.Join(ref.dead, "\n")+"\n", strings.Join(got.dead, "\n")+"\n"))
				}
			}
		})
	}
}

func sortedLines(s string) string {
	l := strings.SplitAfter(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "")
}

// firstDiff shows the first line where got differs from want.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %s\n  got  %s\n(%d lines wanted, %d got)", i+1, wl, gl, len(w), len(g))
		}
	}
	return "(equal)"
}

// TestConformanceWindowOutsideWindow: a window operator called without a
// window (a pipeline without --window) fails each record with the same
// code and message in every language, and keeps no state.
func TestConformanceWindowOutsideWindow(t *testing.T) {
	ctx := context.Background()
	recs := []abi.Record{{Key: []byte("k"), Value: []byte(`{"amount":1}`)}, {Key: []byte("j"), Value: []byte(`{"amount":2}`)}}
	for op, langs := range windowLangs {
		var ref []string
		for _, lang := range append([]string{"go"}, langs...) {
			cfg := kv("field", "amount")
			inst, err := compile(t, engine(t), lang, op).NewInstance(ctx, host.InstanceConfig{Config: cfg})
			if err != nil {
				t.Fatalf("%s/%s: %v", lang, op, err)
			}
			st := testutil.MapState{}
			ents, err := inst.Process(ctx, recs, st)
			inst.Close(ctx)
			if err != nil {
				t.Fatalf("%s/%s: %v", lang, op, err)
			}
			var got []string
			for _, e := range ents {
				got = append(got, render(e))
			}
			if len(ents) != len(recs) || ents[0].Kind != abi.EntryKindFailed || ents[0].Code != abi.FailGeneric || len(st) != 0 {
				t.Errorf("%s/%s: entries %q, state %v: want each record failed (code %d), no state", lang, op, got, st, abi.FailGeneric)
			}
			if ref == nil {
				ref = got
			} else if strings.Join(got, "\n") != strings.Join(ref, "\n") {
				t.Errorf("%s/%s: entries\n%s\nwant (go)\n%s", lang, op, strings.Join(got, "\n"), strings.Join(ref, "\n"))
			}
		}
	}
}
