package schema

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/host"
)

// Migrator modules: a version may be registered with a WebAssembly module
// exporting helios_migrate (abi.md, "Schema migrators"), which then
// migrates records from the previous version instead of the rules.

// MigratorRev is one registration of a migrator module for the step into a
// version. A new module for the same step is a new MigratorRev; the older
// ones stay listed, for the audit (`schema show`).
type MigratorRev struct {
	Hash       string    `json:"hash"` // SHA-256 of the module, hex
	Size       int       `json:"size"`
	Registered time.Time `json:"registered"`
	// Sample is how many sample records the module migrated at
	// registration (0: registered without a sample).
	Sample int `json:"sample_records"`
}

// Migrator returns the migrator module in use for the step into v, or nil
// when the step uses the rules.
func (v *Version) Migrator() *MigratorRev {
	if len(v.Migrators) == 0 {
		return nil
	}
	return &v.Migrators[len(v.Migrators)-1]
}

// ErrMigrator marks a record a migrator module could not migrate: it failed
// the record, trapped on it, emitted no record or several, or emitted one
// that does not match the target version.
var ErrMigrator = errors.New("migrator")

// ErrBadMigrator means a migrator module was refused at registration: it
// does not export helios_migrate, does not start, fails a sample record, or
// there is no previous version for it to migrate from.
var ErrBadMigrator = errors.New("migrator refused")

// WithEngine makes r run migrator modules on e (a pipeline's engine, so
// that they get its limits, deadline and compilation cache). Without it, r
// creates an engine with host.Config's defaults when it first needs one.
// Call it before using r; r.Close does not close e.
func (r *Registry) WithEngine(e *host.Engine) *Registry {
	r.mods.engine = e
	return r
}

// WithHostConfig sets the configuration of the engine r creates for
// migrator modules when it has none (WithEngine). Call it before using r.
func (r *Registry) WithHostConfig(cfg host.Config) *Registry {
	r.mods.cfg = cfg
	return r
}

// Close releases the migrator modules r compiled (and its engine, if it
// created one). r may be used again afterwards: modules are compiled anew.
func (r *Registry) Close(ctx context.Context) error {
	return r.mods.close(ctx)
}

// modules compiles migrator modules once per hash and keeps idle instances.
type modules struct {
	mu     sync.Mutex
	engine *host.Engine
	own    bool // engine was created here
	cfg    host.Config
	byHash map[string]*module
}

type module struct {
	p    *host.Plugin
	mu   sync.Mutex
	idle []*host.Instance
}

func (ms *modules) close(ctx context.Context) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, m := range ms.byHash {
		m.mu.Lock()
		for _, inst := range m.idle {
			inst.Close(ctx)
		}
		m.idle = nil
		m.mu.Unlock()
		m.p.Close(ctx)
	}
	ms.byHash = nil
	var err error
	if ms.own {
		err = ms.engine.Close(ctx)
		ms.engine, ms.own = nil, false
	}
	return err
}

// get returns the compiled module hash, compiling wasm (or, when nil, the
// module stored under hash) the first time. It is refused with
// ErrBadMigrator when it does not export helios_migrate.
func (ms *modules) get(ctx context.Context, hash string, load func() ([]byte, error)) (*module, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if m, ok := ms.byHash[hash]; ok {
		return m, nil
	}
	if ms.engine == nil {
		e, err := host.NewEngine(ctx, ms.cfg)
		if err != nil {
			return nil, err
		}
		ms.engine, ms.own = e, true
	}
	wasm, err := load()
	if err != nil {
		return nil, err
	}
	p, err := ms.engine.Compile(ctx, "migrator-"+hash[:12], wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMigrator, err)
	}
	if !p.Info().Migrator {
		p.Close(ctx)
		return nil, fmt.Errorf("%w: the module does not export %s (abi.md, section Schema migrators; the Go and Rust SDKs export it for a migrate handler)", ErrBadMigrator, abi.ExportMigrate)
	}
	if ms.byHash == nil {
		ms.byHash = map[string]*module{}
	}
	m := &module{p: p}
	ms.byHash[hash] = m
	return m, nil
}

func (m *module) instance(ctx context.Context) (*host.Instance, error) {
	m.mu.Lock()
	if n := len(m.idle); n > 0 {
		inst := m.idle[n-1]
		m.idle = m.idle[:n-1]
		m.mu.Unlock()
		return inst, nil
	}
	m.mu.Unlock()
	return m.p.NewInstance(ctx, host.InstanceConfig{Partition: -1})
}

