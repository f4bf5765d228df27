package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// decodeStd is what convertRecord used before parseJSON: encoding/json's
// Decoder with UseNumber, and nothing but whitespace after the value.
func decodeStd(b []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// TestParseJSONMatchesEncodingJSON: parseJSON accepts exactly what
// encoding/json accepts and yields the same values, over hand-picked edge
// cases and random mutations of them.
func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-3`, `-12E+4`, `"x"`, ` {"a" : [1, 2.0, {"b":null}] } `,
		`{"order_id":1,"amount":2.5,"customer_id":null}`, `{"a":1,"a":2}`, `"\u00e9\ud83d\ude00\n\/\\"`, `"\ud800"`,
		"\"\xff\xfe\"", "\"é\"", `{"k\u0041":"v"}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`,
		`nul`, `tru`, `[1 2]`, `{"a":1}x`, `{"a":1} {}`, "\"a\tb\"", `"abc`, ``, `   `, `[[[[[]]]]]`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		`1e400`, `{"n":123456789012345678901234567890}`, "{\"a\":\"\x00\"}",
	}
	check := func(in string) {
		want, wantOK := decodeStd([]byte(in))
		got, err := parseJSON([]byte(in))
		if (err == nil) != wantOK {
			t.Fatalf("%.200q: parseJSON error %v, encoding/json accepts: %v", in, err, wantOK)
		}
		if err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("%.200q: error %v is not ErrBadRecord", in, err)
		}
		if wantOK && !reflect.DeepEqual(got, want) {
			t.Fatalf("%.200q: got %#v, want %#v", in, got, want)
		}
	}
	for _, c := range cases {
		check(c)
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[]",:0123456789-+.eE \tnultrfase\\u` + "\xff")
	for i := 0; i < 20000; i++ {
		b := []byte(cases[r.IntN(12)])
		for k := r.IntN(3); k >= 0 && len(b) > 0; k-- {
			switch j := r.IntN(len(b)); r.IntN(3) {
			case 0:
				b[j] = alphabet[r.IntN(len(alphabet))]
			case 1:
				b = append(b[:j], b[j+1:]...)
			default:
				b = append(b[:j], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[j:]...)...)
			}
		}
		check(string(b))
	}
}
