// Package schema is helios-wasm's schema registry: subjects with numbered
// versions, a compatibility mode per subject (Confluent Schema Registry
// semantics), and migration of JSON records between versions.
//
// Schemas are Avro record schemas, written either as Avro (.avsc) or in the
// helios field-list notation, which maps onto Avro (RATIONALE.md). Parsing,
// compatibility verdicts and the resolution rules are hamba/avro's.
//
// The registry lives in the data directory: one registration, or one mode
// change, is one synced batch.
package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/heliosdb/helios-wasm/storage"
)

// Header is the record header naming a record's writer schema, with the
// value SUBJECT/VERSION.
const Header = "helios-schema"

// ErrNotFound means a subject or a version does not exist.
var ErrNotFound = errors.New("schema not found")

// Version is one registered schema of a subject.
type Version struct {
	Subject    string    `json:"subject"`
	Number     int       `json:"version"`
	Format     Format    `json:"format"`
	Text       string    `json:"schema"` // as registered
	Registered time.Time `json:"registered"`
	// Migrators lists the migrator modules registered for the step from
	// the previous version, oldest first; the last one is in use. Empty:
	// the step uses the rules.
	Migrators []MigratorRev `json:"migrators,omitempty"`

	schema avro.Schema
}

// Avro is the version's schema in Avro form.
func (v *Version) Avro() avro.Schema { return v.schema }

// Validate checks that a JSON record conforms to the version: every field
// without a default present with its type, and no field the schema lacks.
func (v *Version) Validate(record []byte) error {
	val, err := parseJSON(record)
	if err != nil {
		return err
	}
	_, err = convert(val, v.schema, v.schema, "")
	return err
}

// Registry is the schema registry of a data directory. It is safe for
// concurrent use; registrations are serialised, across every Registry of
// one storage.DB.
type Registry struct {
	db *storage.DB
	mu *sync.Mutex

	mods modules // migrator modules, compiled on first use
}

// registerLocks holds one mutex per open storage.DB, so that two
// Registries on one DB (the data socket's and an embedder's) never number
// two versions alike.
var registerLocks sync.Map // *storage.DB -> *sync.Mutex

// New returns the registry stored in db.
func New(db *storage.DB) *Registry {
	mu, _ := registerLocks.LoadOrStore(db, &sync.Mutex{})
	return &Registry{db: db, mu: mu.(*sync.Mutex)}
}

// stored is a version's record in the data directory.
type stored struct {
	Format     Format        `json:"format"`
	Text       string        `json:"schema"`
	Registered time.Time     `json:"registered"`
	Migrators  []MigratorRev `json:"migrators,omitempty"`
}

// parseForSubject checks subject's name and parses text, the two checks
// before any registration.
func parseForSubject(subject string, text []byte) (avro.Schema, Format, error) {
	if err := storage.ValidateName("subject", subject); err != nil {
		return nil, "", err
	}
	return Parse(text)
}

// Register adds text as the next version of subject, unless it breaks the
// subject's mode (an *IncompatibleError listing every breaking change) or is
// malformed (ErrBadSchema, with line and column). A schema identical to a
// registered version returns that version with created false.
func (r *Registry) Register(subject string, text []byte) (v *Version, created bool, err error) {
	s, format, err := parseForSubject(subject, text)
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	versions, err := r.Versions(subject)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	for _, old := range versions {
		if sameSchema(old.schema, s) {
			return old, false, nil
		}
	}
	mode, _, err := r.Mode(subject)
	if err != nil {
		return nil, false, err
	}
	if changes := checkAgainst(mode, s, versions); len(changes) > 0 {
		return nil, false, &IncompatibleError{Subject: subject, Mode: mode, Changes: changes}
	}
	v = &Version{Subject: subject, Number: len(versions) + 1, Format: format, Text: string(text), Registered: time.Now().UTC(), schema: s}
	data, err := json.Marshal(stored{Format: v.Format, Text: v.Text, Registered: v.Registered})
	if err != nil {
		return nil, false, err
	}
	b := r.db.NewBatch()
	if err := b.PutSchema(subject, uint64(v.Number), data); err != nil {
		b.Close()
		return nil, false, err
	}
	if err := r.db.Commit(b); err != nil {
		return nil, false, fmt.Errorf("schema: register %s version %d: %w", subject, v.Number, err)
	}
	return v, true, nil
}

// sameSchema compares full forms: the canonical fingerprint leaves out
// defaults and aliases, which matter to evolution.
func sameSchema(a, b avro.Schema) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

// Check reports whether text could be registered as the next version of
// subject: nil, an *IncompatibleError, or ErrBadSchema. A new subject
// accepts any valid schema.
func (r *Registry) Check(subject string, text []byte) error {
	s, _, err := Parse(text)
	if err != nil {
		return err
	}
	versions, err := r.Versions(subject)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	mode, _, err := r.Mode(subject)
	if err != nil {
		return err
	}
	if changes := checkAgainst(mode, s, versions); len(changes) > 0 {
		return &IncompatibleError{Subject: subject, Mode: mode, Changes: changes}
	}
	return nil
}

// Subjects lists the registered subjects, sorted.
func (r *Registry) Subjects() ([]string, error) { return r.db.SchemaSubjects() }

// Versions returns every version of subject, oldest first.
func (r *Registry) Versions(subject string) ([]*Version, error) {
	var out []*Version
	err := r.db.ListSchemas(subject, func(n uint64, data []byte) error {
		v, err := decode(subject, n, data)
		if err == nil {
			out = append(out, v)
		}
		return err
	})
	if err == nil && len(out) == 0 {
		return nil, fmt.Errorf("subject %q: %w (no version registered)", subject, ErrNotFound)
	}
	return out, err
}

