package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/internal/testutil"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestSchemaMigratorCLI walks README's "Evolve a schema" to v3 with the
// cents migrator: refused modules and samples (exit 1 or 2, the sample's
// line named), registration, migrate v1 -> v3 through it, a replacement
// audited in show. Once on the data directory, once through a running
// process holding it.
func TestSchemaMigratorCLI(t *testing.T) {
	goCents, rustCents := testutil.Plugin(t, "go", "cents"), testutil.Plugin(t, "rust", "cents")
	for _, held := range []bool{false, true} {
		t.Run(fmt.Sprintf("held=%v", held), func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			write := func(name, text string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			}
			v1 := write("v1.json", `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`)
			v2 := write("v2.json", `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`)
			v3 := write("v3.json", `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount_cents","type":"integer"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`)
			sample := write("sample.jsonl", "{\"order_id\":1,\"amount\":2.5}\n\n{\"order_id\":2,\"amount\":0.1,\"customer_id\":4}\n")
			badSample := write("bad.jsonl", "{\"order_id\":1,\"amount\":2.5}\n{\"order_id\":2}\n")
			failing := write("failing.jsonl", "{\"order_id\":1,\"amount\":2.5}\n\n{\"order_id\":2,\"amount\":1e300}\n")
			if held {
				db, err := storage.Open(data, storage.Options{})
				if err != nil {
					t.Fatal(err)
				}
				srv, err := admin.ServeData(db)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { srv.Close(context.Background()); db.Close() }()
			}
			env := append(testEnv(t), "HELIOS_DATA_DIR="+data)
			steps := []struct {
				stdin  string
				args   []string
				code   int
				stdout string
				stderr string
			}{
				{"", []string{"register", "--subject", "orders", "--file", v1}, 0, "registered orders version 1", ""},
				{"", []string{"register", "--subject", "orders", "--file", v2}, 0, "registered orders version 2", ""},
				{"", []string{"register", "--subject", "orders", "--file", v3}, 1, "", "field amount_cents: added without a default"},
				{"", []string{"register", "--subject", "orders", "--file", v3, "--sample", sample}, 2, "", "--sample: it is run through --migrator, which is not set"},
				{"", []string{"register", "--subject", "orders", "--file", v3, "--migrator", plugin(t, "uppercase")}, 1, "", "no schema migrator (helios.HandleMigrate)"},
				{"", []string{"register", "--subject", "orders", "--file", v3, "--migrator", goCents, "--sample", badSample}, 2, "", "bad.jsonl line 2: record does not match its schema: field amount: missing"},
				{"", []string{"register", "--subject", "orders", "--file", v3, "--migrator", goCents, "--sample", failing}, 1, "", "failing.jsonl line 3: migrator refused: migrator "},
				{"", []string{"register", "--subject", "orders", "--file", v3, "--migrator", goCents, "--sample", sample}, 0, "registered orders version 3 with migrator", ""},
				{"", []string{"register", "--subject", "orders", "--file", v3, "--migrator", goCents}, 0, "already in use; nothing registered", ""},
				{"{\"order_id\":1,\"amount\":19.99}\n{\"order_id\":2,\"amount\":5,\"customer_id\":8}\n", []string{"migrate", "--subject", "orders", "--from", "2", "--to", "3"}, 0,
					"{\"order_id\":1,\"amount_cents\":1999,\"customer_id\":0}\n{\"order_id\":2,\"amount_cents\":500,\"customer_id\":8}\n", ""},
				{"{\"order_id\":1,\"amount\":19.99}\n{\"order_id\":2,\"amount\":1e300}\n", []string{"migrate", "--subject", "orders", "--from", "1", "--to", "3"}, 2,
					"", "stdin line 2: migrator "},
				{"", []string{"register", "--subject", "orders", "--file", v3, "--migrator", rustCents, "--sample", sample}, 0, "replaces", ""},
				{"", []string{"show", "orders"}, 0, `"sample_records": 2`, ""},
				{"{\"order_id\":3,\"amount\":0.29}\n", []string{"migrate", "--subject", "orders", "--from", "1", "--to", "3"}, 0, `{"order_id":3,"amount_cents":29,"customer_id":0}`, ""},
			}
			for _, s := range steps {
				r := runCLI(t, s.stdin, env, append([]string{"schema"}, s.args...)...)
				if r.code != s.code || !strings.Contains(r.stdout, s.stdout) || !strings.Contains(r.stderr, s.stderr) {
					t.Fatalf("schema %v: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout %q, stderr %q", s.args, r.code, s.code, r.stdout, r.stderr, s.stdout, s.stderr)
				}
			}
			r := runCLI(t, "", env, "schema", "show", "orders")
			if n := strings.Count(r.stdout, `"hash"`); n != 2 {
				t.Fatalf("show lists %d migrator registrations, want 2:\n%s", n, r.stdout)
			}
		})
	}
}
