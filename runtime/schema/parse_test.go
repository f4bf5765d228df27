package schema

import (
	"errors"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

func TestParseMapsHeliosOntoAvro(t *testing.T) {
	s, format, err := Parse([]byte(`{"name":"order","fields":[
		{"name":"order_id","type":"integer","optional":false,"default":null},
		{"name":"amount","type":"float","default_value":1.5},
		{"name":"customer_id","type":"integer","optional":true,"default":0},
		{"name":"note","type":"string","optional":true},
		{"name":"paid","type":"boolean"},
		{"name":"raw","type":"bytes"},
		{"name":"at","type":"timestamp"},
		{"name":"tags","type":"array","items":"string"},
		{"name":"attrs","type":"map","values":{"type":"integer"}},
		{"name":"address","type":"record","fields":[{"name":"city","type":"string"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if format != FormatHelios {
		t.Fatalf("format %s", format)
	}
	r := s.(*avro.RecordSchema)
	want := map[string]string{
		"order_id":    `"long"`,
		"amount":      `"double"`,
		"customer_id": `["long","null"]`,
		"note":        `["null","string"]`,
		"paid":        `"boolean"`,
		"raw":         `"bytes"`,
		"at":          `{"type":"long","logicalType":"timestamp-millis"}`,
		"tags":        `{"type":"array","items":"string"}`,
		"attrs":       `{"type":"map","values":"long"}`,
		"address":     `{"name":"address","type":"record","fields":[{"name":"city","type":"string"}]}`,
	}
	defaults := map[string]any{"amount": 1.5, "customer_id": int64(0), "note": nil}
	for _, f := range r.Fields() {
		if got := f.Type().String(); got != want[f.Name()] {
			t.Errorf("%s: type %s, want %s", f.Name(), got, want[f.Name()])
		}
		wantDef, hasDef := defaults[f.Name()]
		if f.HasDefault() != hasDef {
			t.Errorf("%s: has default %v, want %v", f.Name(), f.HasDefault(), hasDef)
		} else if hasDef && f.Default() != wantDef {
			t.Errorf("%s: default %#v, want %#v", f.Name(), f.Default(), wantDef)
		}
	}
	if _, format, err := Parse([]byte(`{"type":"record","name":"order","fields":[{"name":"id","type":"long"}]}`)); err != nil || format != FormatAvro {
		t.Fatalf("avsc: %v %s", err, format)
	}
}

// TestParseErrorsSayWhere: every malformed schema names its line and column.
func TestParseErrorsSayWhere(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"syntax", "{\"name\":\"order\",\n  \"fields\": [\n    {\"name\": \"id\" \"type\": \"integer\"}]}", "line 3, column"},
		{"truncated", "{\"name\":\"order\",\n\"fields\":[", "line 2, column 11: unexpected end of file"},
		{"unknown type", "{\"name\":\"order\",\"fields\":[\n {\"name\":\"id\",\"type\":\"integr\"}]}", `line 2, column 22: "id": unknown type "integr"`},
		{"unknown attribute", "{\"name\":\"order\",\"fields\":[\n\n {\"name\":\"id\",\"type\":\"integer\",\"nullable\":true}]}", `line 3, column 43: unknown field attribute "nullable"`},
		{"no fields", `{"name":"order"}`, `line 1, column 1: record "order" needs a "fields" array`},
		{"array without items", `{"name":"o","fields":[{"name":"xs","type":"array"}]}`, `line 1, column 43: "xs": an array needs "items"`},
		{"not an object", `[1]`, "line 1, column 1: want a JSON object"},
		{"trailing data", `{"name":"o","fields":[]} x`, "line 1, column 26: unexpected data"},
		{"duplicate member", "{\"name\":\"o\",\n\"name\":\"p\",\"fields\":[]}", `line 2, column 8: duplicate member "name"`},
		{"both defaults", `{"name":"o","fields":[{"name":"a","type":"integer","default":1,"default_value":2}]}`, `give "default" or "default_value", not both`},
		{"avro not a record", `{"type":"string"}`, "the top level must be a record"},
		{"avro bad", `{"type":"record","name":"o","fields":[{"name":"a","type":"nope"}]}`, "bad schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Parse([]byte(c.text))
			if !errors.Is(err, ErrBadSchema) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrBadSchema containing %q", err, c.want)
			}
		})
	}
}
