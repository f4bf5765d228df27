package helios

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSONField(t *testing.T) {
	tests := []struct {
		in, name string
		raw      string
		found    bool
		bad      bool
	}{
		{in: `{"a":1}`, name: "a", raw: "1", found: true},
		{in: ` { "a" : "x y" , "b":[1, {"c":null}] } `, name: "b", raw: `[1, {"c":null}]`, found: true},
		{in: `{"a":1,"a":2}`, name: "a", raw: "2", found: true},
		{in: `{"\u0061":true}`, name: "a", raw: "true", found: true},
		{in: `{"\ud83d\ude00":0}`, name: "😀", raw: "0", found: true},
		{in: `{"\ud800":0}`, name: "\uFFFD", raw: "0", found: true},
		{in: `{}`, name: "a"},
		{in: `{"a":1}`, name: "b"},
		{in: `null`, name: "a", bad: true},
		{in: `[1]`, name: "a", bad: true},
		{in: `{"a":1} x`, name: "a", bad: true},
		{in: `{"a":01}`, name: "a", bad: true},
		{in: `{"a":1,}`, name: "a", bad: true},
		{in: "{\"a\":\"\x01\"}", name: "a", bad: true},
		{in: `{"a":"\x"}`, name: "a", bad: true},
		{in: `{"a":-}`, name: "a", bad: true},
		{in: `{"a":1.}`, name: "a", bad: true},
		{in: `{"a":1e}`, name: "a", bad: true},
		{in: `{"a":tru}`, name: "a", bad: true},
		{in: ``, name: "a", bad: true},
		{in: `{"a":` + strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth) + `}`, name: "a", bad: true},
		{in: `{"a":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}`, name: "a",
			raw: strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1), found: true},
	}
	for _, tt := range tests {
		raw, found, err := JSONField([]byte(tt.in), tt.name)
		if (err != nil) != tt.bad || found != tt.found || string(raw) != tt.raw {
			t.Errorf("JSONField(%q, %q) = %q, %v, %v; want %q, %v, bad=%v", tt.in, tt.name, raw, found, err, tt.raw, tt.found, tt.bad)
		}
	}
}

func TestJSONStringAndCompact(t *testing.T) {
	for raw, want := range map[string]string{
		`"a\"b\\c\/\n\t\r\b\f"`: "a\"b\\c/\n\t\r\b\f", `"\u00e9\u20ac"`: "é€", `"\udc00x"`: "\uFFFDx", `""`: "",
	} {
		got, ok := JSONString(nil, []byte(raw))
		if !ok || string(got) != want {
			t.Errorf("JSONString(%s) = %q, %v; want %q", raw, got, ok, want)
		}
	}
	for _, raw := range []string{`1`, `"abc`, `"\u12"`, ``, `"a"b"`} {
		if _, ok := JSONString(nil, []byte(raw)); ok {
			t.Errorf("JSONString(%s) accepted", raw)
		}
	}
	if got := JSONCompact(nil, []byte(" [ 1 , { \"a b\" : \" x\\\" \" } ]\n")); string(got) != `[1,{"a b":" x\" "}]` {
		t.Errorf("JSONCompact = %s", got)
	}
}

// FuzzJSONField checks the hand-written scanner against encoding/json on
// valid UTF-8 (encoding/json rewrites invalid UTF-8, which JSONField keeps).
func FuzzJSONField(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,2,"x"]},"a":"\u0041"}`, `[]`, `{"a":1e5}`, `{"":-0.5E+2}`} {
		f.Add([]byte(s), "a")
	}
	f.Fuzz(func(t *testing.T, in []byte, name string) {
		raw, found, err := JSONField(in, name)
		if !utf8.Valid(in) || bytes.Count(in, []byte("["))+bytes.Count(in, []byte("{")) >= MaxJSONDepth {
			return
		}
		var m map[string]json.RawMessage
		jerr := json.Unmarshal(in, &m)
		isObj := jerr == nil && m != nil
		if (err == nil) != isObj {
			t.Fatalf("JSONField(%q) err=%v, encoding/json err=%v", in, err, jerr)
		}
		if err != nil {
			return
		}
		want, ok := m[name]
		if ok != found || (ok && !bytes.Equal(raw, want)) {
			t.Fatalf("JSONField(%q, %q) = %q %v; encoding/json %q %v", in, name, raw, found, want, ok)
		}
		if found && raw[0] == '"' {
			got, _ := JSONString(nil, raw)
			var s string
			if json.Unmarshal(raw, &s) == nil && utf8.Valid(got) && string(got) != s {
				t.Fatalf("JSONString(%s) = %q, encoding/json %q", raw, got, s)
			}
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"plain é", `"plain é"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"l1\nl2\t\x00\x1f\x7f", `"l1\nl2\u0009\u0000\u001f` + "\x7f" + `"`},
	} {
		got := AppendJSONString([]byte("x:"), []byte(c.in))
		if string(got) != "x:"+c.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", c.in, got[2:], c.want)
		}
		// What it writes reads back as the same bytes.
		if text, ok := JSONString(nil, got[2:]); !ok || string(text) != c.in {
			t.Errorf("JSONString(%s) = %q, %v", got[2:], text, ok)
		}
	}
}
