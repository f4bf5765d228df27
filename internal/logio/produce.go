package logio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// DefaultMaxRecordBytes is ProduceOptions.MaxRecordBytes' default: 8 MiB,
// as for the inputs of `run`.
const DefaultMaxRecordBytes = runtime.DefaultMaxRecordBytes

// maxBatchBytes commits a batch early once its values reach this size, so
// that large records do not pile up batchSize at a time.
const maxBatchBytes = 32 << 20

// Record id derivations (ProduceOptions.IDFrom).
const (
	IDRandom  = ""        // a random UUID per record (a rerun's records are new)
	IDContent = "content" // UUIDv5 of the line: equal lines get equal ids
	IDLine    = "line"    // UUIDv5 of IDScope and the line number
)

// idNamespace is the UUIDv5 namespace of derived record ids.
var idNamespace = uuid.MustParse("6f1f4c1e-5b1a-4b8e-9a52-3d7c0a1e2b90")

// ProduceOptions configures a Producer.
type ProduceOptions struct {
	// KeyField, when set, keys each record by that top-level string field:
	// one key always lands in one partition. Default: round-robin by line.
	KeyField string
	// BatchSize is the most records per synced commit. Default 1000.
	BatchSize int
	// Skip ignores the first Skip input lines (committed by an earlier run:
	// the line number it reported). Default 0.
	Skip int64
	// IDFrom derives record ids: IDRandom (default), IDContent or IDLine,
	// so that a pipeline's dedup drops the records of a rerun.
	IDFrom string
	// IDScope names the input for IDLine ids (its line numbers only mean
	// something within it). Default: the topic.
	IDScope string
	// MaxRecordBytes bounds a line; a longer one is a *BadLineError and
	// is never buffered whole. Default DefaultMaxRecordBytes.
	MaxRecordBytes int
}

// ValidateIDFrom checks an IDFrom value.
func ValidateIDFrom(s string) error {
	switch s {
	case IDRandom, IDContent, IDLine:
		return nil
	}
	return fmt.Errorf("record ids from %q: want %q or %q", s, IDContent, IDLine)
}

// BadLineError is a line of input that is not JSON, or too long.
type BadLineError struct {
	Line          int64
	Err           error
	NoneCommitted bool // ProduceChecked: the input was refused as a whole
}

func (b *BadLineError) Error() string {
	if b.NoneCommitted {
		return fmt.Sprintf("input line %d: %v (nothing was committed)", b.Line, b.Err)
	}
	return fmt.Sprintf("input line %d: %v (the lines before it are committed)", b.Line, b.Err)
}

// Produced is what a Producer has durably committed.
type Produced struct {
	Records int64 // records committed
	Lines   int64 // input lines 1..Lines are done: committed, skipped or blank
}

// Producer appends JSON lines to a topic in synced batches. Run reads;
// Stop, from another goroutine (a signal handler), commits what Run has
// staged and ends it, so that an interrupted producer still reports a
// precise count.
type Producer struct {
	db   *storage.DB
	ti   storage.TopicInfo
	opts ProduceOptions

	mu      sync.Mutex // held while a line is staged or a batch committed, never while reading
	b       *storage.Batch
	pending int64
	bytes   int
	lineNo  int64
	stopped bool
	done    atomic.Pointer[Produced]
}

// ErrStopped is returned by Run after Stop.
var ErrStopped = errors.New("stopped")

// NewProducer prepares to append to topic ti.
func NewProducer(db *storage.DB, ti storage.TopicInfo, opts ProduceOptions) (*Producer, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.MaxRecordBytes == 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.MaxRecordBytes < 0 {
		return nil, fmt.Errorf("max record bytes %d: must be positive", opts.MaxRecordBytes)
	}
	if opts.Skip < 0 {
		return nil, fmt.Errorf("skip %d lines: must not be negative", opts.Skip)
	}
	if err := ValidateIDFrom(opts.IDFrom); err != nil {
		return nil, err
	}
	if opts.IDScope == "" {
		opts.IDScope = ti.Name
	}
	p := &Producer{db: db, ti: ti, opts: opts, b: db.NewBatch()}
	p.done.Store(&Produced{})
	return p, nil
}

// Committed returns what is durably committed so far.
func (p *Producer) Committed() Produced { return *p.done.Load() }

// flush commits the staged records; mu is held.
func (p *Producer) flush() error {
	prev := p.Committed()
	if p.pending > 0 {
		if err := p.db.Commit(p.b); err != nil {
			return err
		}
		p.b = p.db.NewBatch()
	}
	p.done.Store(&Produced{Records: prev.Records + p.pending, Lines: p.lineNo})
	p.pending, p.bytes = 0, 0
	return nil
}

