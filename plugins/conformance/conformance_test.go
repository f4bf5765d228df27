// Package conformance runs every example operator of every guest language
// over the same fixtures through the real host, and requires byte-identical
// outputs and identical final state. The Go examples are the reference.
package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

// operators lists each example with its configuration and the languages
// that implement it.
var operators = []struct {
	name  string
	cfg   []abi.Header
	langs []string
}{
	{"uppercase", nil, testutil.Langs},
	{"split", nil, without("wat")},
	{"filter", kv("field", "user", "equals", "u1"), without("wat")},
	{"filter", kv("field", "n", "equals", "3"), without("wat")},
	{"count", nil, without("wat")},
	{"count", kv("key_field", "user"), without("wat")},
}

func without(lang string) []string {
	var out []string
	for _, l := range testutil.Langs {
		if l != lang {
			out = append(out, l)
		}
	}
	return out
}

func kv(pairs ...string) []abi.Header {
	var out []abi.Header
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, abi.Header{Key: []byte(pairs[i]), Value: []byte(pairs[i+1])})
	}
	return out
}

// result is everything an operator produced over all fixtures: a canonical
// transcript of every entry and the final state.
type result struct {
	transcript [][]string // per batch, per entry
	state      map[string]string
}

func render(e abi.Entry) string {
	return fmt.Sprintf("kind=%d in=%d code=%d ts=%d key=%q value=%q headers=%x", e.Kind, e.InputIndex, e.Code, e.Timestamp, e.Key, e.Value, e.Headers)
}

// engine is the reference engine, wazero; engines adds the others of this
// build (wasmtime with -tags wasmtime, make test-wasmtime). Every language
// on every engine must match the Go operator on wazero.
func engine(t testing.TB) *host.Engine { return newEngine(t, host.EngineWazero) }

func engines(t testing.TB) map[string]*host.Engine {
	out := map[string]*host.Engine{}
	for _, name := range host.Engines() {
		out[name] = newEngine(t, name)
	}
	return out
}

func newEngine(t testing.TB, name string) *host.Engine {
	ctx := context.Background()
	e, err := host.NewEngine(ctx, host.Config{Engine: name, CacheDir: os.Getenv("HELIOS_TEST_CACHE")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	return e
}

func compile(t testing.TB, e *host.Engine, lang, name string) *host.Plugin {
	t.Helper()
	wasm, err := os.ReadFile(testutil.Plugin(t, lang, name))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Compile(context.Background(), lang+"/"+name+".wasm", wasm)
	if err != nil {
		t.Fatalf("%s/%s: %v", lang, name, err)
	}
	return p
}

func run(t *testing.T, e *host.Engine, lang, name string, cfg []abi.Header) result {
	t.Helper()
	ctx := context.Background()
	p := compile(t, e, lang, name)
	inst, err := p.NewInstance(ctx, host.InstanceConfig{Config: cfg, Partition: 3})
	if err != nil {
		t.Fatalf("%s/%s: %v", lang, name, err)
	}
	defer inst.Close(ctx)
	st := testutil.MapState{}
	var res result
	for _, b := range fixtures() {
		ents, err := inst.Process(ctx, b, st)
		if err != nil {
			t.Fatalf("%s/%s: %v", lang, name, err)
		}
		var lines []string
		for _, en := range ents {
			lines = append(lines, render(en))
		}
		res.transcript = append(res.transcript, lines)
	}
	res.state = map[string]string{}
	for k, v := range st {
		res.state[k] = string(v)
	}
	return res
}

// TestConformance: every language's examples match the Go reference byte
// for byte, over every fixture batch, in outputs and in final state.
func TestConformance(t *testing.T) {
	e, all := engine(t), engines(t)
	for _, op := range operators {
		t.Run(fmt.Sprintf("%s%s", op.name, cfgSuffix(op.cfg)), func(t *testing.T) {
			ref := run(t, e, "go", op.name, op.cfg)
			if n := countEntries(ref); n == 0 {
				t.Fatal("the reference produced no output at all")
			}
			for _, name := range host.Engines() {
				langs := op.langs
				if name == host.EngineWazero {
					langs = langs[1:] // the reference itself
				}
				for _, lang := range langs {
					t.Run(name+"/"+lang, func(t *testing.T) {
						got := run(t, all[name], lang, op.name, op.cfg)
						compare(t, ref, got, fixtureNames)
					})
				}
			}
		})
	}
}

func cfgSuffix(cfg []abi.Header) string {
	var s []string
	for _, h := range cfg {
		s = append(s, string(h.Key)+"="+string(h.Value))
	}
	if len(s) == 0 {
		return ""
	}
	return "(" + strings.Join(s, ",") + ")"
}

func countEntries(r result) int {
	n := 0
	for _, b := range r.transcript {
		n += len(b)
	}
	return n
}

func compare(t *testing.T, want, got result, batchNames []string) {
	t.Helper()
	for i := range want.transcript {
		w, g := want.transcript[i], got.transcript[i]
		if digest(w) == digest(g) {
			continue
		}
		for j := 0; j < max(len(w), len(g)); j++ {
			wl, gl := "(none)", "(none)"
			if j < len(w) {
				wl = w[j]
			}
			if j < len(g) {
				gl = g[j]
			}
			if wl != gl {
				t.Fatalf("batch %d (%s), entry %d of %d/%d differs:\n go: %.300s\ngot: %.300s", i, batchNames[i], j, len(w), len(g), wl, gl)
			}
		}
	}
	if fmt.Sprint(sorted(want.state)) != fmt.Sprint(sorted(got.state)) {
		t.Fatalf("final state differs:\n go: %q\ngot: %q", sorted(want.state), sorted(got.state))
	}
}

func digest(lines []string) [32]byte { return sha256.Sum256([]byte(strings.Join(lines, "\n"))) }

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%q=%x", k, v))
	}
	sort.Strings(out)
	return out
}

