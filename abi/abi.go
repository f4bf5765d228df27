// Package abi is the single source of truth for helios-wasm ABI v1: the names
// of exports and imports, status and failure codes, and the byte layout of the
// batch and output buffers exchanged between the host and a guest operator.
//
// The host (package host) and every guest SDK derive from these constants; the
// package has no dependencies so that it compiles for GOOS=wasip1 as well as
// for the host. abi.md at the repository root is the prose specification; a
// test keeps the two in agreement.
package abi

//go:generate go run ../internal/abigen/cmd ..

// Version is the ABI version this package describes. A module exports it from
// helios_abi_version; the host refuses any other value.
const Version uint32 = 1

// HostModule is the import namespace of the host functions. It carries the
// major ABI version so that a future v2 can be served side by side.
const HostModule = "helios_v1"

// InternalModule is reserved: the host adds an import from it to every
// module it loads (see abi.md, Limits). Guests must not import from it.
const InternalModule = "helios_internal"

// Exports a guest operator module must (or may) provide.
const (
	ExportABIVersion = "helios_abi_version" // () -> i32
	ExportAlloc      = "helios_alloc"       // (len i32) -> ptr i32
	ExportDealloc    = "helios_dealloc"     // (ptr i32, len i32)
	ExportInit       = "helios_init"        // (cfg_ptr i32, cfg_len i32) -> i64
	ExportProcess    = "helios_process"     // (in_ptr i32, in_len i32) -> i64
	// ExportMigrate is a schema migrator's export (optional, still v1):
	// (in_ptr i32, in_len i32) -> i64, called like ExportProcess over a
	// batch of records at schema version N, returning them at N+1 (abi.md,
	// "Schema migrators"). The host validates its signature when present.
	ExportMigrate = "helios_migrate"
	// ExportWindowClose is a window operator's export (optional, still v1):
	// (in_ptr i32, in_len i32) -> i64, called like ExportProcess once per
	// (window, batch of due keys) when a window closes (abi.md, "Windows").
	// A pipeline with windows refuses a module without it.
	ExportWindowClose = "helios_window_close"
	// ExportInitialize is the WASI reactor initialiser; called once when
	// exported, before anything else.
	ExportInitialize = "_initialize"
	// Every export name starting with "helios_" is reserved for the ABI.
)

// RequiredExports lists the exports every operator module must provide.
var RequiredExports = []string{ExportABIVersion, ExportAlloc, ExportDealloc, ExportInit, ExportProcess}

// Host functions in the HostModule namespace.
const (
	ImportLog         = "log"          // (level i32, ptr i32, len i32)
	ImportStateGet    = "state_get"    // (key_ptr, key_len, buf_ptr, buf_cap i32) -> i32
	ImportStatePut    = "state_put"    // (key_ptr, key_len, val_ptr, val_len i32) -> i32
	ImportStateDelete = "state_delete" // (key_ptr, key_len i32) -> i32
	ImportConfigGet   = "config_get"   // (key_ptr, key_len, buf_ptr, buf_cap i32) -> i32
	// ImportWindowGet is an addition to v1 (abi.md, "Windows"): during a
	// call made for a window it writes the window (WindowInfoSize bytes)
	// when buf_cap allows and returns WindowInfoSize; StatusNotFound outside.
	ImportWindowGet = "window_get" // (buf_ptr, buf_cap i32) -> i32
)

// Layout of the window descriptor written by ImportWindowGet. All integers
// little-endian.
//
//	0  i64 start_ms  the window's first millisecond
//	8  i64 end_ms    the window's end, exclusive
//	16 u32 flags     WindowFlag* bits
//	20 u32 reserved, 0
const (
	WindowInfoSize = 24

	OffWindowStart = 0
	OffWindowEnd   = 8
	OffWindowFlags = 16

	// WindowFlagUpdates: the pipeline emits updates (--emit updates): a
	// window operator emits its current result after every record, and
	// nothing from its close call.
	WindowFlagUpdates uint32 = 1 << 0
	// WindowFlagClosing: this is the window's close call
	// (ExportWindowClose), not a call of ExportProcess.
	WindowFlagClosing uint32 = 1 << 1
)

// Status codes returned by host functions. Non-negative values are successes
// (for the *_get functions: the value's length); negative values are errors.
// They are stable: a guest may switch on them.
const (
	StatusOK          int32 = 0
	StatusNotFound    int32 = -1 // key absent
	StatusBadArgument int32 = -2 // a pointer/length pair lies outside guest memory
	StatusTooLarge    int32 = -3 // key or value exceeds MaxStateKeyLen / MaxStateValueLen
	StatusNotAllowed  int32 = -4 // state access outside helios_process
	StatusInternal    int32 = -5 // host storage failure; the batch will be retried
)

// Failure codes a guest attaches to an input record it marks as failed
// (EntryKindFailed). Codes below FailUserBase are reserved for the ABI.
const (
	FailGeneric      uint32 = 1 // the operator rejected the record
	FailRetryable    uint32 = 2 // a transient failure; the host may retry
	FailInvalidInput uint32 = 3 // the record cannot be parsed by the operator
	FailUserBase     uint32 = 1000
)

