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
func (s *inputSchema) chain(n int) ([]schema.Migrator, error) {
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
	steps, err := schema.Chain(s.versions, n, s.reader.Number)
	if err != nil {
		if errors.Is(err, schema.ErrNotFound) || errors.Is(err, schema.ErrIncompatible) {
			s.missing[n] = miss{err: err, at: time.Now()}
		}
		return nil, err
	}
	delete(s.missing, n)
	s.chains[n] = steps
	return steps, nil
}

// migrate returns r's value at the reader version and r's headers naming
// the reader version, or an error saying why r cannot be read. A record
// without the header is read as the subject's first version.
func (s *inputSchema) migrate(r *abi.Record) (value []byte, headers []abi.Header, err error) {
	subject, from := s.reader.Subject, 1
	at := -1
	for i, h := range r.Headers {
		if string(h.Key) == schema.Header {
			at = i
			break
		}
	}
	written := "no " + schema.Header + " header: read as the first version"
	if at >= 0 {
		hv := string(r.Headers[at].Value)
		i := strings.LastIndexByte(hv, '/')
		sub, num, ok := hv[:max(i, 0)], hv[i+1:], i >= 0
		n, nerr := strconv.Atoi(num)
		if !ok || nerr != nil || n < 1 {
			return nil, nil, fmt.Errorf("%s header %q: want SUBJECT/VERSION", schema.Header, hv)
		}
		if sub != subject {
			return nil, nil, fmt.Errorf("written with subject %q (%s header %q); this pipeline reads subject %q", sub, schema.Header, hv, subject)
		}
		from, written = n, "written as "+hv
	}
	steps, err := s.chain(from)
	if err != nil {
		return nil, nil, fmt.Errorf("%s, read as %s: %w", written, s.header, err)
	}
	recs := [][]byte{r.Value}
	for _, m := range steps {
		if recs, err = m.Migrate(context.Background(), recs); err != nil {
			var re *schema.RecordError
			if errors.As(err, &re) {
				err = re.Err
			}
			return nil, nil, fmt.Errorf("%s, read as %s: %w", written, s.header, err)
		}
	}
	headers = make([]abi.Header, 0, len(r.Headers)+1)
	headers = append(headers, r.Headers...)
	stamp := abi.Header{Key: []byte(schema.Header), Value: s.header}
	if at >= 0 {
		headers[at] = stamp
	} else {
		headers = append(headers, stamp)
	}
	return recs[0], headers, nil
}

// migrateInputs migrates recs in place to the reader version and returns
// those that can be read; each of the others is dead-lettered
// (abi.FailSchema) as it was read, or, without a dead-letter queue, stops
// the pipeline.
func (p *Pipeline) migrateInputs(part uint32, gen *generation, recs []abi.Record) ([]abi.Record, []DLQEntry, error) {
	var dead []DLQEntry
	kept := recs[:0]
	for i := range recs {
		r := &recs[i]
		value, headers, err := p.inSchema.migrate(r)
		if err != nil {
			msg := "schema: " + err.Error()
			if p.dlq == nil {
				return nil, nil, &RecordError{Source: p.cfg.Source.Identity(), Partition: part, Offset: r.Offset, ID: r.ID, Code: abi.FailSchema, Message: msg}
			}
			p.cfg.Logger.Warn("an input record does not match its schema; it goes to the dead-letter queue",
				"pipeline", p.cfg.Name, "partition", part, "offset", r.Offset, "error", err)
			dead = append(dead, p.deadEntry(&work{part: part, gen: gen}, r, abi.FailSchema, msg))
			continue
		}
		r.Value, r.Headers = value, headers
		kept = append(kept, *r)
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
