package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/internal/admin"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestSchemaCLI walks README's "Evolve a schema": register v1, check and
// register v2, a breaking v3 refused with its fields listed (exit 1), a
// malformed file (exit 2, line and column), show, list, migrate, mode.
func TestSchemaCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := write("order-v1.json", `{"name": "order", "fields": [
  {"name": "order_id", "type": "integer"},
  {"name": "amount", "type": "float"}
]}`)
	v2 := write("order-v2.json", `{"name": "order", "fields": [
  {"name": "order_id", "type": "integer"},
  {"name": "amount", "type": "float"},
  {"name": "customer_id", "type": "integer", "optional": true, "default": 0}
]}`)
	bad := write("order-v3.json", `{"name": "order", "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "customer_id", "type": "integer", "optional": true, "default": 0},
  {"name": "region", "type": "string"}
]}`)
	typo := write("typo.json", "{\"name\": \"order\", \"fields\": [\n  {\"name\": \"amount\", \"type\": \"flaot\"}]}")
	avsc := write("order-v3.avsc", `{"type":"record","name":"order","fields":[{"name":"order_id","type":"long"},{"name":"amount","type":"double"},
  {"name":"customer_id","type":["long","null"],"default":0},{"name":"note","type":["null","string"],"default":null}]}`)

	cases := []struct {
		name      string
		stdin     string
		args      []string
		code      int
		stdout    []string
		stderr    []string
		notStdout string
	}{
		{"register v1", "", []string{"register", "--subject", "orders", "--file", v1}, 0, []string{"registered orders version 1"}, nil, ""},
		{"check v2", "", []string{"check", "--subject", "orders", "--file", v2}, 0, []string{"compatible", "mode BACKWARD (default)"}, nil, ""},
		{"register v2", "", []string{"register", "--subject", "orders", "--file", v2}, 0, []string{"registered orders version 2"}, nil, ""},
		{"register v2 again", "", []string{"register", "--subject", "orders", "--file", v2}, 0, []string{"identical to version 2; nothing registered"}, nil, ""},
		{"check breaking", "", []string{"check", "--subject", "orders", "--file", bad}, 1, nil, []string{
			"2 breaking change(s)",
			"backward vs version 2, field order_id: type changed from long (version 2) to string",
			"backward vs version 2, field region: added without a default"}, ""},
		{"register breaking", "", []string{"register", "--subject", "orders", "--file", bad}, 1, nil, []string{"field region: added without a default"}, ""},
		{"malformed", "", []string{"check", "--subject", "orders", "--file", typo}, 2, nil, []string{"typo.json: bad schema: line 2, column 30: \"amount\": unknown type \"flaot\""}, ""},
		{"missing file", "", []string{"check", "--subject", "orders", "--file", filepath.Join(dir, "nope.json")}, 2, nil, []string{"--file: open"}, ""},
		{"bad subject", "", []string{"register", "--subject", "a b", "--file", v1}, 2, nil, []string{`--subject: subject name "a b" may only contain`}, ""},
		{"show latest", "", []string{"show", "orders"}, 0, []string{`"version": 2`, `"customer_id"`, `"avro"`}, nil, ""},
		{"show version", "", []string{"show", "orders", "--version", "1"}, 0, []string{`"version": 1`}, nil, `"customer_id"`},
		{"show unknown version", "", []string{"show", "orders", "--version", "7"}, 2, nil, []string{`subject "orders" version 7: schema not found (latest is 2)`}, ""},
		{"show unknown subject", "", []string{"show", "payments"}, 2, nil, []string{`subject "payments": schema not found`}, ""},
		{"migrate up", "{\"order_id\":1,\"amount\":9.5}\n\n{\"order_id\":2,\"amount\":3}\n", []string{"migrate", "--subject", "orders", "--from", "1", "--to", "2"}, 0,
			[]string{"{\"order_id\":1,\"amount\":9.5,\"customer_id\":0}\n{\"order_id\":2,\"amount\":3,\"customer_id\":0}\n"}, []string{"migrated 2 records"}, ""},
		{"migrate down", `{"order_id":1,"amount":9.5,"customer_id":4}`, []string{"migrate", "--subject", "orders", "--from", "2", "--to", "1"}, 0,
			[]string{"{\"order_id\":1,\"amount\":9.5}\n"}, nil, ""},
		{"migrate bad line", "{\"order_id\":1,\"amount\":9.5}\n\n{\"order_id\":\"x\",\"amount\":3}\n", []string{"migrate", "--subject", "orders", "--from", "1", "--to", "2"}, 2,
			nil, []string{`stdin line 3: record does not match its schema: field order_id: want an integer, got "x"`}, ""},
		{"mode default", "", []string{"mode"}, 0, []string{"default: BACKWARD\n"}, nil, ""},
		{"mode set", "", []string{"mode", "--subject", "orders", "full"}, 0, []string{"orders: FULL\n"}, nil, ""},
		{"mode get", "", []string{"mode", "--subject", "orders"}, 0, []string{"orders: FULL\n"}, nil, ""},
		{"mode bad", "", []string{"mode", "SIDEWAYS"}, 2, nil, []string{`compatibility mode "SIDEWAYS": want BACKWARD`}, ""},
		{"register avsc under FULL", "", []string{"register", "--subject", "orders", "--file", avsc}, 0, []string{"registered orders version 3"}, nil, ""},
		{"list", "", []string{"list"}, 0, []string{"orders   3       avro    FULL"}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.stdin, []string{"HELIOS_DATA_DIR=" + data}, append([]string{"schema"}, c.args...)...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			for _, w := range c.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range c.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if c.notStdout != "" && strings.Contains(r.stdout, c.notStdout) {
				t.Errorf("stdout has %q:\n%s", c.notStdout, r.stdout)
			}
		})
	}
}