var fixtureNames = []string{"mixed", "empty batch", "empty values", "binary bytes", "headers", "json edge cases", "large records", "10,000 records", "mutated json"}

// fixtures returns the batches every operator runs over, in order (state
// carries over from batch to batch).
func fixtures() [][]abi.Record {
	rec := func(key, value string, ts int64) abi.Record {
		return abi.Record{Key: []byte(key), Value: []byte(value), Timestamp: ts, Offset: ts * 10, Partition: 3}
	}
	mixed := []abi.Record{
		rec("k0", `{"user":"u1","n":3}`, 1), rec("k1", "hello wide world", 2), rec("k0", `{"user":"u2","n":"3"}`, 3),
		rec("k1", `{"user":"u1"}`, 4), rec("k2", "not json", 5), rec("", `[1,2]`, 6), rec("k0", `{"user":"u\u0031","n": 3 }`, 7),
	}
	empty := []abi.Record{rec("", "", 0), rec("k", "", 1), rec("", "v", 2)}
	binary := make([]abi.Record, 4)
	for i := range binary {
		b := make([]byte, 256)
		for j := range b {
			b[j] = byte(j*(i+1) + i)
		}
		binary[i] = abi.Record{Key: b[:i*7], Value: b, Timestamp: int64(100 + i)}
	}
	binary = append(binary, rec("\xff\xfe", "\xc3\x28 caf\xc3\xa9 \x00\x01 \t\v\f\r end", 104))
	headers := []abi.Record{
		{Key: []byte("h"), Value: []byte(`{"user":"u1"}`), Timestamp: 200, Headers: []abi.Header{{Key: []byte("trace"), Value: []byte("abc")}, {Key: []byte(""), Value: nil}}},
		{Key: []byte("h"), Value: []byte("a b"), Timestamp: 201, Headers: []abi.Header{{Key: []byte("x"), Value: bytes.Repeat([]byte{0}, 100)}}},
	}
	var edge []abi.Record
	for i, v := range []string{
		`{"user":"u1","user":"u2"}`, `{"user":"u2","user":"u1"}`, `{"\u0075ser":"u1"}`, `{"user":"\u0075\u0031"}`,
		`{"user":"u1","x":[1,{"y":[true,false,null,-0.5e+3]}]}`, `{"user":"u1",}`, `{"user":01}`, `null`, `"u1"`, ` {"user" : "u1" } `,
		`{"user":"u1"} {}`, `{"user":"\ud83d\ude00"}`, `{"user":"\udc00"}`, `{"n":3.0}`, `{"n":[ 3 ]}`, `{"n":"3"}`, `{"n": 3 }`,
		`{"user":"a\"b\\c\n\u0001"}`, `{"user":1}`, `{"n":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`,
		`{"n":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, "{\"user\":\"u1\x01\"}", `{"user":"u1"`, `{}`,
	} {
		edge = append(edge, rec(fmt.Sprintf("e%d", i%3), v, int64(300+i)))
	}
	big := bytes.Repeat([]byte("lorem ipsum dolor sit amet "), 40000) // ~1 MiB, 200k words
	large := []abi.Record{
		{Key: bytes.Repeat([]byte("K"), 70000), Value: []byte("a b"), Timestamp: 400},
		{Key: []byte("B"), Value: big, Timestamp: 402},
		rec("L", `{"user":"u1","pad":"`+strings.Repeat("x", 500000)+`"}`, 401),
	}
	tenK := make([]abi.Record, 10000)
	for i := range tenK {
		v := fmt.Sprintf(`{"user":"u%d","n":%d,"msg":"the quick brown fox"}`, i%7, i%5)
		if i%1000 == 999 {
			v = "broken " + v
		}
		tenK[i] = abi.Record{Key: []byte(fmt.Sprintf("k%d", i%13)), Value: []byte(v), Timestamp: int64(1000 + i), Offset: int64(i)}
		binary := [8]byte{}
		binary64 := uint64(i) * 0x9e3779b97f4a7c15
		binaryPut(binary[:], binary64)
		copy(tenK[i].ID[:], binary[:])
	}
	return [][]abi.Record{mixed, nil, empty, binary, headers, edge, large, tenK, mutatedJSON(3000)}
}

// mutatedJSON returns n records whose values are JSON documents with a few
// random edits (a fixed seed): every language's JSON rules must agree on
// valid and broken documents alike.
func mutatedJSON(n int) []abi.Record {
	seeds := []string{
		`{"user":"u1","n":3}`, `{"n":-0.5e+3,"user":"\u0075\u0031"}`, `{"user":["u1",{"n":[1,2,{}]}],"n":"3"}`,
		`{"a":{"b":{"c":[true,false,null]}},"user":"u1","user":"u2"}`, `{"user":"a\"b\\c\/\b\f\n\r\t","n":3.0}`,
		`{"\ud83d\ude00":1,"user":"\ud800x","n":1E-2}`, ` { "n" : 3 , "user" : "u1" } `,
	}
	alphabet := []byte(`{}[]":,\ \t\n0123456789-+.eEtrufalsnu1"\u` + "\x00\x1f\x7f\xc3\xa9\xff")
	rng := rand.New(rand.NewPCG(42, 7))
	recs := make([]abi.Record, n)
	for i := range recs {
		v := []byte(seeds[rng.IntN(len(seeds))])
		for edits := rng.IntN(4); edits > 0; edits-- {
			at := rng.IntN(len(v) + 1)
			c := alphabet[rng.IntN(len(alphabet))]
			switch rng.IntN(3) {
			case 0: // insert
				v = append(v[:at], append([]byte{c}, v[at:]...)...)
			case 1: // delete
				if at < len(v) {
					v = append(v[:at], v[at+1:]...)
				}
			default: // replace
				if at < len(v) {
					v[at] = c
				}
			}
		}
		recs[i] = abi.Record{Key: []byte(fmt.Sprintf("m%d", i%5)), Value: v, Timestamp: int64(5000 + i)}
	}
	return recs
}

func binaryPut(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

// TestConformanceInitRefused: helios_init refuses a bad configuration with
// the operator's own message, in every language.
func TestConformanceInitRefused(t *testing.T) {
	ctx := context.Background()
	for name, e := range engines(t) {
		for _, cfg := range [][]abi.Header{nil, kv("field", "", "equals", "x"), kv("field", "user")} {
			for _, lang := range without("wat") {
				t.Run(name+"/"+lang+cfgSuffix(cfg), func(t *testing.T) {
					p := compile(t, e, lang, "filter")
					inst, err := p.NewInstance(ctx, host.InstanceConfig{Config: cfg})
					if err == nil {
						inst.Close(ctx)
						t.Fatal("filter accepted an incomplete configuration")
					}
					if !errors.Is(err, host.ErrInit) || !strings.HasSuffix(err.Error(), ": filter: needs --config field=NAME --config equals=VALUE") {
						t.Fatalf("got %v", err)
					}
				})
			}
		}
	}
}

// TestConformanceFlatMemory: an SDK reuses its buffers and frees what it
// allocates per record, so memory stops growing once warmed up.
func TestConformanceFlatMemory(t *testing.T) {
	ctx := context.Background()
	for name, e := range engines(t) {
		t.Run(name, func(t *testing.T) { flatMemory(t, ctx, e) })
	}
}

func flatMemory(t *testing.T, ctx context.Context, e *host.Engine) {
	batch := func(n int) []abi.Record {
		recs := make([]abi.Record, 1000)
		for i := range recs {
			recs[i] = abi.Record{Key: []byte(fmt.Sprintf("k%d", (n*1000+i)%50)), Value: []byte(fmt.Sprintf(`{"user":"u%d","pad":"%s"}`, i%9, strings.Repeat("x", i%200)))}
		}
		return recs
	}
	for _, lang := range testutil.Langs {
		for _, name := range []string{"uppercase", "count"} {
			if lang == "wat" && name != "uppercase" {
				continue
			}
			t.Run(lang+"/"+name, func(t *testing.T) {
				inst, err := compile(t, e, lang, name).NewInstance(ctx, host.InstanceConfig{})
				if err != nil {
					t.Fatal(err)
				}
				defer inst.Close(ctx)
				st := testutil.MapState{}
				var warm uint32
				for n := range 300 {
					if _, err := inst.Process(ctx, batch(n), st); err != nil {
						t.Fatal(err)
					}
					if n == 49 {
						warm = inst.MemoryBytes()
					}
				}
				if end := inst.MemoryBytes(); end > warm {
					t.Fatalf("memory grew from %d to %d bytes between batch 50 and 300", warm, end)
				}
			})
		}
	}
}

// TestAssemblyScriptCountAllocatesNothingPerRecord: the AssemblyScript SDK
// and count example reuse their record, views and buffers, so what a big
// batch adds to memory is what its input, output and state writes need
// (~53, ~60 and ~27 bytes a record here, in buffers that double, the old
// copies kept until the batch ends: ~385 bytes a record measured), not
// also the objects each record allocated in the garbage-collected heap
// before, collected only between batches (~945 bytes a record).
func TestAssemblyScriptCountAllocatesNothingPerRecord(t *testing.T) {
	ctx := context.Background()
	const big = 50_000
	batch := func(n int) []abi.Record {
		recs := make([]abi.Record, n)
		for i := range recs {
			recs[i] = abi.Record{Key: []byte(fmt.Sprintf("k%d", i%50)), Value: []byte("{}")}
		}
		return recs
	}
	for name, e := range engines(t) {
		t.Run(name, func(t *testing.T) {
			inst, err := compile(t, e, "assemblyscript", "count").NewInstance(ctx, host.InstanceConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			st := testutil.MapState{}
			if _, err := inst.Process(ctx, batch(1000), st); err != nil {
				t.Fatal(err)
			}
			small := inst.MemoryBytes()
			if _, err := inst.Process(ctx, batch(big), st); err != nil {
				t.Fatal(err)
			}
			perRecord := float64(inst.MemoryBytes()-small) / big
			t.Logf("memory %d -> %d bytes: %.0f bytes/record", small, inst.MemoryBytes(), perRecord)
			if perRecord > 600 {
				t.Fatalf("a batch of %d records grew memory by %.0f bytes a record (limit 600): something allocates per record", big, perRecord)
			}
		})
	}
}

// TestMutatedJSONMixesValidAndBroken keeps the mutated fixture useful: it
// must hold valid and broken documents alike.
func TestMutatedJSONMixesValidAndBroken(t *testing.T) {
	valid := 0
	for _, r := range mutatedJSON(3000) {
		if _, _, err := helios.JSONField(r.Value, "user"); err == nil {
			valid++
		}
	}
	if valid < 600 || valid > 2400 {
		t.Fatalf("%d of 3000 mutated documents are valid JSON objects: the fixture no longer mixes both", valid)
	}
}