// Failure codes the host assigns (never a guest) when it isolates a record
// that made the plugin fail, or cannot read an input record. They appear in
// dead-letter entries next to the guest's codes.
const (
	FailTrap           uint32 = 100 // the plugin trapped on this record
	FailDeadline       uint32 = 101 // the plugin ran past the batch deadline on this record
	FailMemoryLimit    uint32 = 102 // the plugin hit its memory limit on this record
	FailBadOutput      uint32 = 103 // the plugin returned a malformed output for this record
	FailBatchFailed    uint32 = 104 // the plugin failed the whole batch containing only this record
	FailOutputLimit    uint32 = 105 // the plugin's outputs for this record exceeded the host's per-batch output limit
	FailStateLimit     uint32 = 106 // the plugin's state writes for this record exceeded the host's per-batch state limit
	FailMalformedInput uint32 = 110 // the source could not parse the record (e.g. not JSON)
	FailRecordTooLarge uint32 = 111 // the input record is longer than the pipeline's record size limit
	FailSchema         uint32 = 112 // the record (or an output of it) does not match its schema, or cannot be migrated to the pipeline's
	FailEventTime      uint32 = 113 // the record's event time cannot be read (missing, wrong type, unparsable or out of range)
	FailLate           uint32 = 114 // the record is later than the watermark minus the allowed lateness (late output dlq)
	FailSinkRejected   uint32 = 120 // the sink cannot write an output of this record (e.g. a newline in a file: value)
)

// Batch-level status codes in the output header (OutputHeader.Status).
const (
	BatchOK          uint32 = 0
	BatchBadInput    uint32 = 1 // the guest could not decode the input batch
	BatchOperatorErr uint32 = 2 // the operator failed the whole batch
)

// Log levels for ImportLog.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)

// Limits the host enforces on guest-visible data.
const (
	MaxStateKeyLen   = 64 << 10 // 64 KiB
	MaxStateValueLen = 16 << 20 // 16 MiB
	MaxLogLen        = 64 << 10 // longer log messages are truncated
)

// Layout of the input batch (host -> guest). All integers little-endian.
//
//	batch header (16 bytes)
//	  0  u32 magic  BatchMagic ("HLB1")
//	  4  u32 count  number of records
//	  8  u32 flags  reserved, 0
//	  12 u32 reserved, 0
//	record (RecordHeaderSize + key_len + value_len + headers_len bytes), count times
//	  0  u32 key_len
//	  4  u32 value_len
//	  8  u32 headers_len   length of the headers block (0 = no headers)
//	  12 u32 partition
//	  16 i64 offset        source position (log offset, or file byte offset)
//	  24 i64 timestamp     event time, Unix milliseconds
//	  32 [16]byte id       message id (UUID bytes)
//	  48 key, then value, then headers block
//
//	headers block: u32 n, then n times (u32 name_len, name, u32 value_len, value)
const (
	BatchMagic       uint32 = 0x31424c48 // "HLB1" in little-endian byte order
	BatchHeaderSize         = 16
	RecordHeaderSize        = 48

	OffBatchMagic = 0
	OffBatchCount = 4
	OffBatchFlags = 8

	OffRecKeyLen     = 0
	OffRecValueLen   = 4
	OffRecHeadersLen = 8
	OffRecPartition  = 12
	OffRecOffset     = 16
	OffRecTimestamp  = 24
	OffRecID         = 32
	RecIDLen         = 16
)

// Layout of the output buffer (guest -> host), returned by helios_process as
// (ptr << 32 | len).
//
//	output header (16 bytes)
//	  0  u32 magic  OutputMagic ("HLO1")
//	  4  u32 status BatchOK, or a Batch* error code
//	  8  u32 count  number of entries (when status != BatchOK: the length of
//	                the UTF-8 error message that follows the header)
//	  12 u32 reserved, 0
//	entry (EntryHeaderSize + key_len + value_len + headers_len bytes), count times
//	  0  u32 kind          EntryKindRecord or EntryKindFailed
//	  4  u32 input_index   index of the input record this entry belongs to;
//	                       non-decreasing across entries
//	  8  u32 key_len
//	  12 u32 value_len     (failed: length of the error message in the value)
//	  16 u32 headers_len
//	  20 u32 code          failed: a Fail* code; record: 0
//	  24 i64 timestamp     event time of the output, Unix milliseconds
//	  32 key, then value, then headers block
const (
	OutputMagic      uint32 = 0x314f4c48 // "HLO1"
	OutputHeaderSize        = 16
	EntryHeaderSize         = 32

	OffOutMagic  = 0
	OffOutStatus = 4
	OffOutCount  = 8

	OffEntKind       = 0
	OffEntInputIndex = 4
	OffEntKeyLen     = 8
	OffEntValueLen   = 12
	OffEntHeadersLen = 16
	OffEntCode       = 20
	OffEntTimestamp  = 24

	EntryKindRecord uint32 = 0
	EntryKindFailed uint32 = 1
)

// Config buffer passed to helios_init: the headers-block layout,
// u32 n, then n times (u32 key_len, key, u32 value_len, value), in the order
// the user gave them.

// PackResult packs a guest pointer and length into the i64 returned by
// helios_init and helios_process.
func PackResult(ptr, length uint32) uint64 { return uint64(ptr)<<32 | uint64(length) }

// UnpackResult is the inverse of PackResult.
func UnpackResult(v uint64) (ptr, length uint32) { return uint32(v >> 32), uint32(v) }
