package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/runtime/schema"
)

// The schema step: input records validated against their writer version
// and migrated to the pipeline's reader version before the operator
// (Config.Schema), outputs validated against Config.OutputSchema.

// inputSchema migrates input records to the reader version. Migration
// chains are built once per writer version from versions read at start
// (and re-read once when a record names a version newer than those), so
// the per-record path does not read the registry.
type inputSchema struct {
	reader *schema.Version
	reg    *schema.Registry
	header []byte // SUBJECT/VERSION of the reader

	mu       sync.RWMutex
	versions []*schema.Version         // of the subject, oldest first
	chains   map[int][]schema.Migrator // writer version -> steps to the reader
	missing  map[int]miss              // writer versions that could not be read
	// missTTL is how long a version that could not be read is not looked up
	// again: records naming an unregistered version do not each read the
	// registry, and one registered later is found within missTTL.
	missTTL time.Duration
}

type miss struct {
	err error
	at  time.Time
}

func newInputSchema(reg *schema.Registry, reader *schema.Version) (*inputSchema, error) {
	versions, err := reg.Versions(reader.Subject)
	if err != nil {
		return nil, fmt.Errorf("pipeline: Schema: %w", err)
	}
	if len(versions) < reader.Number {
		return nil, fmt.Errorf("pipeline: Schema %s/%d: %w (latest is %d)", reader.Subject, reader.Number, schema.ErrNotFound, len(versions))
	}
	return &inputSchema{reader: reader, reg: reg, header: versionHeader(reader), versions: versions,
		chains: map[int][]schema.Migrator{}, missing: map[int]miss{}, missTTL: time.Second}, nil
}

func versionHeader(v *schema.Version) []byte { return fmt.Appendf(nil, "%s/%d", v.Subject, v.Number) }

