package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/schema"
	"github.com/heliosdb/helios-wasm/storage"
)

// Issue #14 item 4: schemas wired into pipelines.

// Three versions of "orders", each step one of the built-in rules: v2 adds
// a field with a default, promotes amount from integer to float and adds an
// optional field; v3 removes the optional field and renames amount to total
// through an alias.
var orderVersions = []string{
	`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"integer"}]}`,
	`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"customer_id","type":"integer","default":0},{"name":"note","type":"string","optional":true}]}`,
	`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"total","type":"float","aliases":["amount"]},{"name":"customer_id","type":"integer","default":0}]}`,
}

// registerOrders registers orderVersions and returns the registry.
func registerOrders(t *testing.T, db *storage.DB) *schema.Registry {
	t.Helper()
	reg := schema.New(db)
	for i, text := range orderVersions {
		v, _, err := reg.Register("orders", []byte(text))
		if err != nil || v.Number != i+1 {
			t.Fatalf("register orders version %d: %v", i+1, err)
		}
	}
	return reg
}

func schemaHeaders(value string) []abi.Header {
	return []abi.Header{{Key: []byte("trace"), Value: []byte("t1")}, {Key: []byte(schema.Header), Value: []byte(value)}}
}

func headerValue(hs []abi.Header, key string) (string, bool) {
	for _, h := range hs {
		if string(h.Key) == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestInputSchemaMigrate(t *testing.T) {
	db := memDB(t)
	reg := registerOrders(t, db)
	v3, err := reg.Get("orders", 3)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newInputSchema(reg, v3)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		headers []abi.Header
		in      string
		want    string // "" when the record cannot be read
		wantErr []string
	}{
		{"v1: default, promotion, rename", schemaHeaders("orders/1"), `{"order_id":1,"amount":5}`, `{"order_id":1,"total":5,"customer_id":0}`, nil},
		{"v2: optional field removed, rename", schemaHeaders("orders/2"), `{"order_id":2,"amount":2.5,"customer_id":7,"note":"x"}`, `{"order_id":2,"total":2.5,"customer_id":7}`, nil},
		{"v3: validated, unchanged", schemaHeaders("orders/3"), `{"order_id":3,"total":1.5,"customer_id":9}`, `{"order_id":3,"total":1.5,"customer_id":9}`, nil},
		{"no header: read as the first version", nil, `{"order_id":4,"amount":1}`, `{"order_id":4,"total":1,"customer_id":0}`, nil},
		{"no header, not a v1 record", nil, `{"order_id":5,"total":1.5,"customer_id":9}`, "",
			[]string{"no helios-schema header: read as the first version", "orders/3", "field amount", "missing"}},
		{"another subject", schemaHeaders("users/1"), `{"order_id":6}`, "", []string{`subject "users"`, `reads subject "orders"`}},
		{"malformed header", schemaHeaders("orders"), `{"order_id":7}`, "", []string{`header "orders": want SUBJECT/VERSION`}},
		{"malformed version", schemaHeaders("orders/x"), `{"order_id":7}`, "", []string{"want SUBJECT/VERSION"}},
		{"unregistered version", schemaHeaders("orders/9"), `{"order_id":8}`, "", []string{"written as orders/9", "version 9", "schema not found", "latest is 3"}},
		{"field of the wrong type", schemaHeaders("orders/1"), `{"order_id":"nine","amount":5}`, "", []string{"written as orders/1", "field order_id", "want an integer"}},
		{"missing field", schemaHeaders("orders/2"), `{"order_id":10}`, "", []string{"field amount", "missing"}},
		{"not JSON", schemaHeaders("orders/3"), `order 11`, "", []string{"not JSON"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := abi.Record{Value: []byte(c.in), Headers: c.headers}
			value, headers, err := s.migrate(&r)
			if c.want == "" {
				if err == nil {
					t.Fatalf("read %s as %s, want an error", c.in, value)
				}
				for _, w := range c.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(value) != c.want {
				t.Errorf("value %s, want %s", value, c.want)
			}
			if h, _ := headerValue(headers, schema.Header); h != "orders/3" {
				t.Errorf("schema header %q, want orders/3", h)
			}
			if c.headers != nil {
				if h, _ := headerValue(headers, "trace"); h != "t1" || len(headers) != len(c.headers) {
					t.Errorf("other headers not kept: %q", headers)
				}
				if h, _ := headerValue(r.Headers, schema.Header); h != string(c.headers[1].Value) {
					t.Errorf("the record's own headers were modified: %q", r.Headers)
				}
			}
		})
	}
	// A version registered after start is found (one registry read), and
	// migrated down to the reader.
	v4 := `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"total","type":"float","aliases":["amount"]},{"name":"customer_id","type":"integer","default":0},{"name":"channel","type":"string","default":"web"}]}`
	if _, _, err := reg.Register("orders", []byte(v4)); err != nil {
		t.Fatal(err)
	}
	value, _, err := s.migrate(&abi.Record{Value: []byte(`{"order_id":12,"total":3,"customer_id":1,"channel":"app"}`), Headers: schemaHeaders("orders/4")})
	if err != nil || string(value) != `{"order_id":12,"total":3,"customer_id":1}` {
		t.Fatalf("version registered after start: %s, %v", value, err)
	}
	s.mu.RLock()
	cached := len(s.chains)
	s.mu.RUnlock()
	if cached != 4 { // writer versions 1..4, each chain built once
		t.Fatalf("%d cached chains, want 4", cached)
	}
}

// appendRecords appends values to topic, each with the headers hs[i]
// (nil: none).
func appendRecords(t *testing.T, db *storage.DB, topic string, values []string, hs [][]abi.Header) {
	t.Helper()
	b := db.NewBatch()
	for i, v := range values {
		e := &storage.Entry{Value: []byte(v), Key: []byte(fmt.Sprint(i))}
		if hs[i] != nil {
			e.Headers = abi.AppendKVBlock(nil, hs[i])
		}
		if err := b.Append(topic, 0, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
}

// logPipeline writes values (with headers hs[i]; nil hs: none) to a new
// one-partition topic "in" and builds pipeline "p" from it to topic "out"
// with the rest of cfg.
func logPipeline(t *testing.T, db *storage.DB, values []string, hs [][]abi.Header, cfg Config) *Pipeline {
	t.Helper()
	if hs == nil {
		hs = make([][]abi.Header, len(values))
	}
	db.CreateTopic("in", 1)
	appendRecords(t, db, "in", values, hs)
	cfg.Name, cfg.DB, cfg.Logger = "p", db, quiet
	cfg.Source, _ = newLogSource(db, "in")
	var err error
	if cfg.Sink, err = newLogSink(db, "out", 1); err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readTopic(t *testing.T, db *storage.DB, topic string) []storage.Entry {
	t.Helper()
	ents, _, err := db.ReadLog(topic, 0, 0, 1_000_000, 1<<30, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

// Item 7: a topic written under v1, v2 and v3 interleaved comes out at v3,
// every record; records that cannot be read go to the dead-letter queue as
// they were read, with code 112 and the reason, or stop a run without one.
func TestPipelineSchemaInterleavedVersions(t *testing.T) {
	const n = 300
	var values, want []string
	var hs [][]abi.Header
	bad := map[int]string{} // input index -> what its DLQ error says
	for i := 0; i < n; i++ {
		switch {
		case i == 37:
			values, hs = append(values, `{"order_id":"x","amount":1}`), append(hs, schemaHeaders("orders/1"))
			bad[i] = "field order_id"
		case i == 150:
			values, hs = append(values, `{"order_id":1}`), append(hs, schemaHeaders("users/1"))
			bad[i] = `this pipeline reads subject "orders"`
		case i == 222:
			values, hs = append(values, `{"order_id":2,"total":1}`), append(hs, nil) // headerless: read as v1
			bad[i] = "no helios-schema header"
		case i%4 == 3:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount":%d}`, i, i)), append(hs, nil)
			want = append(want, fmt.Sprintf(`{"order_id":%d,"total":%d,"customer_id":0}`, i, i))
		case i%3 == 0:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount":%d}`, i, i)), append(hs, schemaHeaders("orders/1"))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"total":%d,"customer_id":0}`, i, i))
		case i%3 == 1:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"amount":%d.5,"customer_id":%d,"note":"n"}`, i, i, i)), append(hs, schemaHeaders("orders/2"))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"total":%d.5,"customer_id":%d}`, i, i, i))
		default:
			values, hs = append(values, fmt.Sprintf(`{"order_id":%d,"total":%d.25,"customer_id":%d}`, i, i, i)), append(hs, schemaHeaders("orders/3"))
			want = append(want, fmt.Sprintf(`{"order_id":%d,"total":%d.25,"customer_id":%d}`, i, i, i))
		}
	}
	for _, noDLQ := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-dlq=%v", noDLQ), func(t *testing.T) {
			db := memDB(t)
			reg := registerOrders(t, db)
			latest, err := reg.Latest("orders")
			if err != nil {
				t.Fatal(err)
			}
			p := logPipeline(t, db, values, hs, Config{Plugin: testPlugin(t, "lowercase"), BatchSize: 64, Schema: latest, DisableDeadLetter: noDLQ})
			st, err := p.Run(context.Background())
			out := readTopic(t, db, "out")
			if noDLQ {
				var re *RecordError
				if !errors.As(err, &re) || re.Code != abi.FailSchema || re.Offset != 37 || !strings.Contains(re.Message, "field order_id") {
					t.Fatalf("without DLQ: %v", err)
				}
				if len(out) != 0 { // the failing record is in the first batch
					t.Fatalf("without DLQ: %d outputs committed, want 0", len(out))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.RecordsIn != n || st.DeadLettered != int64(len(bad)) || st.RecordsOut != int64(len(want)) {
				t.Fatalf("stats %+v, want %d in, %d dead-lettered, %d out", st, n, len(bad), len(want))
			}
			for i, e := range out {
				if string(e.Value) != want[i] {
					t.Fatalf("output %d: %s, want %s", i, e.Value, want[i])
				}
			}
			var ents []DLQEntry
			p.DeadLetterQueue().List(func(e DLQEntry) error { ents = append(ents, e); return nil })
			if len(ents) != len(bad) {
				t.Fatalf("%d DLQ entries, want %d", len(ents), len(bad))
			}
			for _, e := range ents {
				says, ok := bad[int(e.Offset)]
				if !ok || e.Code != abi.FailSchema || string(e.Value) != values[e.Offset] || !strings.Contains(e.Error, says) || !strings.HasPrefix(e.Error, "schema: ") {
					t.Errorf("DLQ entry at offset %d: code %d, value %s, error %q; want code 112, the record as read, an error saying %q",
						e.Offset, e.Code, e.Value, e.Error, says)
				}
			}
		})
	}
}

// An output that does not match --output-schema fails its input record
// (code 112, none of its outputs written); the others are stamped with the
// output version.
func TestPipelineOutputSchema(t *testing.T) {
	values := []string{`{"id":1}`, `{"id":"x"}`, `{"id":3}`, `{"id":4,"extra":true}`, `{"id":5}`}
	for _, noDLQ := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-dlq=%v", noDLQ), func(t *testing.T) {
			db := memDB(t)
			reg := schema.New(db)
			// The operator uppercases: {"id":1} becomes {"ID":1}.
			ov, _, err := reg.Register("upper", []byte(`{"name":"upper","fields":[{"name":"ID","type":"integer"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			p := logPipeline(t, db, values, nil, Config{Plugin: testPlugin(t, "uppercase"), BatchSize: 10, OutputSchema: ov, DisableDeadLetter: noDLQ})
			st, err := p.Run(context.Background())
			out := readTopic(t, db, "out")
			if noDLQ {
				var re *RecordError
				if !errors.As(err, &re) || re.Code != abi.FailSchema || re.Offset != 1 || !strings.Contains(re.Message, "output schema upper/1") {
					t.Fatalf("without DLQ: %v", err)
				}
				if len(out) != 0 {
					t.Fatalf("without DLQ: %d outputs committed", len(out))
				}
				return
			}
			if err != nil || st.RecordsOut != 3 || st.DeadLettered != 2 {
				t.Fatalf("%+v %v", st, err)
			}
			for i, want := range []string{`{"ID":1}`, `{"ID":3}`, `{"ID":5}`} {
				hs, herr := abi.DecodeKVBlock(out[i].Headers)
				if h, _ := headerValue(hs, schema.Header); herr != nil || string(out[i].Value) != want || h != "upper/1" {
					t.Errorf("output %d: %s with schema header %q (%v), want %s with upper/1", i, out[i].Value, h, herr, want)
				}
			}
			var ents []DLQEntry
			p.DeadLetterQueue().List(func(e DLQEntry) error { ents = append(ents, e); return nil })
			if len(ents) != 2 || ents[0].Offset != 1 || ents[1].Offset != 3 {
				t.Fatalf("DLQ %+v, want offsets 1 and 3", ents)
			}
			for _, e := range ents {
				if e.Code != abi.FailSchema || string(e.Value) != values[e.Offset] || !strings.Contains(e.Error, "does not match the output schema upper/1") {
					t.Errorf("DLQ entry %+v", e)
				}
			}
		})
	}
}

func TestPipelineSchemaConfigRefused(t *testing.T) {
	db := memDB(t)
	db.CreateTopic("in", 1)
	src, _ := newLogSource(db, "in")
	sink, _ := newLogSink(db, "out", 1)
	cfg := Config{Name: "p", DB: db, Plugin: testPlugin(t, "lowercase"), Source: src, Sink: sink, Logger: quiet}
	for _, c := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"not from a registry", func(c *Config) { c.OutputSchema = &schema.Version{Subject: "orders", Number: 1} }, "OutputSchema orders/1 was not read from a schema registry"},
		{"subject not in this data directory", func(c *Config) {
			other := memDB(t)
			v, _, err := schema.New(other).Register("orders", []byte(orderVersions[0]))
			if err != nil {
				t.Fatal(err)
			}
			c.Schema = v
		}, `subject "orders": schema not found`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := cfg
			c.mod(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// The archive of a non-resumable input keeps records as read: originals,
// not migrated, and those dead-lettered for their schema too, so that a
// replay sees the input the pipeline saw.
func TestStdinArchiveKeepsRecordsAsRead(t *testing.T) {
	db := memDB(t)
	reg := registerOrders(t, db)
	latest, err := reg.Latest("orders")
	if err != nil {
		t.Fatal(err)
	}
	in := []string{`{"order_id":1,"amount":10}`, `{"order_id":"bad","amount":1}`, `{"order_id":3,"amount":30}`}
	src := &stdinSource{in: strings.NewReader(strings.Join(in, "\n") + "\n")}
	sink, _ := newLogSink(db, "out", 1)
	st, err := runPipeline(t, Config{Name: "s", DB: db, Plugin: testPlugin(t, "lowercase"), Source: src, Sink: sink, Schema: latest, ArchiveMax: 10, AtLeastOnce: true})
	if err != nil || st.RecordsOut != 2 || st.DeadLettered != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	if out := readTopic(t, db, "out"); len(out) != 2 || string(out[1].Value) != `{"order_id":3,"total":30,"customer_id":0}` {
		t.Fatalf("outputs %+v", out)
	}
	var got []string
	for _, e := range readTopic(t, db, ArchiveTopic("s")) {
		got = append(got, string(e.Value))
	}
	if strings.Join(got, "\n") != strings.Join(in, "\n") {
		t.Fatalf("archive %q, want the input as read %q", got, in)
	}
}

// A dead-letter retry on the running pipeline goes through its schema
// step: an entry dead-lettered because its version was not registered yet
// is migrated once it is, and retried outputs are checked and stamped.
func TestRetryDeadLettersMigrates(t *testing.T) {
	db := memDB(t)
	reg := registerOrders(t, db)
	latest, err := reg.Latest("orders")
	if err != nil {
		t.Fatal(err)
	}
	p := logPipeline(t, db, []string{`{"order_id":1,"total":2,"customer_id":3,"channel":"app"}`}, [][]abi.Header{schemaHeaders("orders/4")},
		Config{Plugin: testPlugin(t, "lowercase"), Schema: latest, OutputSchema: latest})
	sink := p.cfg.Sink
	if st, err := p.Run(context.Background()); err != nil || st.DeadLettered != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	v4 := `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"total","type":"float","aliases":["amount"]},{"name":"customer_id","type":"integer","default":0},{"name":"channel","type":"string","default":"web"}]}`
	if _, _, err := reg.Register("orders", []byte(v4)); err != nil {
		t.Fatal(err)
	}
	// The run's step looks version 4 up again once its miss is older
	// than missTTL (a second; not waited for here).
	p.inSchema.missTTL = 0
	st, err := retryEntries(context.Background(), retryTarget{coord: p.coord, q: p.dlq, state: p.state, sink: sink, inSchema: p.inSchema, outSchema: p.outSchema},
		RetryConfig{Name: "p", Plugin: testPlugin(t, "lowercase"), Logger: quiet})
	if err != nil || st.Succeeded != 1 {
		t.Fatalf("retry: %+v %v", st, err)
	}
	out := readTopic(t, db, "out")
	if len(out) != 1 || string(out[0].Value) != `{"order_id":1,"total":2,"customer_id":3}` {
		t.Fatalf("outputs %+v", out)
	}
	hs, _ := abi.DecodeKVBlock(out[0].Headers)
	if h, _ := headerValue(hs, schema.Header); h != "orders/3" {
		t.Fatalf("output schema header %q", h)
	}
}
