package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/heliosdb/helios-wasm/runtime"
)

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// showProgress redraws a progress line on stderr every half second while
// ctx lasts, for a run over a file of total bytes. It is silent unless
// stderr is a terminal, so logs and pipes stay clean.
func showProgress(ctx context.Context, p *runtime.Pipeline, total int64) {
	if !isTerminal(os.Stderr) {
		return
	}
	start := time.Now()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprint(os.Stderr, "\r\033[K")
			return
		case <-t.C:
			pr := p.Progress()
			fmt.Fprintf(os.Stderr, "\r\033[K%s", formatProgress(pr.RecordsIn, pr.Committed[0].Offset, total, time.Since(start)))
		}
	}
}

// formatProgress renders records done, rate, share of the input and ETA.
func formatProgress(records, pos, total int64, elapsed time.Duration) string {
	var b strings.Builder
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(records) / s
	}
	fmt.Fprintf(&b, "%d records, %.0f records/s", records, rate)
	if total > 0 {
		frac := min(float64(pos)/float64(total), 1)
		fmt.Fprintf(&b, ", %.1f%%", 100*frac)
		if frac > 0 && frac < 1 {
			eta := time.Duration(float64(elapsed) * (1 - frac) / frac).Round(time.Second)
			fmt.Fprintf(&b, ", ETA %v", eta)
		}
	}
	return b.String()
}
