package abi

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestSpecAgreesWithConstants keeps abi.md and this package in step: every
// name, code and magic number defined here must appear in the spec.
func TestSpecAgreesWithConstants(t *testing.T) {
	b, err := os.ReadFile("../abi.md")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	want := []string{
		fmt.Sprintf("version %d", Version), "`" + HostModule + "`",
		ExportABIVersion, ExportAlloc, ExportDealloc, ExportInit, ExportProcess, ExportMigrate, ExportInitialize,
		"`" + ImportLog + "`", ImportStateGet, ImportStatePut, ImportStateDelete, ImportConfigGet,
		ExportWindowClose, "`" + ImportWindowGet + "`", fmt.Sprintf("window descriptor (%d bytes)", WindowInfoSize),
		fmt.Sprintf("bit 0 (%d) = emit updates, bit 1 (%d) = this is the window's close call", WindowFlagUpdates, WindowFlagClosing),
		fmt.Sprintf("0x%08x", BatchMagic), fmt.Sprintf("0x%08x", OutputMagic),
		fmt.Sprintf("%d + key_len + value_len + headers_len", RecordHeaderSize),
		fmt.Sprintf("batch header (%d bytes)", BatchHeaderSize), fmt.Sprintf("output header (%d bytes)", OutputHeaderSize),
		fmt.Sprintf("`kind %d` (**record**)", EntryKindRecord), fmt.Sprintf("`kind %d` (**failed**)", EntryKindFailed),
		"64 KiB", "16 MiB",
	}
	for code, name := range map[int32]string{StatusNotFound: "NOT_FOUND", StatusBadArgument: "BAD_ARGUMENT",
		StatusTooLarge: "TOO_LARGE", StatusNotAllowed: "NOT_ALLOWED", StatusInternal: "INTERNAL"} {
		want = append(want, fmt.Sprintf("| `%d` | %s |", code, name))
	}
	for code, name := range map[uint32]string{FailGeneric: "GENERIC", FailRetryable: "RETRYABLE", FailInvalidInput: "INVALID_INPUT",
		FailTrap: "TRAP", FailDeadline: "DEADLINE", FailMemoryLimit: "MEMORY_LIMIT", FailBadOutput: "BAD_OUTPUT",
		FailBatchFailed: "BATCH_FAILED", FailMalformedInput: "MALFORMED_INPUT"} {
		want = append(want, fmt.Sprintf("| `%d` | %s", code, name))
	}
	want = append(want, fmt.Sprintf("`≥ %d`", FailUserBase))
	want = append(want, fmt.Sprintf("`%d` the guest could not decode the input, `%d` the operator failed the batch", BatchBadInput, BatchOperatorErr))
	for lvl, name := range map[int32]string{LogDebug: "debug", LogInfo: "info", LogWarn: "warn", LogError: "error"} {
		want = append(want, fmt.Sprintf("%d %s", lvl, name))
	}
	for _, w := range want {
		if !strings.Contains(spec, w) {
			t.Errorf("abi.md does not mention %q", w)
		}
	}
	if MaxStateKeyLen != 64<<10 || MaxStateValueLen != 16<<20 || MaxLogLen != 64<<10 {
		t.Error("limits changed: update abi.md")
	}
}