// Get returns version n of subject.
func (r *Registry) Get(subject string, n int) (*Version, error) {
	if n < 1 {
		return nil, fmt.Errorf("subject %q version %d: %w (versions start at 1)", subject, n, ErrNotFound)
	}
	data, found, err := r.db.GetSchema(subject, uint64(n))
	if err != nil {
		return nil, err
	}
	if !found {
		latest, lerr := r.Latest(subject)
		if lerr != nil {
			return nil, lerr
		}
		return nil, fmt.Errorf("subject %q version %d: %w (latest is %d)", subject, n, ErrNotFound, latest.Number)
	}
	return decode(subject, uint64(n), data)
}

// Latest returns the newest version of subject.
func (r *Registry) Latest(subject string) (*Version, error) {
	versions, err := r.Versions(subject)
	if err != nil {
		return nil, err
	}
	return versions[len(versions)-1], nil
}

func decode(subject string, n uint64, data []byte) (*Version, error) {
	var st stored
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("schema: stored %s version %d is corrupt: %w", subject, n, err)
	}
	s, _, err := Parse([]byte(st.Text))
	if err != nil {
		return nil, fmt.Errorf("schema: stored %s version %d: %w", subject, n, err)
	}
	return &Version{Subject: subject, Number: int(n), Format: st.Format, Text: st.Text, Registered: st.Registered, Migrators: st.Migrators, schema: s}, nil
}

// Mode returns subject's effective mode and whether the subject has its own
// (otherwise it is the registry's default). Subject "" asks for the default.
func (r *Registry) Mode(subject string) (mode Mode, own bool, err error) {
	for _, s := range []string{subject, ""} {
		v, found, err := r.db.GetSchemaMode(s)
		if err != nil {
			return "", false, err
		}
		if found {
			return Mode(v), s == subject, nil
		}
		if s == "" {
			break
		}
	}
	return DefaultMode, false, nil
}

// SetMode sets subject's mode; subject "" sets the default, used by every
// subject without its own. It applies to later registrations only.
func (r *Registry) SetMode(subject string, mode Mode) error {
	if _, err := ParseMode(string(mode)); err != nil {
		return err
	}
	if subject != "" {
		if err := storage.ValidateName("subject", subject); err != nil {
			return err
		}
	}
	b := r.db.NewBatch()
	if err := b.PutSchemaMode(subject, []byte(mode)); err != nil {
		b.Close()
		return err
	}
	return r.db.Commit(b)
}

// Migrate converts JSON records written with version from of subject into
// version to, one version at a time (from < to upgrades, from > to
// downgrades). Each step applies the version's migrator module, or else the
// Avro resolution rules, and fails with ErrIncompatible when its two
// versions cannot be resolved, or with a *RecordError (record number and
// why: ErrBadRecord and the field, or the migrator's failure) for the first
// record that cannot be migrated. Nothing is returned partially.
func (r *Registry) Migrate(ctx context.Context, subject string, from, to int, records [][]byte) ([][]byte, error) {
	versions, err := r.Versions(subject)
	if err != nil {
		return nil, err
	}
	steps, err := r.Chain(ctx, versions, from, to)
	if err != nil {
		return nil, err
	}
	out, errs, err := Apply(ctx, steps, records)
	if err != nil {
		return nil, err
	}
	for i, e := range errs {
		if e != nil {
			return nil, &RecordError{Index: i, Err: e}
		}
	}
	return out, nil
}

// Chain returns the steps that migrate records written with version from of
// a subject into version to, given the subject's versions oldest first (as
// Versions returns them), so that a caller holding them builds chains
// without reading the versions again. An upgrade to a version registered
// with a migrator runs the migrator module; every other step is the rules.
// With from == to the one step only validates.
func (r *Registry) Chain(ctx context.Context, versions []*Version, from, to int) ([]Migrator, error) {
	get := func(n int) (*Version, error) {
		if n < 1 || n > len(versions) || versions[n-1].Number != n {
			subject, latest := "", 0
			if len(versions) > 0 {
				subject, latest = versions[0].Subject, versions[len(versions)-1].Number
			}
			if n < 1 {
				return nil, fmt.Errorf("subject %q version %d: %w (versions start at 1)", subject, n, ErrNotFound)
			}
			return nil, fmt.Errorf("subject %q version %d: %w (latest is %d)", subject, n, ErrNotFound, latest)
		}
		return versions[n-1], nil
	}
	vf, err := get(from)
	if err != nil {
		return nil, err
	}
	if _, err := get(to); err != nil {
		return nil, err
	}
	if from == to { // still validate the records against the version
		m, err := newRules(vf, vf)
		return []Migrator{m}, err
	}
	dir := 1
	if to < from {
		dir = -1
	}
	var steps []Migrator
	prev := vf
	for n := from + dir; ; n += dir {
		next, err := get(n)
		if err != nil {
			return nil, err
		}
		var m Migrator
		if rev := next.Migrator(); rev != nil && dir > 0 {
			m, err = r.wasmStep(ctx, prev, next, rev.Hash)
		} else {
			m, err = newRules(next, prev)
		}
		if err != nil {
			return nil, err
		}
		steps = append(steps, m)
		if n == to {
			return steps, nil
		}
		prev = next
	}
}