// Stop commits the records staged so far, makes Run return ErrStopped at
// its next line, and returns what is committed.
func (p *Producer) Stop() (Produced, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return p.Committed(), nil
	}
	p.stopped = true
	err := p.flush()
	p.b.Close()
	return p.Committed(), err
}

// Run reads in to its end and commits its lines; it returns what is
// committed (on error too: everything before the failing line or batch).
// A line that is not JSON (or, with KeyField, not a JSON object), or is
// longer than MaxRecordBytes, is a *BadLineError after the lines before it
// are committed.
func (p *Producer) Run(in io.Reader) (Produced, error) {
	r := bufio.NewReaderSize(in, 1<<20)
	var line []byte
	for {
		var err error
		line, err = p.readLine(r, line[:0])
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return p.Committed(), ErrStopped
		}
		if len(line) > 0 || errors.Is(err, errTooLong) {
			p.lineNo++
		}
		if err != nil && err != io.EOF {
			if errors.Is(err, errTooLong) {
				err = &BadLineError{Line: p.lineNo, Err: fmt.Errorf("longer than %d bytes (the record size limit)", p.opts.MaxRecordBytes)}
			}
			return p.fail(err)
		}
		if len(line) > 0 && p.lineNo > p.opts.Skip {
			if serr := p.stage(line); serr != nil {
				return p.fail(serr)
			}
		}
		if err == io.EOF {
			ferr := p.flush()
			p.stopped = true
			p.b.Close()
			p.mu.Unlock()
			return p.Committed(), ferr
		}
		p.mu.Unlock()
	}
}

// fail commits what is staged before a failing line (a bad line's
// predecessors are good) and returns err; mu is held and released.
func (p *Producer) fail(err error) (Produced, error) {
	var bad *BadLineError
	if errors.As(err, &bad) {
		p.lineNo-- // the bad line is not done
		if ferr := p.flush(); ferr != nil {
			err = ferr
		}
	}
	p.stopped = true
	p.b.Close()
	p.mu.Unlock()
	return p.Committed(), err
}

var errTooLong = errors.New("line too long")

// readLine appends the next line of r (without its line end) to dst; it
// returns errTooLong, having buffered no more than the limit, when the line
// exceeds MaxRecordBytes.
func (p *Producer) readLine(r *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		frag, err := r.ReadSlice('\n')
		n := len(dst) + len(frag)
		if n > p.opts.MaxRecordBytes+2 { // +2: a "\r\n" line end
			return dst, errTooLong
		}
		if n > cap(dst) { // double (append grows large slices by 1.25x: more garbage), up to the limit
			dst = append(make([]byte, 0, min(max(2*cap(dst), n), p.opts.MaxRecordBytes+2)), dst...)
		}
		dst = append(dst, frag...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err != nil && err != io.EOF:
			return dst, err
		}
		dst = bytes.TrimRight(dst, "\r\n")
		if len(dst) > p.opts.MaxRecordBytes {
			return dst, errTooLong
		}
		if err == io.EOF && len(dst) == 0 {
			return dst, io.EOF
		}
		if err == io.EOF {
			return dst, nil // a last line without a newline; EOF comes next
		}
		if len(dst) == 0 {
			dst = append(dst, '\n') // a blank line: counted, then skipped by stage
		}
		return dst, nil
	}
}

// stage validates one line and adds it to the batch, committing the batch
// when full; mu is held.
func (p *Producer) stage(line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	key, err := recordKey(line, p.opts.KeyField)
	if err != nil {
		return &BadLineError{Line: p.lineNo, Err: err}
	}
	e := storage.Entry{ID: p.id(line), Key: key, Value: line}
	if err := p.b.Append(p.ti.Name, partition(p.ti, p.lineNo, key), &e); err != nil {
		return err
	}
	p.pending++
	p.bytes += len(line)
	if p.pending >= int64(p.opts.BatchSize) || p.bytes >= maxBatchBytes {
		return p.flush()
	}
	return nil
}

func (p *Producer) id(line []byte) uuid.UUID {
	switch p.opts.IDFrom {
	case IDContent:
		return uuid.NewSHA1(idNamespace, line)
	case IDLine:
		return uuid.NewSHA1(idNamespace, []byte(p.opts.IDScope+"\x00"+strconv.FormatInt(p.lineNo, 10)))
	}
	return uuid.New()
}

// partition is where line lineNo goes: by key hash, or round-robin.
func partition(ti storage.TopicInfo, lineNo int64, key []byte) uint32 {
	if key == nil {
		return uint32(lineNo) % ti.Partitions
	}
	h := fnv.New32a()
	h.Write(key)
	return h.Sum32() % ti.Partitions
}
