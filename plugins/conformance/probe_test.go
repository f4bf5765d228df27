package conformance

import (
	"context"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// probeLangs are the languages with an SDK (Zig and WAT have none).
var probeLangs = []string{"go", "rust", "c", "assemblyscript"}

func probeBatches() [][]abi.Record {
	cmd := func(v string) abi.Record { return abi.Record{Key: []byte("k"), Value: []byte(v), Timestamp: 7} }
	withHeader := cmd("hdr trace")
	withHeader.Headers = []abi.Header{{Key: []byte("x"), Value: []byte("1")}, {Key: []byte("trace"), Value: []byte("abc")}}
	emptyHeader := cmd("hdr e")
	emptyHeader.Headers = []abi.Header{{Key: []byte("e"), Value: nil}}
	return [][]abi.Record{
		{cmd("put a 1"), cmd("get a"), cmd("put a 2"), cmd("get a"), cmd("del a"), cmd("get a"), cmd("put b x"), cmd("fail b y"),
			cmd("get b"), cmd("fail c z"), cmd("get c"), cmd("retry"), cmd("invalid"), withHeader, cmd("hdr missing"), emptyHeader,
			cmd("rec"), cmd("cfg mode"), cmd("cfg nope"), cmd("multi 3"), cmd("multi 0"), cmd("log hello"), cmd("zzz"), cmd("put e "), cmd("get e")},
		// A later batch sees the state the earlier one left: b=x, a deleted, c never written.
		{cmd("get b"), cmd("get a"), cmd("get c"), cmd("del b"), cmd("get b")},
	}
}

// TestConformanceSDKProbe: every SDK behaves like the Go SDK over its whole
// surface (plugins/conformance/probe/README.md).
func TestConformanceSDKProbe(t *testing.T) {
	ctx := context.Background()
	e, all := engine(t), engines(t)
	transcript := func(e *host.Engine, lang string) ([]string, map[string]string) {
		inst, err := compile(t, e, lang, "probe").NewInstance(ctx, host.InstanceConfig{Config: kv("mode", "fast")})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		st := testutil.MapState{}
		var lines []string
		for _, b := range probeBatches() {
			ents, err := inst.Process(ctx, b, st)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range ents {
				lines = append(lines, render(en))
			}
			lines = append(lines, "--- end of batch")
		}
		state := map[string]string{}
		for k, v := range st {
			state[k] = string(v)
		}
		return lines, state
	}
	ref, refState := transcript(e, "go")
	// The reference itself must be right, or agreeing with it proves nothing.
	joined := strings.Join(ref, "\n")
	for _, want := range []string{
		`kind=0 in=0 code=0 ts=7 key="a" value="1"`, `kind=0 in=5 code=0 ts=7 key="a" value="absent"`,
		`kind=1 in=7 code=1001 ts=0 key="" value="probe: failed on request"`, `kind=0 in=8 code=0 ts=7 key="b" value="x"`,
		`kind=0 in=10 code=0 ts=7 key="c" value="absent"`, `kind=1 in=11 code=2 ts=0 key="" value="probe: try again"`,
		`kind=1 in=12 code=3`, `kind=0 in=13 code=0 ts=7 key="trace" value="abc"`, `key="missing" value="no header"`,
		`kind=0 in=15 code=0 ts=7 key="e" value=""`, `kind=0 in=16 code=0 ts=42 key="r" value="v" headers=02000000010000006101000000310100000062`,
		`key="mode" value="fast"`, `key="nope" value="unset"`, `kind=0 in=19 code=0 ts=7 key="m" value="2"`,
		`key="log" value="hello"`, `key="k" value="unknown command"`, `kind=0 in=24 code=0 ts=7 key="e" value=""`,
	} {
		if !strings.Contains(joined, want) {
			t.Fatalf("the Go reference lacks %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, `value="dropped"`) || refState["c"] != "" || refState["b"] != "" || len(refState) != 1 {
		t.Fatalf("a failed record left output or state behind: state %q\n%s", refState, joined)
	}
	for _, name := range host.Engines() {
		langs := probeLangs
		if name == host.EngineWazero {
			langs = langs[1:] // the reference itself
		}
		for _, lang := range langs {
			t.Run(name+"/"+lang, func(t *testing.T) {
				got, gotState := transcript(all[name], lang)
				compare(t, result{transcript: [][]string{ref}, state: refState}, result{transcript: [][]string{got}, state: gotState}, []string{"probe batches"})
			})
		}
	}
}
