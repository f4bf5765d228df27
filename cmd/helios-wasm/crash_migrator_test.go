package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// TestCrashWithWasmMigrator: a log written under versions 1 and 2 of
// orders is read at version 3, whose step from 2 is the Go cents migrator
// (helios_migrate), under SIGKILLs at every named crash point and at random
// moments (crashLoop): every record comes out at version 3 exactly once, in
// order.
func TestCrashWithWasmMigrator(t *testing.T) {
	seed, rng := crashRand(t, 14)
	dir := t.TempDir()
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out.jsonl")
	env := append(testEnv(t), "HELIOS_DATA_DIR="+data)
	schemas := []string{
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`,
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`,
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount_cents","type":"integer"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`,
	}
	for i, s := range schemas {
		f := filepath.Join(dir, fmt.Sprintf("v%d.json", i+1))
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"schema", "register", "--subject", "orders", "--file", f}
		if i == 2 {
			args = append(args, "--migrator", testutil.Plugin(t, "go", "cents"))
		}
		if r := runCLI(t, "", env, args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	var v1, v2, want []string
	for i := 0; i < crashRecords; i++ {
		if i < crashRecords/2 {
			v1 = append(v1, fmt.Sprintf(`{"order_id":%d,"amount":%d.5}`, i, i%1000))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d,"customer_id":0}`, i, i%1000*100+50))
		} else {
			v2 = append(v2, fmt.Sprintf(`{"order_id":%d,"amount":0.%02d,"customer_id":%d}`, i, i%100, i%7))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"amount_cents":%d,"customer_id":%d}`, i, i%100, i%7))
		}
	}
	for _, p := range []struct {
		ref   string
		lines []string
	}{{"orders@1", v1}, {"orders@2", v2}} {
		if r := runCLI(t, strings.Join(p.lines, "\n")+"\n", env, "produce", "--topic", "orders", "--schema", p.ref); r.code != 0 {
			t.Fatalf("produce %s: %d %s", p.ref, r.code, r.stderr)
		}
	}
	crashLoop(t, rng, seed, env, "run", "--plugin", plugin(t, "lowercase"), "--input", "log:orders",
		"--output", "file:"+out, "--schema", "orders", "--batch-size", "250")
	checkExactlyOnce(t, seed, "migrated", readLines(t, out), want, func(s string) string { return s })
}
