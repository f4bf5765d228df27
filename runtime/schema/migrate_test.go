package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

const (
	orderV1 = `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"}]}`
	orderV2 = `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`
)

// TestMigrateRules covers each built-in rule, up and down the chain.
func TestMigrateRules(t *testing.T) {
	cases := []struct {
		name     string
		versions []string
		from, to int
		in, want string
	}{
		{"added field takes its default", []string{orderV1, orderV2}, 1, 2,
			`{"order_id":1,"amount":2.5}`, `{"order_id":1,"amount":2.5,"customer_id":0}`},
		{"downgrade drops the added field", []string{orderV1, orderV2}, 2, 1,
			`{"order_id":1,"amount":2.5,"customer_id":7}`, `{"order_id":1,"amount":2.5}`},
		{"optional field without a default becomes null", []string{orderV1,
			`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},{"name":"note","type":"string","optional":true}]}`}, 1, 2,
			`{"order_id":1,"amount":2.5}`, `{"order_id":1,"amount":2.5,"note":null}`},
		{"optional value passes its union", []string{
			`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"note","type":"string","optional":true}]}`,
			`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"note","type":"string","optional":true},{"name":"n","type":"integer","default":3}]}`}, 1, 2,
			`{"order_id":1,"note":"hi"}`, `{"order_id":1,"note":"hi","n":3}`},
		{"removed field is dropped", []string{orderV1,
			`{"name":"order","fields":[{"name":"order_id","type":"integer"}]}`}, 1, 2,
			`{"order_id":1,"amount":2.5}`, `{"order_id":1}`},
		{"integer promotes to float", []string{orderV1,
			`{"name":"order","fields":[{"name":"order_id","type":"float"},{"name":"amount","type":"float"}]}`}, 1, 2,
			`{"order_id":12,"amount":2.5}`, `{"order_id":12,"amount":2.5}`},
		{"rename through an alias", []string{orderV1,
			`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"total","type":"float","aliases":["amount"]}]}`}, 1, 2,
			`{"order_id":1,"amount":2.5}`, `{"order_id":1,"total":2.5}`},
		{"nested record, array and map", []string{
			`{"name":"order","fields":[{"name":"address","type":"record","fields":[{"name":"city","type":"string"}]},{"name":"tags","type":"array","items":"integer"},{"name":"attrs","type":"map","values":"integer"}]}`,
			`{"name":"order","fields":[{"name":"address","type":"record","fields":[{"name":"city","type":"string"},{"name":"zip","type":"string","default":"-"}]},{"name":"tags","type":"array","items":"float"},{"name":"attrs","type":"map","values":"float"}]}`}, 1, 2,
			`{"address":{"city":"Oslo"},"tags":[1,2],"attrs":{"a":1}}`, `{"address":{"city":"Oslo","zip":"-"},"tags":[1,2],"attrs":{"a":1}}`},
		{"three versions, one step at a time", []string{orderV1, orderV2,
			`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"customer_id","type":"integer","optional":true,"default":0}]}`}, 1, 3,
			`{"order_id":1,"amount":2.5}`, `{"order_id":1,"customer_id":0}`},
		{"same version validates and keeps the record", []string{orderV1}, 1, 1,
			`{"amount":2.5,"order_id":1}`, `{"order_id":1,"amount":2.5}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := openRegistry(t)
			if err := r.SetMode("", None); err != nil {
				t.Fatal(err)
			}
			for _, v := range c.versions {
				if _, _, err := r.Register("orders", []byte(v)); err != nil {
					t.Fatal(err)
				}
			}
			out, err := r.Migrate(context.Background(), "orders", c.from, c.to, [][]byte{[]byte(c.in)})
			if err != nil {
				t.Fatal(err)
			}
			if string(out[0]) != c.want {
				t.Fatalf("got %s, want %s", out[0], c.want)
			}
		})
	}
}

func TestMigrateErrors(t *testing.T) {
	r, _ := openRegistry(t)
	if err := r.SetMode("", None); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{orderV1, orderV2,
		`{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"string"}]}`} {
		if _, _, err := r.Register("orders", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	good := []byte(`{"order_id":1,"amount":2.5}`)
	cases := []struct {
		name     string
		subject  string
		from, to int
		records  []string
		sentinel error
		want     string
	}{
		{"unknown subject", "nope", 1, 2, nil, ErrNotFound, `subject "nope"`},
		{"unknown version", "orders", 1, 9, nil, ErrNotFound, `subject "orders" version 9: schema not found (latest is 3)`},
		{"version zero", "orders", 0, 1, nil, ErrNotFound, "versions start at 1"},
		{"incompatible step", "orders", 2, 3, nil, ErrIncompatible, "version 3 cannot read data written with version 2"},
		{"missing field", "orders", 1, 2, []string{string(good), `{"order_id":1}`}, ErrBadRecord, "record 2: record does not match its schema: field amount: missing, and it has no default"},
		{"wrong type", "orders", 1, 2, []string{`{"order_id":"x","amount":1}`}, ErrBadRecord, `record 1: record does not match its schema: field order_id: want an integer, got "x"`},
		{"fraction for an integer", "orders", 1, 2, []string{`{"order_id":1.5,"amount":1}`}, ErrBadRecord, "field order_id: want an integer, got 1.5"},
		{"unknown field", "orders", 1, 2, []string{`{"order_id":1,"amount":1,"colour":"red"}`}, ErrBadRecord, "field colour: not in the schema"},
		{"not JSON", "orders", 1, 2, []string{`{"order_id":`}, ErrBadRecord, "record 1: record does not match its schema: not JSON"},
		{"not an object", "orders", 1, 2, []string{`[1]`}, ErrBadRecord, "want an object, got an array"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var recs [][]byte
			for _, s := range c.records {
				recs = append(recs, []byte(s))
			}
			if recs == nil {
				recs = [][]byte{good}
			}
			out, err := r.Migrate(ctx, c.subject, c.from, c.to, recs)
			if !errors.Is(err, c.sentinel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %v containing %q", err, c.sentinel, c.want)
			}
			if out != nil {
				t.Fatalf("partial output on error: %q", out)
			}
		})
	}
}

// TestMigrateRoundTripUnderFull: under FULL, v1 -> v2 -> v1 gives back every
// v1 record unchanged, and the v2 records conform to v2.
func TestMigrateRoundTripUnderFull(t *testing.T) {
	v1 := `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},
		{"name":"note","type":"string","optional":true},{"name":"tags","type":"array","items":"string"},
		{"name":"attrs","type":"map","values":"integer"},{"name":"paid","type":"boolean"}]}`
	v2 := `{"name":"order","fields":[{"name":"order_id","type":"integer"},{"name":"amount","type":"float"},
		{"name":"note","type":"string","optional":true},{"name":"tags","type":"array","items":"string"},
		{"name":"attrs","type":"map","values":"integer"},{"name":"paid","type":"boolean"},
		{"name":"customer_id","type":"integer","optional":true,"default":0},{"name":"region","type":"string","default":"eu"}]}`
	r, _ := openRegistry(t)
	if err := r.SetMode("orders", Full); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{v1, v2} {
		if _, _, err := r.Register("orders", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	ver2, err := r.Get("orders", 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(14))
	var recs [][]byte
	for range 500 {
		rec := map[string]any{"order_id": rng.Int63n(1 << 53), "amount": rng.NormFloat64() * 1e3, "paid": rng.Intn(2) == 0,
			"tags": []string{}, "attrs": map[string]int{}}
		if rng.Intn(2) == 0 {
			rec["note"] = fmt.Sprintf("n%d\u00e9\"", rng.Int())
		} else if rng.Intn(2) == 0 {
			rec["note"] = nil
		} // else absent: optional
		for range rng.Intn(4) {
			rec["tags"] = append(rec["tags"].([]string), fmt.Sprint(rng.Int()))
			rec["attrs"].(map[string]int)[fmt.Sprint(rng.Intn(100))] = rng.Int()
		}
		b, _ := json.Marshal(rec)
		recs = append(recs, b)
	}
	ctx := context.Background()
	up, err := r.Migrate(ctx, "orders", 1, 2, recs)
	if err != nil {
		t.Fatal(err)
	}
	down, err := r.Migrate(ctx, "orders", 2, 1, up)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := ver2.Validate(up[i]); err != nil {
			t.Fatalf("record %d at v2 %s: %v", i, up[i], err)
		}
		var mid map[string]any
		json.Unmarshal(up[i], &mid)
		if mid["customer_id"] != 0.0 || mid["region"] != "eu" {
			t.Fatalf("record %d at v2 lacks its defaults: %s", i, up[i])
		}
		want, got := decodeLoose(t, recs[i]), decodeLoose(t, down[i])
		if _, ok := want["note"]; !ok {
			want["note"] = nil // an absent optional field reads as null
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("record %d: round trip changed it\n in  %s\n out %s", i, recs[i], down[i])
		}
	}
}

func decodeLoose(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
