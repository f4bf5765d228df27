package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hamba/avro/v2"
)

// Format is the notation a schema was written in.
type Format string

const (
	// FormatHelios is the field-list notation:
	// {"name":"order","fields":[{"name":"order_id","type":"integer"}]}.
	FormatHelios Format = "helios"
	// FormatAvro is an Avro schema (.avsc) whose top level is a record.
	FormatAvro Format = "avro"
)

// ErrBadSchema means a schema text could not be parsed; the error says
// where (line and column) and what is wrong.
var ErrBadSchema = errors.New("bad schema")

// Parse reads a schema in either format: an object with a "type" member is
// Avro, one without is the helios field list. The result is always an Avro
// record schema, which is what compatibility and migration work on.
func Parse(text []byte) (avro.Schema, Format, error) {
	root, err := parseNodes(text)
	if err != nil {
		return nil, "", err
	}
	if root.kind != '{' {
		return nil, "", posErr(text, root.off, "want a JSON object at the top level, got %s", root.kindName())
	}
	format := FormatHelios
	var src []byte
	if root.get("type") != nil {
		format, src = FormatAvro, text
	} else {
		conv := converter{text: text}
		v, err := conv.record(root, "")
		if err != nil {
			return nil, "", err
		}
		if src, err = json.Marshal(v); err != nil {
			return nil, "", err
		}
	}
	// A fresh cache per parse: hamba's default cache is global, and two
	// versions of one record name must not see each other.
	s, err := avro.ParseBytesWithCache(src, "", &avro.SchemaCache{})
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadSchema, err)
	}
	if s.Type() != avro.Record {
		return nil, "", posErr(text, root.off, "the top level must be a record, got %s", s.Type())
	}
	return s, format, nil
}

// converter maps the helios notation onto Avro (see RATIONALE.md, "Why Avro
// rules for schemas?").
type converter struct{ text []byte }

var heliosTypes = map[string]any{
	"integer":   "long",
	"float":     "double",
	"string":    "string",
	"boolean":   "boolean",
	"bytes":     "bytes",
	"timestamp": map[string]any{"type": "long", "logicalType": "timestamp-millis"},
}

func (c converter) record(n *node, fallbackName string) (map[string]any, error) {
	name := fallbackName
	if nn := n.get("name"); nn != nil {
		if nn.kind != '"' {
			return nil, posErr(c.text, nn.off, `"name" must be a string`)
		}
		name = nn.str
	}
	if name == "" {
		return nil, posErr(c.text, n.off, `a record needs a "name"`)
	}
	fs := n.get("fields")
	if fs == nil || fs.kind != '[' {
		return nil, posErr(c.text, n.off, `record %q needs a "fields" array`, name)
	}
	fields := []any{}
	for _, f := range fs.arr {
		af, err := c.field(f)
		if err != nil {
			return nil, err
		}
		fields = append(fields, af)
	}
	out := map[string]any{"type": "record", "name": name, "fields": fields}
	if a := n.get("aliases"); a != nil {
		out["aliases"] = a.value()
	}
	return out, nil
}

func (c converter) field(f *node) (map[string]any, error) {
	if f.kind != '{' {
		return nil, posErr(c.text, f.off, "a field must be an object, got %s", f.kindName())
	}
	for _, k := range f.keys {
		switch k {
		case "name", "type", "optional", "default", "default_value", "aliases", "items", "values", "fields", "doc":
		default:
			return nil, posErr(c.text, f.obj[k].off, "unknown field attribute %q (want name, type, optional, default, aliases, items, values, fields, doc)", k)
		}
	}
	nn := f.get("name")
	if nn == nil || nn.kind != '"' || nn.str == "" {
		return nil, posErr(c.text, f.off, `a field needs a "name" string`)
	}
	typ, err := c.typ(f, nn.str)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"name": nn.str}
	optional := false
	if o := f.get("optional"); o != nil {
		if o.kind != 't' && o.kind != 'f' {
			return nil, posErr(c.text, o.off, "field %q: \"optional\" must be true or false", nn.str)
		}
		optional = o.kind == 't'
	}
	def := f.get("default")
	if d2 := f.get("default_value"); d2 != nil {
		if def != nil {
			return nil, posErr(c.text, d2.off, "field %q: give \"default\" or \"default_value\", not both", nn.str)
		}
		def = d2
	}
	hasDef := def != nil && def.kind != 'n' // a null default means "no default" unless optional
	switch {
	case optional && hasDef:
		// Avro wants the default's type first in the union.
		out["type"] = []any{typ, "null"}
		out["default"] = def.value()
	case optional:
		out["type"] = []any{"null", typ}
		out["default"] = nil
	default:
		out["type"] = typ
		if hasDef {
			out["default"] = def.value()
		}
	}
	if a := f.get("aliases"); a != nil {
		out["aliases"] = a.value()
	}
	if d := f.get("doc"); d != nil {
		out["doc"] = d.value()
	}
	return out, nil
}

