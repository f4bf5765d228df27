package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// Mode is a subject's compatibility rule, with the Confluent Schema
// Registry's meaning. "Latest" is the subject's newest version; the
// transitive modes check every earlier version instead.
type Mode string

const (
	// Backward: the new schema can read data written with the latest.
	Backward Mode = "BACKWARD"
	// BackwardTransitive: the new schema can read data written with every version.
	BackwardTransitive Mode = "BACKWARD_TRANSITIVE"
	// Forward: the latest schema can read data written with the new one.
	Forward Mode = "FORWARD"
	// ForwardTransitive: every version can read data written with the new one.
	ForwardTransitive Mode = "FORWARD_TRANSITIVE"
	// Full: Backward and Forward.
	Full Mode = "FULL"
	// FullTransitive: BackwardTransitive and ForwardTransitive.
	FullTransitive Mode = "FULL_TRANSITIVE"
	// None: no check.
	None Mode = "NONE"
)

// DefaultMode is the mode of a registry where none was set (Confluent's default).
const DefaultMode = Backward

// ParseMode validates a mode name (case-insensitive).
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToUpper(s))
	switch m {
	case Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive, None:
		return m, nil
	}
	return "", fmt.Errorf("compatibility mode %q: want BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE", s)
}

func (m Mode) backward() bool {
	return m == Backward || m == BackwardTransitive || m == Full || m == FullTransitive
}
func (m Mode) forward() bool {
	return m == Forward || m == ForwardTransitive || m == Full || m == FullTransitive
}

// withoutBackward is m's forward part: the check left for a version
// registered with a migrator, which reads older data itself.
func (m Mode) withoutBackward() Mode {
	switch m {
	case Full:
		return Forward
	case FullTransitive:
		return ForwardTransitive
	case Forward, ForwardTransitive:
		return m
	}
	return None
}

func (m Mode) transitive() bool {
	return m == BackwardTransitive || m == ForwardTransitive || m == FullTransitive
}

// ErrIncompatible means a schema breaks its subject's mode; the error is an
// *IncompatibleError listing every breaking change.
var ErrIncompatible = errors.New("schema is incompatible")

// Change is one breaking change, field by field.
type Change struct {
	// Version is the registered version the new schema was checked against.
	Version int `json:"version"`
	// Direction is "backward" (the new schema reads Version's data) or
	// "forward" (Version reads the new schema's data).
	Direction string `json:"direction"`
	// Field is the dotted path of the field ("" for the record itself).
	Field string `json:"field"`
	// Reason says what breaks.
	Reason string `json:"reason"`
}

func (c Change) String() string {
	f := c.Field
	if f == "" {
		f = "(record)"
	}
	return fmt.Sprintf("%s vs version %d, field %s: %s", c.Direction, c.Version, f, c.Reason)
}

// IncompatibleError lists what a schema breaks under a subject's mode.
type IncompatibleError struct {
	Subject string
	Mode    Mode
	Changes []Change
}

func (e *IncompatibleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "subject %q (mode %s): %d breaking change(s):", e.Subject, e.Mode, len(e.Changes))
	for _, c := range e.Changes {
		b.WriteString("\n  " + c.String())
	}
	return b.String()
}

func (e *IncompatibleError) Unwrap() error { return ErrIncompatible }

// newCompat returns a fresh checker for one pair of schemas: hamba caches
// verdicts by canonical fingerprint, which leaves out defaults and aliases,
// so a shared checker would reuse the verdict of a schema that differs only
// in a default.
func newCompat() *avro.SchemaCompatibility { return avro.NewSchemaCompatibility() }

// checkAgainst returns the breaking changes of next against the versions
// (oldest first) under mode.
func checkAgainst(mode Mode, next avro.Schema, versions []*Version) []Change {
	if mode == None || len(versions) == 0 {
		return nil
	}
	against := versions[len(versions)-1:]
	if mode.transitive() {
		against = versions
	}
	var out []Change
	for _, v := range against {
		if mode.backward() {
			out = append(out, breaks(next, v.schema, v.Number, "backward", true)...)
		}
		if mode.forward() {
			out = append(out, breaks(v.schema, next, v.Number, "forward", false)...)
		}
	}
	return out
}

// breaks says why reader cannot read writer's data. The verdict is
// hamba/avro's; the walk only splits it into per-field reasons.
func breaks(reader, writer avro.Schema, version int, dir string, readerIsNew bool) []Change {
	c := newCompat()
	err := c.Compatible(reader, writer)
	if err == nil {
		return nil
	}
	var out []Change
	walk(c, reader, writer, "", readerIsNew, version, func(field, reason string) {
		out = append(out, Change{Version: version, Direction: dir, Field: field, Reason: reason})
	})
	if len(out) == 0 { // a case the walk does not split: the library's words
		out = append(out, Change{Version: version, Direction: dir, Reason: err.Error()})
	}
	return out
}

func walk(c *avro.SchemaCompatibility, reader, writer avro.Schema, path string, readerIsNew bool, version int, report func(field, reason string)) {
	r, rok := deref(reader).(*avro.RecordSchema)
	w, wok := deref(writer).(*avro.RecordSchema)
	if !rok || !wok {
		if err := c.Compatible(reader, writer); err != nil {
			report(path, typeReason(reader, writer, readerIsNew, version))
		}
		return
	}
	if r.Name() != w.Name() && !slices.Contains(r.Aliases(), w.FullName()) {
		report(path, fmt.Sprintf("record name %q does not match %q (add an alias)", r.FullName(), w.FullName()))
		return
	}
	for _, rf := range r.Fields() {
		p := join(path, rf.Name())
		wf := fieldFor(w, rf)
		if wf == nil {
			if !rf.HasDefault() {
				if readerIsNew {
					report(p, fmt.Sprintf("added without a default: data written with version %d has no value for it", version))
				} else {
					report(p, fmt.Sprintf("removed, but version %d requires it (it has no default there)", version))
				}
			}
			continue
		}
		walk(c, rf.Type(), wf.Type(), p, readerIsNew, version, report)
	}
}

// fieldFor finds the writer field that reader field rf reads: same name, or
// a name listed in rf's aliases (a rename).
func fieldFor(w *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, f := range w.Fields() {
		if f.Name() == rf.Name() {
			return f
		}
	}
	for _, f := range w.Fields() {
		if slices.Contains(rf.Aliases(), f.Name()) {
			return f
		}
	}
	return nil
}

func typeReason(reader, writer avro.Schema, readerIsNew bool, version int) string {
	oldT, newT := typeName(writer), typeName(reader)
	if !readerIsNew {
		oldT, newT = newT, oldT
	}
	if readerIsNew {
		return fmt.Sprintf("type changed from %s (version %d) to %s, which cannot read it", oldT, version, newT)
	}
	return fmt.Sprintf("type changed from %s (version %d) to %s, which version %d cannot read", oldT, version, newT, version)
}

func typeName(s avro.Schema) string {
	s = deref(s)
	switch t := s.(type) {
	case *avro.UnionSchema:
		var names []string
		for _, m := range t.Types() {
			names = append(names, typeName(m))
		}
		return "[" + strings.Join(names, ",") + "]"
	case *avro.ArraySchema:
		return "array<" + typeName(t.Items()) + ">"
	case *avro.MapSchema:
		return "map<" + typeName(t.Values()) + ">"
	case avro.NamedSchema:
		return string(s.Type()) + " " + t.FullName()
	}
	return string(s.Type())
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
