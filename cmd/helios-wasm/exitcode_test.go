package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/runtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// TestExitCodes: errors map to the documented exit statuses, wrapped or
// not, with the hint the CLI adds.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		hint string
	}{
		{nil, exitOK, ""},
		{runtime.ErrBadInput, exitInput, ""},
		{fmt.Errorf("pipeline p: %w", runtime.ErrFleetDeadLetters), exitInput, "dlq purge"},
		{fmt.Errorf("open: %w", storage.ErrLocked), exitRuntime, "--data-dir"},
		{fmt.Errorf("open: %w", storage.ErrDamaged), exitDamaged, ""},
		{errors.New("anything else"), exitRuntime, ""},
	} {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
		if tc.err != nil && !strings.Contains(flagHint(tc.err), tc.hint) || tc.hint == "" && tc.err != nil && flagHint(tc.err) != "" {
			t.Errorf("flagHint(%v) = %q, want it to contain %q", tc.err, flagHint(tc.err), tc.hint)
		}
	}
}
