package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
)

// migrators lists each schema migrator example (helios_migrate) and the
// languages that implement it; Go is the reference.
var migrators = []struct {
	name  string
	langs []string
}{
	{"cents", []string{"go", "rust"}},
}

// migratorFixtures are batches of order records at version 2 as the
// registry hands them to a migrator, plus records it would never pass
// (not objects, fields missing, not numbers), so that failures must match
// too.
func migratorFixtures() [][]abi.Record {
	rec := func(values ...string) []abi.Record {
		out := make([]abi.Record, len(values))
		for i, v := range values {
			out[i] = abi.Record{Value: []byte(v), Offset: int64(i),
				Headers: []abi.Header{{Key: []byte("helios-schema"), Value: []byte("orders/2")}}}
		}
		return out
	}
	edge := rec(
		`{"order_id":1,"amount":2.5,"customer_id":0}`,
		`{"order_id":2,"amount":0.29,"customer_id":null}`,
		`{"order_id":3,"amount":-0.005,"customer_id":7}`,
		`{"order_id":4,"amount":1.005,"customer_id":7}`,
		`{"order_id":5,"amount":-0,"customer_id":7}`,
		`{"order_id":6,"amount":1e2,"customer_id":7}`,
		`{"order_id":7,"amount":12345678901234.56,"customer_id":7}`,
		`{"order_id":8,"amount":1e300,"customer_id":7}`,
		`{"order_id":9,"amount":1e400,"customer_id":7}`,
		`{"order_id":10,"amount":4.9E-324,"customer_id":7}`,
		`{ "order_id" : 11 , "amount" : 3.333 , "customer_id" : 12 }`,
		`{"order_id":12,"amount":"3","customer_id":7}`,
		`{"order_id":13,"customer_id":7}`,
		`{"amount":1,"customer_id":7}`,
		`{"order_id":14,"amount":1}`,
		`[1,2]`,
		`not json`,
		``,
		`{"order_id":15,"amount":2,"customer_id":7,"amount":3}`,
		`{"order_id":"\u0031","amount":2,"customer_id":{"nested":[1, 2]}}`,
	)
	r := rand.New(rand.NewPCG(14, 3))
	var many []string
	for i := 0; i < 10_000; i++ {
		amount := fmt.Sprintf("%.*f", r.IntN(6), (r.Float64()-0.3)*float64(r.IntN(1_000_000)))
		many = append(many, fmt.Sprintf(`{"order_id":%d,"amount":%s,"customer_id":%d}`, i, amount, r.IntN(100)))
	}
	return [][]abi.Record{edge, nil, rec(many...)}
}

func runMigrator(t *testing.T, e *host.Engine, lang, name string) result {
	t.Helper()
	ctx := context.Background()
	p := compile(t, e, lang, name)
	if !p.Info().Migrator {
		t.Fatalf("%s/%s does not export helios_migrate", lang, name)
	}
	inst, err := p.NewInstance(ctx, host.InstanceConfig{Partition: -1})
	if err != nil {
		t.Fatalf("%s/%s: %v", lang, name, err)
	}
	defer inst.Close(ctx)
	var res result
	for _, b := range migratorFixtures() {
		ents, err := inst.Migrate(ctx, b)
		if err != nil {
			t.Fatalf("%s/%s: %v", lang, name, err)
		}
		var lines []string
		for _, en := range ents {
			lines = append(lines, render(en))
		}
		res.transcript = append(res.transcript, lines)
	}
	// A migrator module has no operator: helios_process fails the batch.
	if _, err := inst.Process(ctx, migratorFixtures()[0][:1], nil); err == nil {
		t.Fatalf("%s/%s: helios_process succeeded; a migrator module must fail it", lang, name)
	}
	return res
}

// TestConformanceMigrators: every language's migrator emits the Go
// reference's entries byte for byte (values, failures and their messages).
func TestConformanceMigrators(t *testing.T) {
	e := engine(t)
	for _, m := range migrators {
		t.Run(m.name, func(t *testing.T) {
			ref := runMigrator(t, e, m.langs[0], m.name)
			if n := countEntries(ref); n < 10_000 {
				t.Fatalf("the reference produced %d entries", n)
			}
			if m.name == "cents" { // spot checks of the reference itself
				for i, want := range map[int]string{
					0:  `value="{\"order_id\":1,\"amount_cents\":250,\"customer_id\":0}"`,
					2:  `value="{\"order_id\":3,\"amount_cents\":-1,\"customer_id\":7}"`,
					8:  `kind=1 in=8 code=3 ts=0 key="" value="amount is out of range"`,
					11: `kind=1 in=11 code=3 ts=0 key="" value="amount is not a number"`,
				} {
					if !strings.Contains(ref.transcript[0][i], want) {
						t.Errorf("reference entry %d: %s, want %s", i, ref.transcript[0][i], want)
					}
				}
			}
			for _, lang := range m.langs[1:] {
				t.Run(lang, func(t *testing.T) {
					compare(t, ref, runMigrator(t, e, lang, m.name), []string{"edge cases", "empty batch", "10,000 records"})
				})
			}
		})
	}
}