func (m *module) release(inst *host.Instance) {
	m.mu.Lock()
	m.idle = append(m.idle, inst)
	m.mu.Unlock()
}

// wasmStep migrates from one version to the next with a migrator module.
type wasmStep struct {
	mod      *module
	hash     string
	from, to *Version
	headers  []abi.Header // helios-schema: SUBJECT/from
}

// wasmStep returns the step from prev to next through the module stored
// under hash.
func (r *Registry) wasmStep(ctx context.Context, prev, next *Version, hash string) (*wasmStep, error) {
	m, err := r.mods.get(ctx, hash, func() ([]byte, error) {
		wasm, found, err := r.db.GetMigrator(hash)
		if err == nil && !found {
			err = fmt.Errorf("schema: %s version %d: its migrator module %s is missing from the data directory", next.Subject, next.Number, hash[:12])
		}
		return wasm, err
	})
	if err != nil {
		return nil, err
	}
	return newWasmStep(m, hash, prev, next), nil
}

func newWasmStep(m *module, hash string, prev, next *Version) *wasmStep {
	h := []abi.Header{{Key: []byte(Header), Value: fmt.Appendf(nil, "%s/%d", prev.Subject, prev.Number)}}
	return &wasmStep{mod: m, hash: hash, from: prev, to: next, headers: h}
}

func (s *wasmStep) failf(format string, args ...any) error {
	return fmt.Errorf("%w %s (version %d to %d): %s", ErrMigrator, s.hash[:12], s.from.Number, s.to.Number, fmt.Sprintf(format, args...))
}

// Migrate validates each record against the source version (filling in
// its defaults), runs the module over those that match, and validates
// what it emits against the target version.
func (s *wasmStep) Migrate(ctx context.Context, records [][]byte) ([][]byte, []error, error) {
	out := make([][]byte, len(records))
	errs := make([]error, len(records))
	recs := make([]abi.Record, 0, len(records))
	at := make([]int, 0, len(records)) // recs[k] is records[at[k]]
	for i, rec := range records {
		b, err := convertRecord(rec, s.from.schema, s.from.schema)
		if err != nil {
			errs[i] = err
			continue
		}
		recs = append(recs, abi.Record{Value: b, Headers: s.headers, Offset: int64(len(recs))})
		at = append(at, i)
	}
	if len(recs) > 0 {
		vals, verrs := make([][]byte, len(recs)), make([]error, len(recs))
		inst, err := s.mod.instance(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			for k := range verrs {
				verrs[k] = s.failf("cannot start: %v", err)
			}
		} else {
			err = s.call(ctx, inst, recs, vals, verrs)
			s.mod.release(inst)
			if err != nil {
				return nil, nil, err
			}
		}
		for k, i := range at {
			out[i], errs[i] = vals[k], verrs[k]
		}
	}
	if !slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		errs = nil
	}
	return out, errs, nil
}

// call runs the module over recs. When the batch fails as a whole (a trap,
// the deadline, the memory limit, a malformed output), each record is run
// alone, so that only the one responsible fails.
func (s *wasmStep) call(ctx context.Context, inst *host.Instance, recs []abi.Record, out [][]byte, errs []error) error {
	ents, err := inst.Migrate(ctx, recs)
	if err != nil {
		var pe *host.PluginError
		if ctx.Err() != nil || errors.Is(err, host.ErrCanceled) || !errors.As(err, &pe) {
			return err
		}
		if len(recs) == 1 {
			errs[0] = s.failf("%v", err)
			return nil
		}
		for k := range recs {
			if err := s.call(ctx, inst, recs[k:k+1], out[k:k+1], errs[k:k+1]); err != nil {
				return err
			}
		}
		return nil
	}
	counts := make([]int, len(recs))
	for _, e := range ents {
		k := e.InputIndex
		if e.Kind == abi.EntryKindFailed {
			errs[k] = s.failf("failed the record (code %d): %s", e.Code, e.Value)
			continue
		}
		if counts[k]++; counts[k] == 1 {
			out[k] = bytes.Clone(e.Value) // entries alias the module's memory
		}
	}
	for k := range recs {
		switch {
		case errs[k] != nil:
		case counts[k] == 0:
			errs[k] = s.failf("emitted no record for this input; a migrator emits exactly one")
		case counts[k] > 1:
			errs[k] = s.failf("emitted %d records for this input; a migrator emits exactly one", counts[k])
		default:
			if err := s.to.Validate(out[k]); err != nil {
				errs[k] = s.failf("its output does not match version %d: %v", s.to.Number, err)
			}
		}
		if errs[k] != nil {
			out[k] = nil
		}
	}
	return nil
}

