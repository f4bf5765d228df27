package conformance

import (
	"context"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// FuzzJSONAcrossLanguages feeds arbitrary values to every language's filter
// and count (each SDK's own JSON scanner, and with count's key its string
// decoder) and requires the Go reference's output from all of them.
//
//	go test -run '^$' -fuzz FuzzJSONAcrossLanguages ./plugins/conformance
func FuzzJSONAcrossLanguages(f *testing.F) {
	for _, r := range mutatedJSON(40) {
		f.Add(r.Value)
	}
	for _, s := range []string{`{"user":"u1"}`, `{"user":"\ud83d\ude00"}`, `{"user":"\u0000"}`, `{"n":3}`, `[]`, ``, "{\"user\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	e := engine(f)
	type op struct {
		lang string
		inst *host.Instance
	}
	var ops [2][]op // filter, count
	for _, lang := range without("wat") {
		for i, o := range []struct {
			name string
			cfg  []abi.Header
		}{{"filter", kv("field", "user", "equals", "u1")}, {"count", kv("key_field", "user")}} {
			inst, err := compile(f, e, lang, o.name).NewInstance(ctx, host.InstanceConfig{Config: o.cfg})
			if err != nil {
				f.Fatal(err)
			}
			ops[i] = append(ops[i], op{lang, inst})
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		recs := []abi.Record{{Key: []byte("k"), Value: value}}
		for _, same := range ops {
			var ref string
			for i, o := range same {
				ents, err := o.inst.Process(ctx, recs, testutil.MapState{})
				if err != nil {
					t.Fatalf("%s: %v", o.lang, err)
				}
				got := ""
				for _, en := range ents {
					got += render(en) + "\n"
				}
				if i == 0 {
					ref = got
				} else if got != ref {
					t.Fatalf("value %q:\n go: %s%s: %s", value, ref, o.lang, got)
				}
			}
		}
	})
}
