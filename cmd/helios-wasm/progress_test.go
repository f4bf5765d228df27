package main

import (
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	tests := []struct {
		records, pos, total int64
		elapsed             time.Duration
		want                string
	}{
		{0, 0, 0, 0, "0 records, 0 records/s"},
		{1000, 250, 1000, 2 * time.Second, "1000 records, 500 records/s, 25.0%, ETA 6s"},
		{4000, 1000, 1000, 4 * time.Second, "4000 records, 1000 records/s, 100.0%"},
		{10, 5, 0, time.Second, "10 records, 10 records/s"},
	}
	for _, tt := range tests {
		if got := formatProgress(tt.records, tt.pos, tt.total, tt.elapsed); got != tt.want {
			t.Errorf("formatProgress(%d, %d, %d, %v) = %q, want %q", tt.records, tt.pos, tt.total, tt.elapsed, got, tt.want)
		}
	}
}
