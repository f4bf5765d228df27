package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// Migrator turns a batch of JSON records written with one version into the
// next version of the chain: the built-in rules, or a registered migrator
// module (helios_migrate).
type Migrator interface {
	// Migrate returns each record at the step's target version: out[i], or,
	// when record i cannot be migrated, errs[i] (errs is nil when every
	// record migrated). err fails the whole batch (ctx canceled, a host or
	// storage failure).
	Migrate(ctx context.Context, records [][]byte) (out [][]byte, errs []error, err error)
}

// Apply runs records through steps in order; a record that fails a step
// goes no further, and errs[i] says why (errs is nil when none failed).
func Apply(ctx context.Context, steps []Migrator, records [][]byte) (out [][]byte, errs []error, err error) {
	cur := records
	var pos []int // pos[k]: the index in records of cur[k]; nil: the identity
	for _, s := range steps {
		res, rerrs, err := s.Migrate(ctx, cur)
		if err != nil {
			return nil, nil, err
		}
		if rerrs == nil {
			cur = res
			continue
		}
		if errs == nil {
			errs = make([]error, len(records))
		}
		kept, keptPos := make([][]byte, 0, len(res)), make([]int, 0, len(res))
		for k := range res {
			at := k
			if pos != nil {
				at = pos[k]
			}
			if rerrs[k] != nil {
				errs[at] = rerrs[k]
				continue
			}
			kept, keptPos = append(kept, res[k]), append(keptPos, at)
		}
		cur, pos = kept, keptPos
	}
	if pos == nil {
		return cur, errs, nil
	}
	out = make([][]byte, len(records))
	for k, at := range pos {
		out[at] = cur[k]
	}
	return out, errs, nil
}

// ErrBadRecord means a record does not match the schema it claims; the
// error names the record and the field.
var ErrBadRecord = errors.New("record does not match its schema")

// rules migrates by Avro schema resolution, applied to JSON values: a field
// the reader lacks is dropped, a field the writer lacks takes the reader's
// default, a renamed field is found through the reader's aliases, an
// optional value passes through its union, and integers promote to floats.
type rules struct {
	reader, writer avro.Schema
}

func newRules(reader, writer *Version) (rules, error) {
	if err := newCompat().Compatible(reader.schema, writer.schema); err != nil {
		return rules{}, fmt.Errorf("%w: version %d cannot read data written with version %d: %v", ErrIncompatible, reader.Number, writer.Number, err)
	}
	return rules{reader: reader.schema, writer: writer.schema}, nil
}

func (m rules) Migrate(ctx context.Context, records [][]byte) ([][]byte, []error, error) {
	out := make([][]byte, len(records))
	var errs []error
	for i, rec := range records {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		b, err := convertRecord(rec, m.reader, m.writer)
		if err != nil {
			if errs == nil {
				errs = make([]error, len(records))
			}
			errs[i] = err
			continue
		}
		out[i] = b
	}
	return out, errs, nil
}