// TestSchemaCLIWhileHeld: while a running process holds the data directory,
// schema commands go through its socket, with the same answers and exit
// codes, and what they register is in the directory.
func TestSchemaCLIWhileHeld(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	db, err := storage.Open(data, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := admin.ServeData(db)
	if err != nil {
		t.Fatal(err)
	}
	v1 := filepath.Join(dir, "v1.json")
	os.WriteFile(v1, []byte(`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"region","type":"string"}]}`), 0o644)
	typo := filepath.Join(dir, "typo.json")
	os.WriteFile(typo, []byte("{\"name\":\"order\",\n\"fields\":["), 0o644)
	env := []string{"HELIOS_DATA_DIR=" + data}
	steps := []struct {
		stdin  string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"", []string{"register", "--subject", "orders", "--file", v1}, 0, "registered orders version 1", ""},
		{"", []string{"register", "--subject", "orders", "--file", v1}, 0, "identical to version 1", ""},
		{"", []string{"check", "--subject", "orders", "--file", bad}, 1, "", "backward vs version 1, field region: added without a default"},
		{"", []string{"check", "--subject", "orders", "--file", typo}, 2, "", "bad schema: line 2, column 11: unexpected end of file"},
		{"", []string{"show", "orders"}, 0, `"avro"`, ""},
		{"", []string{"show", "orders", "--version", "3"}, 2, "", "latest is 1"},
		{"", []string{"mode", "--subject", "orders", "NONE"}, 0, "orders: NONE", ""},
		{"", []string{"mode", "--subject", "orders"}, 0, "orders: NONE", ""},
		{"", []string{"list"}, 0, "orders   1       helios  NONE", ""},
		{"{\"order_id\":1,\"amount\":2}\n", []string{"migrate", "--subject", "orders", "--from", "1", "--to", "1"}, 0, `{"order_id":1,"amount":2}`, ""},
		{"{\"order_id\":1,\"amount\":2}\n{\"order_id\":1}\n", []string{"migrate", "--subject", "orders", "--from", "1", "--to", "1"}, 2, "", "stdin line 2: record does not match its schema: field amount: missing"},
		{"{\"order_id\":1,\"amount\":2}\n{\"order_id\":\n", []string{"migrate", "--subject", "orders", "--from", "1", "--to", "1"}, 2, "", "stdin line 2: record does not match its schema: not JSON"},
	}
	for _, s := range steps {
		r := runCLI(t, s.stdin, env, append([]string{"schema"}, s.args...)...)
		if r.code != s.code || !strings.Contains(r.stdout, s.stdout) || !strings.Contains(r.stderr, s.stderr) {
			t.Fatalf("schema %v: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout %q, stderr %q", s.args, r.code, s.code, r.stdout, r.stderr, s.stdout, s.stderr)
		}
	}
	srv.Close(context.Background())
	db.Close()
	r := runCLI(t, "", env, "schema", "show", "orders")
	if r.code != 0 || !strings.Contains(r.stdout, `"version": 1`) {
		t.Fatalf("after the process stopped: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestProduceWithSchema: --schema validates every line, tags every record
// with helios-schema: SUBJECT/VERSION, and commits all lines or none.
func TestProduceWithSchema(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"HELIOS_DATA_DIR=" + data}
	for i, text := range []string{
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`,
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`,
	} {
		f := filepath.Join(dir, fmt.Sprintf("v%d.json", i+1))
		os.WriteFile(f, []byte(text), 0o644)
		if r := runCLI(t, "", env, "schema", "register", "--subject", "orders", "--file", f); r.code != 0 {
			t.Fatalf("register: %s", r.stderr)
		}
	}
	steps := []struct {
		stdin, schema string
		code          int
		stderr        string
	}{
		{"{\"order_id\":1,\"amount\":2}\n\n{\"order_id\":2,\"amount\":3.5}\n", "orders@1", 0, "committed 2 records"},
		{"{\"order_id\":3,\"amount\":1,\"customer_id\":9}\n", "orders", 0, "committed 1 records"},
		{"{\"order_id\":4,\"amount\":1}\n{\"order_id\":5,\"amount\":1}\n{\"order_id\":6}\n", "orders@2", 2, "input line 3: record does not match its schema: field amount: missing, and it has no default (nothing was committed)"},
		{"{\"order_id\":4,\"amount\":1}\nnot json\n", "orders", 2, "input line 2: not valid JSON"},
		{"{\"order_id\":4,\"amount\":1,\"customer_id\":9}\n", "orders@1", 2, "field customer_id: not in the schema"},
		{"{}\n", "payments", 2, `--schema: subject "payments": schema not found`},
		{"{}\n", "orders@x", 2, `--schema "orders@x": want SUBJECT[@VERSION]`},
		{"{}\n", "orders@7", 2, "latest is 2"},
	}
	for _, s := range steps {
		r := runCLI(t, s.stdin, env, "produce", "--topic", "orders", "--schema", s.schema)
		if r.code != s.code || !strings.Contains(r.stderr, s.stderr) {
			t.Fatalf("--schema %s: exit %d (want %d)\nstderr: %s\nwant %q", s.schema, r.code, s.code, r.stderr, s.stderr)
		}
	}
	db, err := storage.Open(data, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries, _, err := db.ReadLog("orders", 0, 0, 100, 1<<30, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		hs, err := abi.DecodeKVBlock(e.Headers)
		if err != nil || len(hs) != 1 || string(hs[0].Key) != "helios-schema" {
			t.Fatalf("headers of %s: %v %v", e.Value, hs, err)
		}
		got = append(got, string(hs[0].Value)+" "+string(e.Value))
	}
	want := []string{`orders/1 {"order_id":1,"amount":2}`, `orders/1 {"order_id":2,"amount":3.5}`, `orders/2 {"order_id":3,"amount":1,"customer_id":9}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunWithSchema: run --schema reads a topic produced under versions 1
// and 2 (and headerless lines, read as version 1) and writes every record at
// the reader version; a record that cannot be read is dead-lettered with
// code 112 SCHEMA; --output-schema checks the outputs; unknown schemas are
// usage errors naming the flag.
func TestRunWithSchema(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"HELIOS_DATA_DIR=" + data}
	for i, text := range []string{
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"integer"}]}`,
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"total","type":"float","aliases":["amount"]},{"name":"customer_id","type":"integer","default":0}]}`,
	} {
		f := filepath.Join(dir, fmt.Sprintf("v%d.json", i+1))
		os.WriteFile(f, []byte(text), 0o644)
		if r := runCLI(t, "", env, "schema", "register", "--subject", "orders", "--file", f); r.code != 0 {
			t.Fatalf("register: %s", r.stderr)
		}
	}
	for _, p := range []struct{ stdin, schema string }{
		{"{\"order_id\":1,\"amount\":10}\n", "orders@1"},
		{"{\"order_id\":2,\"total\":2.5,\"customer_id\":7}\n", "orders@2"},
		{"{\"order_id\":3,\"amount\":30}\n{\"order_id\":4,\"total\":4.5}\n", ""}, // headerless: the second is not a version 1 record
		{"{\"order_id\":5,\"amount\":50}\n", "orders@1"},
	} {
		args := []string{"produce", "--topic", "orders"}
		if p.schema != "" {
			args = append(args, "--schema", p.schema)
		}
		if r := runCLI(t, p.stdin, env, args...); r.code != 0 {
			t.Fatalf("produce %v: %s", args, r.stderr)
		}
	}
	out := filepath.Join(dir, "out.jsonl")
	run := func(args ...string) result {
		return runCLI(t, "", append(testEnv(t), env...), append([]string{"run", "--plugin", plugin(t, "lowercase"), "--input", "log:orders",
			"--output", "file:" + out, "--name", "orders"}, args...)...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--schema", "payments"}, `--schema: subject "payments": schema not found`},
		{[]string{"--schema", "orders@3"}, `--schema: subject "orders" version 3: schema not found (latest is 2)`},
		{[]string{"--output-schema", "orders@x"}, `--output-schema "orders@x": want SUBJECT[@VERSION]`},
	} {
		if r := run(c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Fatalf("run %v: exit %d, stderr %s; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := run("--schema", "orders", "--output-schema", "orders@2"); r.code != 0 || !strings.Contains(r.stderr, "1 records went to the dead-letter queue") {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	got, _ := os.ReadFile(out)
	want := `{"order_id":1,"total":10,"customer_id":0}
{"order_id":2,"total":2.5,"customer_id":7}
{"order_id":3,"total":30,"customer_id":0}
{"order_id":5,"total":50,"customer_id":0}
`
	if string(got) != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	list := runCLI(t, "", nil, "dlq", "list", "--data-dir", data)
	for _, w := range []string{"112 SCHEMA", "log:orders p0@3", "no helios-schema header: read as the first version"} {
		if !strings.Contains(list.stdout, w) {
			t.Errorf("dlq list lacks %q:\n%s", w, list.stdout)
		}
	}
}

// TestServeWithSchema: serve's "schema" and "output_schema" are run's
// flags: records produced under version 1 come out at version 2, and an
// unknown subject refuses the pipeline at start, naming it and the field.
func TestServeWithSchema(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"HELIOS_DATA_DIR=" + data}
	for i, text := range []string{
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"integer"}]}`,
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"total","type":"float","aliases":["amount"]}]}`,
	} {
		f := filepath.Join(dir, fmt.Sprintf("v%d.json", i+1))
		os.WriteFile(f, []byte(text), 0o644)
		if r := runCLI(t, "", env, "schema", "register", "--subject", "orders", "--file", f); r.code != 0 {
			t.Fatalf("register: %s", r.stderr)
		}
	}
	if r := runCLI(t, "{\"order_id\":1,\"amount\":10}\n", env, "produce", "--topic", "orders", "--schema", "orders@1"); r.code != 0 {
		t.Fatalf("produce: %s", r.stderr)
	}
	out := filepath.Join(dir, "out.jsonl")
	serve := func(schemaField string) result {
		cfg := fmt.Sprintf(`{"data_dir": %q, "admin": "", "pipelines": [
			{"name": "orders", "plugin": %q, "input": "log:orders", "output": "file:%s", "follow": false, %s}]}`,
			data, plugin(t, "lowercase"), out, schemaField)
		path := filepath.Join(dir, "pipelines.json")
		os.WriteFile(path, []byte(cfg), 0o644)
		return runCLI(t, "", testEnv(t), "serve", "--config", path)
	}
	if r := serve(`"schema": "payments"`); r.code != 2 || !strings.Contains(r.stderr, `pipeline orders: schema: subject "payments": schema not found`) {
		t.Fatalf("unknown subject: %d %s", r.code, r.stderr)
	}
	if r := serve(`"schema": "orders", "output_schema": "orders@2"`); r.code != 0 {
		t.Fatalf("serve: %d %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(out); string(got) != "{\"order_id\":1,\"total\":10}\n" {
		t.Fatalf("output %q", got)
	}
}
