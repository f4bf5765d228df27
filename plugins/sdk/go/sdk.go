package helios

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/heliosdb/helios-wasm/abi"
	"github.com/heliosdb/helios-wasm/plugins/sdk/go/internal/hook"
)

func init() {
	hook.RunBatch = func(in []byte, op any) []byte { return runBatch(in, op.(Operator)) }
}

// Record is one input record. Its byte slices are only valid during the call
// to the operator: copy them to keep them.
type Record struct {
	Key       []byte
	Value     []byte
	Partition uint32
	Offset    int64    // source position (log offset or file byte offset)
	Timestamp int64    // event time, Unix milliseconds
	ID        [16]byte // message id (UUID bytes)
	headers   []byte
}

// Header returns the value of the first header called name.
func (r *Record) Header(name string) ([]byte, bool) {
	it, err := abi.NewKVIter(r.headers)
	if err != nil {
		return nil, false
	}
	for {
		k, v, ok := it.Next()
		if !ok {
			return nil, false
		}
		if string(k) == name {
			return v, true
		}
	}
}

// Header is one record header (name and value).
type Header = abi.Header

// Output is a fully specified output record for Emitter.EmitRecord.
type Output struct {
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp int64 // 0 keeps the input record's timestamp
}

// Emitter collects the outputs of one input record.
type Emitter struct {
	w     *abi.OutputWriter
	index uint32
	ts    int64
	hbuf  []byte
}

// Emit outputs a record with the input's timestamp and no headers. The bytes
// are copied: the caller may reuse them.
func (e *Emitter) Emit(key, value []byte) {
	e.w.Emit(e.index, key, value, nil, e.ts)
}

// EmitRecord outputs a record with headers and, optionally, its own timestamp.
func (e *Emitter) EmitRecord(o Output) {
	ts := o.Timestamp
	if ts == 0 {
		ts = e.ts
	}
	e.hbuf = abi.AppendKVBlock(e.hbuf[:0], o.Headers)
	e.w.Emit(e.index, o.Key, o.Value, e.hbuf, ts)
}

// Operator processes one record. Returning an error marks that record failed
// (without failing the rest of the batch); outputs emitted before the error
// are discarded. Wrap the error with Retryable or WithCode to classify it.
type Operator func(r *Record, out *Emitter) error

// InitFunc validates the operator's configuration once, before the first
// batch. Returning an error refuses the plugin with that message.
type InitFunc func(cfg Config) error

var (
	operator Operator
	migrator Operator
	onInit   InitFunc
)

// Handle registers the operator. Call it from an init function.
func Handle(op Operator) { operator = op }

// HandleMigrate registers a schema migrator (abi.md, "Schema migrators"),
// called through helios_migrate: each record's Value is a JSON record at
// schema version N, and the migrator emits exactly one record, its value at
// version N+1 (key and headers are ignored), or returns an error for it. A
// module may register a migrator and no operator. Call it from an init
// function.
func HandleMigrate(m Operator) { migrator = m }

// OnInit registers a configuration check run by helios_init.
func OnInit(fn InitFunc) { onInit = fn }

// codedError carries an ABI failure code.
type codedError struct {
	code uint32
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// Retryable marks err as transient: the host may retry the record.
func Retryable(err error) error { return &codedError{code: abi.FailRetryable, err: err} }

// WithCode attaches an application failure code (>= abi.FailUserBase) to err.
func WithCode(code uint32, err error) error {
	if code < abi.FailUserBase {
		code = abi.FailGeneric
	}
	return &codedError{code: code, err: err}
}

// InvalidInput marks err as a record the operator cannot parse.
func InvalidInput(err error) error { return &codedError{code: abi.FailInvalidInput, err: err} }

// Config is the operator's configuration (--config key=value).
type Config map[string]string

// Get returns the value of key and whether it was set.
func (c Config) Get(key string) (string, bool) { v, ok := c[key]; return v, ok }

// Lookup returns the value of key, or def when it is unset.
func (c Config) Lookup(key, def string) string {
	if v, ok := c[key]; ok {
		return v
	}
	return def
}

var config Config

// GetConfig returns the configuration passed to helios_init.
func GetConfig() Config { return config }

func initConfig(buf []byte) string {
	it, err := abi.NewKVIter(buf)
	if err != nil {
		return "helios sdk: " + err.Error()
	}
	config = make(Config, it.Len())
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		config[string(k)] = string(v)
	}
	if operator == nil && migrator == nil {
		return "helios sdk: no operator registered: call helios.Handle (or helios.HandleMigrate for a schema migrator) from an init function"
	}
	if onInit != nil {
		if err := onInit(config); err != nil {
			return err.Error()
		}
	}
	return ""
}

var (
	out  abi.OutputWriter
	rec  Record
	view abi.RecordView
	emit Emitter
)

// processBatch runs the operator over every record of an encoded batch and
// returns the encoded output.
func processBatch(in []byte) []byte {
	if operator == nil {
		out.Reset()
		return out.BatchError(abi.BatchOperatorErr, "helios sdk: this module has no operator (helios.Handle); it is a schema migrator")
	}
	return runBatch(in, operator)
}

// migrateBatch runs the migrator over every record of an encoded batch
// (helios_migrate).
func migrateBatch(in []byte) []byte {
	if migrator == nil {
		out.Reset()
		return out.BatchError(abi.BatchOperatorErr, "helios sdk: this module has no schema migrator (helios.HandleMigrate)")
	}
	return runBatch(in, migrator)
}

// runBatch runs op over every record of an encoded batch and returns the
// encoded output. It reuses package-level buffers: in steady state it
// allocates nothing per record beyond what op allocates.
func runBatch(in []byte, op Operator) []byte {
	out.Reset()
	br, err := abi.NewBatchReader(in)
	if err != nil {
		return out.BatchError(abi.BatchBadInput, err.Error())
	}
	emit.w = &out
	if hook.OnBatch != nil {
		hook.OnBatch()
	}
	inBatch = true
	batch.reset()
	defer func() { inBatch = false }()
	for i := uint32(0); ; i++ {
		ok, err := br.Next(&view)
		if err != nil {
			return out.BatchError(abi.BatchBadInput, err.Error())
		}
		if !ok {
			break
		}
		rec = Record{Key: view.Key, Value: view.Value, Partition: view.Partition, Offset: view.Offset,
			Timestamp: view.Timestamp, ID: view.ID, headers: view.Headers}
		emit.index, emit.ts = i, view.Timestamp
		mark := out.Mark()
		pending.reset()
		err = op(&rec, &emit)
		if err == nil {
			batch.merge(&pending)
		} else {
			// A failed record leaves nothing behind: no outputs, no state.
			out.Rewind(mark)
			code := abi.FailGeneric
			var ce *codedError
			if errors.As(err, &ce) {
				code = ce.code
			}
			out.Fail(i, code, err.Error())
		}
	}
	if err := batch.flush(); err != nil {
		return out.BatchError(abi.BatchOperatorErr, err.Error())
	}
	return out.Finish()
}

// Log levels.
const (
	LevelDebug = abi.LogDebug
	LevelInfo  = abi.LogInfo
	LevelWarn  = abi.LogWarn
	LevelError = abi.LogError
)

// Log writes msg to the host's log at level; the host adds the pipeline,
// plugin and record position.
func Log(level int32, msg string) {
	b := []byte(msg)
	hostLog(level, ptrOf(b), uint32(len(b)))
}

// Logf formats and logs a message.
func Logf(level int32, format string, args ...any) { Log(level, fmt.Sprintf(format, args...)) }

func ptrOf(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
