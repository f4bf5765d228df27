package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/heliosdb/helios-wasm/abi"
)

// Sentinel errors. A *PluginError wraps exactly one of them, so callers can
// decide with errors.Is whether to refuse a plugin, retry a batch, or isolate
// a poison record.
var (
	// Load-time errors: the plugin is unusable; fix the module.
	ErrNotWasm        = errors.New("not a WebAssembly module")
	ErrInvalidModule  = errors.New("invalid WebAssembly module")
	ErrMissingExport  = errors.New("missing or mistyped ABI export")
	ErrABIVersion     = errors.New("unsupported ABI version")
	ErrUnknownImport  = errors.New("imports a function the host does not provide")
	ErrInit           = errors.New("operator refused its configuration")
	ErrInstantiate    = errors.New("instantiation failed")
	ErrMemoryTooLarge = errors.New("initial memory exceeds the limit")

	// Batch-time errors: the instance is discarded; the batch can be retried
	// on a fresh instance or bisected to find a poison record.
	ErrTrap        = errors.New("plugin trapped")
	ErrDeadline    = errors.New("batch deadline exceeded")
	ErrMemoryLimit = errors.New("plugin reached its memory limit")
	ErrBadOutput   = errors.New("plugin returned a malformed output")
	ErrBatchFailed = errors.New("plugin failed the whole batch")
	ErrCanceled    = errors.New("batch canceled")
	ErrOutputLimit = errors.New("plugin exceeded the per-batch output limit")
	ErrStateLimit  = errors.New("plugin exceeded the per-batch state write limit")
)

// PluginError describes a failure of one plugin, at load time or while
// processing a batch.
type PluginError struct {
	Plugin    string // plugin name (usually its file name)
	Hash      string // short content hash
	Op        string // "compile", "instantiate", "init", "process", "migrate", "window_close"
	Partition int32  // -1 when not processing
	Batch     uint64 // batch sequence number within the instance, when processing
	Kind      error  // one of the sentinel errors above
	Detail    error  // the underlying cause, if any
	Stderr    string // the tail of what the guest wrote to stderr, if anything
}

func (e *PluginError) Error() string {
	where := fmt.Sprintf("plugin %s (%s) %s", e.Plugin, e.Hash, e.Op)
	if e.Op == "process" || e.Op == "migrate" || e.Op == "window_close" {
		where += fmt.Sprintf(" partition %d batch %d", e.Partition, e.Batch)
	}
	return where + ": " + e.what(e.detail())
}

func (e *PluginError) detail() string {
	if e.Detail == nil {
		return ""
	}
	return e.Detail.Error()
}

// what is the failure without where it happened.
func (e *PluginError) what(detail string) string {
	s := e.Kind.Error()
	if detail != "" {
		s += ": " + detail
	}
	if e.Stderr != "" {
		s += "; guest stderr: " + e.Stderr
	}
	return s
}

// Brief describes the failure in one line that does not depend on where it
// happened (plugin, partition, batch): its kind, the first line of its
// cause (not a wasm stack trace) and what the guest wrote to stderr.
func (e *PluginError) Brief() string {
	first, _, _ := strings.Cut(e.detail(), "\n")
	return strings.Join(strings.Fields(e.what(first)), " ")
}

// Unwrap exposes both the sentinel and the cause to errors.Is / errors.As.
func (e *PluginError) Unwrap() []error {
	if e.Detail == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Detail}
}

// IsLoadError reports whether err means the module itself is unusable (as
// opposed to a failure of one batch).
func IsLoadError(err error) bool {
	for _, k := range []error{ErrNotWasm, ErrInvalidModule, ErrMissingExport, ErrABIVersion, ErrUnknownImport, ErrInit, ErrInstantiate, ErrMemoryTooLarge} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// RecordFailCode is the ABI failure code recorded for a record isolated as
// the cause of a batch-time plugin failure err, and whether err is one (a
// trap, deadline, memory limit, malformed output, output or state limit, or
// failed batch: not a load
// error, a cancellation or a state store failure).
func RecordFailCode(err error) (uint32, bool) {
	switch {
	case errors.Is(err, ErrDeadline):
		return abi.FailDeadline, true
	case errors.Is(err, ErrMemoryLimit):
		return abi.FailMemoryLimit, true
	case errors.Is(err, ErrBadOutput):
		return abi.FailBadOutput, true
	case errors.Is(err, ErrOutputLimit):
		return abi.FailOutputLimit, true
	case errors.Is(err, ErrStateLimit):
		return abi.FailStateLimit, true
	case errors.Is(err, ErrBatchFailed):
		return abi.FailBatchFailed, true
	case errors.Is(err, ErrTrap):
		return abi.FailTrap, true
	}
	return 0, false
}
