package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWindowMemory: 1,000,000 open (key, window) pairs (a million keys,
// one one-hour window) stay in the data directory, not on the heap: the
// process stays under --memory-limit 256 while it reads them and while the
// end of the input closes them all, and every pair emits its count once.
// About 45 s on two cores; skipped with -short.
func TestWindowMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000,000 open windows take about 45 s")
	}
	const pairs = 1_000_000
	dir := t.TempDir()
	data, in, out := filepath.Join(dir, "data"), filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli()
	for i := range pairs {
		fmt.Fprintf(w, "{\"k\":\"k%07d\",\"ts\":%d}\n", i, base+int64(i)*3) // 50 minutes: one window
	}
	w.Flush()
	f.Close()
	cmd := exec.Command(cliBin, "run", "--plugin", plugin(t, "window_count"), "--config", "key_field=k", "--input", "file:"+in,
		"--output", "file:"+out, "--data-dir", data, "--memory-limit", "256", "--admin", "",
		"--event-time", "json:ts", "--event-time-format", "unix-ms", "--window", "tumbling:1h")
	cmd.Env = append(os.Environ(), testEnv(t)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var maxRSS int64
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			running = false
		case <-time.After(50 * time.Millisecond):
			maxRSS = max(maxRSS, rssOf(cmd.Process.Pid))
		}
	}
	lines := 0
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.HasSuffix(l, `"window_start":"2026-11-30T12:00:00Z","window_end":"2026-11-30T13:00:00Z","count":1}`) {
			t.Fatalf("unexpected result %q", l)
		}
		lines++
	}
	t.Logf("%d (key, window) pairs in %v, max RSS %d MiB", pairs, time.Since(start).Round(time.Second), maxRSS>>20)
	if lines != pairs {
		t.Errorf("%d results, want %d", lines, pairs)
	}
	if maxRSS > 256<<20 {
		t.Errorf("RSS reached %d MiB, over the 256 MiB --memory-limit", maxRSS>>20)
	}
}