// RecordError says which record of a batch failed to migrate.
type RecordError struct {
	Index int // 0-based, in the batch given to Migrate
	Err   error
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %d: %v", e.Index+1, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

func convertRecord(rec []byte, reader, writer avro.Schema) ([]byte, error) {
	v, err := parseJSON(rec)
	if err != nil {
		return nil, err
	}
	out, err := convert(v, reader, writer, "")
	if err != nil {
		return nil, err
	}
	return appendJSON(make([]byte, 0, len(rec)+16), out)
}

func badf(path, format string, args ...any) error {
	if path == "" {
		path = "(record)"
	}
	return fmt.Errorf("%w: field %s: %s", ErrBadRecord, path, fmt.Sprintf(format, args...))
}

// convert checks that v conforms to writer and returns it as reader sees it.
func convert(v any, reader, writer avro.Schema, path string) (any, error) {
	reader, writer = deref(reader), deref(writer)
	if wu, ok := writer.(*avro.UnionSchema); ok {
		for _, b := range wu.Types() {
			if _, err := convert(v, b, b, path); err == nil {
				return convert(v, reader, b, path)
			}
		}
		return nil, badf(path, "%s matches none of %s", describe(v), typeName(writer))
	}
	if ru, ok := reader.(*avro.UnionSchema); ok {
		for _, b := range ru.Types() {
			if newCompat().Compatible(b, writer) == nil {
				return convert(v, b, writer, path)
			}
		}
		return nil, badf(path, "%s cannot become %s", typeName(writer), typeName(reader))
	}
	switch writer.Type() {
	case avro.Null:
		if v != nil {
			return nil, badf(path, "want null, got %s", describe(v))
		}
		return nil, nil
	case avro.Boolean:
		if _, ok := v.(bool); !ok {
			return nil, badf(path, "want true or false, got %s", describe(v))
		}
		return v, nil
	case avro.Int, avro.Long:
		n, ok := v.(json.Number)
		if !ok {
			return nil, badf(path, "want an integer, got %s", describe(v))
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			return nil, badf(path, "want an integer, got %s", n)
		}
		return v, nil // as a float, the JSON number reads the same
	case avro.Float, avro.Double:
		n, ok := v.(json.Number)
		if !ok {
			return nil, badf(path, "want a number, got %s", describe(v))
		}
		if _, err := strconv.ParseFloat(string(n), 64); err != nil {
			return nil, badf(path, "want a number, got %s", n)
		}
		return v, nil
	case avro.String, avro.Bytes:
		if _, ok := v.(string); !ok {
			return nil, badf(path, "want a string, got %s", describe(v))
		}
		return v, nil
	case avro.Enum:
		s, ok := v.(string)
		if !ok || !slices.Contains(writer.(*avro.EnumSchema).Symbols(), s) {
			return nil, badf(path, "want one of %v, got %s", writer.(*avro.EnumSchema).Symbols(), describe(v))
		}
		return v, nil
	case avro.Array:
		a, ok := v.([]any)
		if !ok {
			return nil, badf(path, "want an array, got %s", describe(v))
		}
		ra, _ := reader.(*avro.ArraySchema)
		if ra == nil {
			return nil, badf(path, "array cannot become %s", typeName(reader))
		}
		out := make([]any, len(a))
		for i, e := range a {
			var err error
			if out[i], err = convert(e, ra.Items(), writer.(*avro.ArraySchema).Items(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case avro.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, badf(path, "want an object, got %s", describe(v))
		}
		rm, _ := reader.(*avro.MapSchema)
		if rm == nil {
			return nil, badf(path, "map cannot become %s", typeName(reader))
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			var err error
			if out[k], err = convert(e, rm.Values(), writer.(*avro.MapSchema).Values(), join(path, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case avro.Record:
		return convertFields(v, reader, writer.(*avro.RecordSchema), path)
	}
	return nil, badf(path, "type %s is not supported in JSON records", writer.Type())
}

func convertFields(v any, reader avro.Schema, w *avro.RecordSchema, path string) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badf(path, "want an object, got %s", describe(v))
	}
	r, _ := reader.(*avro.RecordSchema)
	if r == nil {
		return nil, badf(path, "record cannot become %s", typeName(reader))
	}
	present := 0
	for _, wf := range w.Fields() {
		switch _, ok := m[wf.Name()]; {
		case ok:
			present++
		case !wf.HasDefault() && !nullable(wf.Type()):
			return nil, badf(join(path, wf.Name()), "missing, and it has no default")
		}
	}
	if present < len(m) { // a member the writer does not have
		for k := range m {
			if !slices.ContainsFunc(w.Fields(), func(f *avro.Field) bool { return f.Name() == k }) {
				return nil, badf(join(path, k), "not in the schema")
			}
		}
	}
	// writerValue is the value of writer field wf: as written, its default,
	// or null for an optional field.
	writerValue := func(wf *avro.Field) any {
		if v, ok := m[wf.Name()]; ok {
			return v
		}
		if wf.HasDefault() {
			return jsonDefault(wf.Default())
		}
		return nil
	}
	out := make(orderedRecord, 0, len(r.Fields()))
	for _, rf := range r.Fields() {
		p := join(path, rf.Name())
		wf := fieldFor(w, rf)
		if wf == nil {
			if !rf.HasDefault() {
				return nil, badf(p, "not in the written data and no default")
			}
			def, err := convert(jsonDefault(rf.Default()), rf.Type(), rf.Type(), p)
			if err != nil {
				return nil, err
			}
			out = append(out, kv{rf.Name(), def})
			continue
		}
		val, err := convert(writerValue(wf), rf.Type(), wf.Type(), p)
		if err != nil {
			return nil, err
		}
		out = append(out, kv{rf.Name(), val})
	}
	return out, nil
}

func nullable(s avro.Schema) bool {
	if u, ok := deref(s).(*avro.UnionSchema); ok {
		return u.Nullable()
	}
	return deref(s).Type() == avro.Null
}

// jsonDefault turns hamba's parsed default into the JSON value a record
// would carry (numbers as json.Number, bytes as a string).
func jsonDefault(d any) any {
	switch t := d.(type) {
	case []byte:
		return string(t)
	case int, int32, int64, float32, float64:
		return json.Number(fmt.Sprint(t))
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = jsonDefault(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = jsonDefault(e)
		}
		return out
	}
	return d
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return "the number " + string(t)
	case string:
		return strconv.Quote(t)
	case []any:
		return "an array"
	case map[string]any, orderedRecord:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// orderedRecord marshals a record's fields in schema order.
type orderedRecord []kv

type kv struct {
	k string
	v any
}

func (o orderedRecord) MarshalJSON() ([]byte, error) { return appendJSON(nil, o) }

// appendJSON appends v's JSON encoding. The values convert produces take
// fast paths (records are migrated one by one in pipelines); anything else,
// and strings or numbers that need escaping or checking, go through
// encoding/json.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case json.Number:
		if plainNumber(string(t)) {
			return append(b, t...), nil
		}
	case string:
		if plainString(t) {
			b = append(b, '"')
			b = append(b, t...)
			return append(b, '"'), nil
		}
	case orderedRecord:
		b = append(b, '{')
		for i, f := range t {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, f.k); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendJSON(b, f.v); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// plainString reports whether s encodes as itself between quotes, as
// encoding/json would write it (which escapes <, > and &).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// plainNumber reports whether n can be written as it is: numbers come from
// the decoder (valid JSON) or from a default printed by fmt, whose only
// non-JSON forms (NaN, +Inf) fail this and go through encoding/json.
func plainNumber(n string) bool {
	return n != "" && strings.IndexFunc(n, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '-' || r == '+' || r == '.' || r == 'e' || r == 'E')
	}) < 0
}