// chain returns the steps from writer version n to the reader.
func (s *inputSchema) chain(ctx context.Context, n int) ([]schema.Migrator, error) {
	s.mu.RLock()
	steps, ok := s.chains[n]
	m, missed := s.missing[n]
	s.mu.RUnlock()
	if ok {
		return steps, nil
	}
	if missed && time.Since(m.at) < s.missTTL {
		return nil, m.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if steps, ok := s.chains[n]; ok {
		return steps, nil
	}
	if m, missed := s.missing[n]; missed && time.Since(m.at) < s.missTTL {
		return nil, m.err
	}
	if n > len(s.versions) { // perhaps registered since the versions were read
		if vs, err := s.reg.Versions(s.reader.Subject); err == nil {
			s.versions = vs
		}
	}
	steps, err := s.reg.Chain(ctx, s.versions, n, s.reader.Number)
	if err != nil {
		if errors.Is(err, schema.ErrNotFound) || errors.Is(err, schema.ErrIncompatible) || errors.Is(err, schema.ErrBadMigrator) {
			s.missing[n] = miss{err: err, at: time.Now()}
		}
		return nil, err
	}
	delete(s.missing, n)
	s.chains[n] = steps
	return steps, nil
}

// close releases the migrator modules the chains hold.
func (s *inputSchema) close() { s.reg.Close(context.Background()) }

// writer returns the version r was written with (its header's, or the
// first), where the header is among r's headers (-1: none), and how r is
// described in errors.
func (s *inputSchema) writer(r *abi.Record) (from, at int, written string, err error) {
	from, at = 1, -1
	for i, h := range r.Headers {
		if string(h.Key) == schema.Header {
			at = i
			break
		}
	}
	written = "no " + schema.Header + " header: read as the first version"
	if at < 0 {
		return from, at, written, nil
	}
	hv := string(r.Headers[at].Value)
	i := strings.LastIndexByte(hv, '/')
	sub, num, ok := hv[:max(i, 0)], hv[i+1:], i >= 0
	n, nerr := strconv.Atoi(num)
	if !ok || nerr != nil || n < 1 {
		return 0, 0, "", fmt.Errorf("%s header %q: want SUBJECT/VERSION", schema.Header, hv)
	}
	if sub != s.reader.Subject {
		return 0, 0, "", fmt.Errorf("written with subject %q (%s header %q); this pipeline reads subject %q", sub, schema.Header, hv, s.reader.Subject)
	}
	return n, at, "written as " + hv, nil
}

// migrateBatch migrates recs in place to the reader version (values, and
// headers naming it) and returns, for each record that cannot be read, why
// (errs is nil when all can). Records are migrated a writer version at a
// time, each group in one call per step (one module call for a migrator
// step). err fails the whole batch.
func (s *inputSchema) migrateBatch(ctx context.Context, recs []abi.Record) (errs []error, err error) {
	groups := map[int][]int{} // writer version -> indices in recs
	var order []int           // writer versions in order of appearance
	fail := func(i int, e error) {
		if errs == nil {
			errs = make([]error, len(recs))
		}
		errs[i] = e
	}
	at := make([]int, len(recs))
	written := make([]string, len(recs))
	for i := range recs {
		from, hat, w, werr := s.writer(&recs[i])
		if werr != nil {
			fail(i, werr)
			continue
		}
		at[i], written[i] = hat, w
		if _, ok := groups[from]; !ok {
			order = append(order, from)
		}
		groups[from] = append(groups[from], i)
	}
	for _, from := range order {
		idx := groups[from]
		steps, cerr := s.chain(ctx, from)
		if cerr != nil {
			for _, i := range idx {
				fail(i, fmt.Errorf("%s, read as %s: %w", written[i], s.header, cerr))
			}
			continue
		}
		vals := make([][]byte, len(idx))
		for k, i := range idx {
			vals[k] = recs[i].Value
		}
		out, rerrs, aerr := schema.Apply(ctx, steps, vals)
		if aerr != nil {
			return nil, aerr
		}
		for k, i := range idx {
			if rerrs != nil && rerrs[k] != nil {
				fail(i, fmt.Errorf("%s, read as %s: %w", written[i], s.header, rerrs[k]))
				continue
			}
			recs[i].Value, recs[i].Headers = out[k], s.stamp(recs[i].Headers, at[i])
		}
	}
	return errs, nil
}

// stamp returns headers with the schema header (at index at, -1: absent)
// naming the reader version.
func (s *inputSchema) stamp(hs []abi.Header, at int) []abi.Header {
	headers := make([]abi.Header, 0, len(hs)+1)
	headers = append(headers, hs...)
	stamp := abi.Header{Key: []byte(schema.Header), Value: s.header}
	if at >= 0 {
		headers[at] = stamp
	} else {
		headers = append(headers, stamp)
	}
	return headers
}

// migrate returns r's value at the reader version and r's headers naming
// the reader version, or an error saying why r cannot be read. A record
// without the header is read as the subject's first version.
func (s *inputSchema) migrate(r *abi.Record) (value []byte, headers []abi.Header, err error) {
	one := []abi.Record{*r}
	errs, err := s.migrateBatch(context.Background(), one)
	if err != nil {
		return nil, nil, err
	}
	if errs != nil {
		return nil, nil, errs[0]
	}
	return one[0].Value, one[0].Headers, nil
}

// migrateInputs migrates recs in place to the reader version and returns
// those that can be read; each of the others is dead-lettered
// (abi.FailSchema) as it was read, or, without a dead-letter queue, stops
// the pipeline.
func (p *Pipeline) migrateInputs(part uint32, gen *generation, recs []abi.Record) ([]abi.Record, []DLQEntry, error) {
	errs, err := p.inSchema.migrateBatch(context.Background(), recs)
	if err != nil {
		return nil, nil, fmt.Errorf("pipeline %s partition %d: schema step: %w", p.cfg.Name, part, err)
	}
	if errs == nil {
		return recs, nil, nil
	}
	var dead []DLQEntry
	kept := recs[:0]
	for i := range recs {
		if errs[i] == nil {
			kept = append(kept, recs[i])
			continue
		}
		r := &recs[i] // as read: migrateBatch leaves a failed record alone
		msg := "schema: " + errs[i].Error()
		if p.dlq == nil {
			return nil, nil, &RecordError{Source: p.cfg.Source.Identity(), Partition: part, Offset: r.Offset, ID: r.ID, Code: abi.FailSchema, Message: msg}
		}
		p.cfg.Logger.Warn("an input record does not match its schema; it goes to the dead-letter queue",
			"pipeline", p.cfg.Name, "partition", part, "offset", r.Offset, "error", errs[i])
		dead = append(dead, p.deadEntry(&work{part: part, gen: gen}, r, abi.FailSchema, msg))
	}
	return kept, dead, nil
}

// outputSchema validates output values and stamps their header.
type outputSchema struct {
	v      *schema.Version
	header []byte
}

// check validates e's value and returns e's headers block naming the
// version.
func (o *outputSchema) check(e *abi.Entry) ([]byte, error) {
	if err := o.v.Validate(e.Value); err != nil {
		return nil, fmt.Errorf("schema: an output does not match the output schema %s: %w", o.header, err)
	}
	hs, err := abi.DecodeKVBlock(e.Headers)
	if err != nil {
		return nil, fmt.Errorf("schema: an output's headers: %w", err)
	}
	stamp := abi.Header{Key: []byte(schema.Header), Value: o.header}
	replaced := false
	for i := range hs {
		if string(hs[i].Key) == schema.Header {
			hs[i], replaced = stamp, true
		}
	}
	if !replaced {
		hs = append(hs, stamp)
	}
	return abi.AppendKVBlock(nil, hs), nil
}