// typ converts the type of n (a field or an items/values object); name
// names nested records.
func (c converter) typ(n *node, name string) (any, error) {
	t := n.get("type")
	if t == nil {
		return nil, posErr(c.text, n.off, "%q needs a \"type\"", name)
	}
	if t.kind != '"' {
		return nil, posErr(c.text, t.off, "%q: \"type\" must be a string (integer, float, string, boolean, bytes, timestamp, array, map or record)", name)
	}
	if at, ok := heliosTypes[t.str]; ok {
		return at, nil
	}
	switch t.str {
	case "array", "map":
		member := map[string]string{"array": "items", "map": "values"}[t.str]
		m := n.get(member)
		if m == nil {
			return nil, posErr(c.text, t.off, "%q: an %s needs %q (a type name or an object with a \"type\")", name, t.str, member)
		}
		if m.kind == '"' { // shorthand: "items": "integer"
			m = &node{kind: '{', off: m.off, keys: []string{"type"}, obj: map[string]*node{"type": m}}
		}
		if m.kind != '{' {
			return nil, posErr(c.text, m.off, "%q: %q must be a type name or an object", name, member)
		}
		inner, err := c.typ(m, name+"_"+member)
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": t.str, member: inner}, nil
	case "record":
		return c.record(n, name)
	}
	return nil, posErr(c.text, t.off, "%q: unknown type %q (want integer, float, string, boolean, bytes, timestamp, array, map or record)", name, t.str)
}

// node is a parsed JSON value with its byte offset, so that errors can say
// where they are.
type node struct {
	kind byte // '{' '[' '"' '0' (number) 't' 'f' 'n'
	off  int64
	str  string // string or number text
	keys []string
	obj  map[string]*node
	arr  []*node
}

func (n *node) get(k string) *node {
	if n.kind != '{' {
		return nil
	}
	return n.obj[k]
}

func (n *node) kindName() string {
	return map[byte]string{'{': "an object", '[': "an array", '"': "a string", '0': "a number", 't': "true", 'f': "false", 'n': "null"}[n.kind]
}

func (n *node) value() any {
	switch n.kind {
	case '{':
		m := map[string]any{}
		for k, v := range n.obj {
			m[k] = v.value()
		}
		return m
	case '[':
		a := []any{}
		for _, v := range n.arr {
			a = append(a, v.value())
		}
		return a
	case '"':
		return n.str
	case '0':
		return json.Number(n.str)
	case 't', 'f':
		return n.kind == 't'
	}
	return nil
}

func parseNodes(text []byte) (*node, error) {
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	n, err := readNode(d, text)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, posErr(text, d.InputOffset(), "unexpected data after the schema")
	}
	return n, nil
}

func readNode(d *json.Decoder, text []byte) (*node, error) {
	off := d.InputOffset()
	tok, err := d.Token()
	if err != nil {
		return nil, syntaxErr(text, d, err)
	}
	// InputOffset is before any whitespace; point at the token itself.
	for off < int64(len(text)) && strings.ContainsRune(" \t\r\n,:", rune(text[off])) {
		off++
	}
	n := &node{off: off}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.kind, n.obj = '{', map[string]*node{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, syntaxErr(text, d, err)
				}
				k := kt.(string)
				v, err := readNode(d, text)
				if err != nil {
					return nil, err
				}
				if _, dup := n.obj[k]; dup {
					return nil, posErr(text, v.off, "duplicate member %q", k)
				}
				n.keys = append(n.keys, k)
				n.obj[k] = v
			}
		case '[':
			n.kind = '['
			for d.More() {
				v, err := readNode(d, text)
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, v)
			}
		}
		if _, err := d.Token(); err != nil { // the closing delimiter
			return nil, syntaxErr(text, d, err)
		}
	case string:
		n.kind, n.str = '"', t
	case json.Number:
		n.kind, n.str = '0', string(t)
	case bool:
		n.kind = 'f'
		if t {
			n.kind = 't'
		}
	case nil:
		n.kind = 'n'
	}
	return n, nil
}

func syntaxErr(text []byte, d *json.Decoder, err error) error {
	off := d.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return posErr(text, int64(len(text)), "unexpected end of file")
	}
	return posErr(text, off, "%v", err)
}

// posErr wraps ErrBadSchema with the 1-based line and column of off.
func posErr(text []byte, off int64, format string, args ...any) error {
	off = min(max(off, 0), int64(len(text)))
	line := 1 + bytes.Count(text[:off], []byte("\n"))
	col := off - int64(bytes.LastIndexByte(text[:off], '\n'))
	return fmt.Errorf("%w: line %d, column %d: %s", ErrBadSchema, line, col, fmt.Sprintf(format, args...))
}
