package host

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/heliosdb/helios-wasm/abi"
)

func TestRecordFailCode(t *testing.T) {
	wrap := func(kind error) error {
		return fmt.Errorf("context: %w", &PluginError{Plugin: "p", Op: "process", Kind: kind, Detail: errors.New("d")})
	}
	tests := []struct {
		err  error
		code uint32
		ok   bool
	}{
		{wrap(ErrTrap), abi.FailTrap, true},
		{wrap(ErrDeadline), abi.FailDeadline, true},
		{wrap(ErrMemoryLimit), abi.FailMemoryLimit, true},
		{wrap(ErrBadOutput), abi.FailBadOutput, true},
		{wrap(ErrBatchFailed), abi.FailBatchFailed, true},
		{wrap(ErrOutputLimit), abi.FailOutputLimit, true},
		{wrap(ErrStateLimit), abi.FailStateLimit, true},
		{wrap(ErrInit), 0, false},
		{wrap(ErrCanceled), 0, false},
		{context.Canceled, 0, false},
		{errors.New("state store: disk full"), 0, false},
	}
	for _, tt := range tests {
		if code, ok := RecordFailCode(tt.err); code != tt.code || ok != tt.ok {
			t.Errorf("RecordFailCode(%v) = %d, %v; want %d, %v", tt.err, code, ok, tt.code, tt.ok)
		}
	}
}