// RegisterMigrator registers text, with the migrator module wasm, as a
// version of subject whose records are migrated from the previous version
// by the module instead of the rules. When text is identical to a
// registered version (2 or later), the module replaces that version's
// migrator: a new registration, listed in Version.Migrators (created false
// when it already is the one in use). A new version is checked against the
// subject's mode like Register, except for the backward direction (new
// readers reading older data), which the module provides.
//
// The module must export helios_migrate and start; each sample record (at
// the previous version) must migrate to a record valid under text: the
// first one that does not is returned as a *RecordError. The module is
// stored in the data directory in the same batch as the registration.
func (r *Registry) RegisterMigrator(ctx context.Context, subject string, text, wasm []byte, sample [][]byte) (v *Version, created bool, err error) {
	s, format, err := parseForSubject(subject, text)
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	versions, err := r.Versions(subject)
	if errors.Is(err, ErrNotFound) {
		return nil, false, fmt.Errorf("%w: subject %q has no version yet; a migrator converts records of the previous version: register version 1 without one", ErrBadMigrator, subject)
	}
	if err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256(wasm)
	hash := hex.EncodeToString(sum[:])
	rev := MigratorRev{Hash: hash, Size: len(wasm), Registered: time.Now().UTC(), Sample: len(sample)}
	var target *Version // the version the module migrates into
	for _, old := range versions {
		if sameSchema(old.schema, s) {
			target = old
		}
	}
	if target != nil {
		if target.Number == 1 {
			return nil, false, fmt.Errorf("%w: the schema is %s version 1, which has no previous version to migrate from", ErrBadMigrator, subject)
		}
		if cur := target.Migrator(); cur != nil && cur.Hash == hash {
			return target, false, nil
		}
	} else {
		mode, _, err := r.Mode(subject)
		if err != nil {
			return nil, false, err
		}
		if changes := checkAgainst(mode.withoutBackward(), s, versions); len(changes) > 0 {
			return nil, false, &IncompatibleError{Subject: subject, Mode: mode, Changes: changes}
		}
		target = &Version{Subject: subject, Number: len(versions) + 1, Format: format, Text: string(text), Registered: rev.Registered, schema: s}
	}
	prev := versions[target.Number-2]
	m, err := r.mods.get(ctx, hash, func() ([]byte, error) { return wasm, nil })
	if err != nil {
		return nil, false, err
	}
	inst, err := m.instance(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrBadMigrator, err)
	}
	_, err = inst.Migrate(ctx, nil) // a module built with an SDK but no migrator fails here
	m.release(inst)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s fails an empty batch: %v", ErrBadMigrator, abi.ExportMigrate, err)
	}
	if len(sample) > 0 {
		_, errs, err := newWasmStep(m, hash, prev, target).Migrate(ctx, sample)
		if err != nil {
			return nil, false, err
		}
		for i, e := range errs {
			if e != nil {
				if !errors.Is(e, ErrBadRecord) {
					e = fmt.Errorf("%w: %w", ErrBadMigrator, e)
				}
				return nil, false, &RecordError{Index: i, Err: e}
			}
		}
	}
	nv := *target
	nv.Migrators = append(slices.Clip(target.Migrators), rev)
	data, err := json.Marshal(stored{Format: nv.Format, Text: nv.Text, Registered: nv.Registered, Migrators: nv.Migrators})
	if err != nil {
		return nil, false, err
	}
	b := r.db.NewBatch()
	if err := b.PutMigrator(hash, wasm); err != nil {
		b.Close()
		return nil, false, err
	}
	if err := b.PutSchema(subject, uint64(nv.Number), data); err != nil {
		b.Close()
		return nil, false, err
	}
	if err := r.db.Commit(b); err != nil {
		return nil, false, fmt.Errorf("schema: register %s version %d with migrator %s: %w", subject, nv.Number, hash[:12], err)
	}
	return &nv, true, nil
}
