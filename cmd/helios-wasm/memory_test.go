package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBoundedMemory: with a backlog of over 1 GB in the log and an operator
// far slower than the input, the process stays under --memory-limit (256 MiB
// by default) while throughput follows the operator.
func TestBoundedMemory(t *testing.T) {
	maxRSS, done := boundedMemoryRun(t, 12*time.Second)
	t.Logf("max RSS %d MiB over 12 s; %d of %d records processed", maxRSS>>20, done, backlogRecords)
	if maxRSS > 256<<20 {
		t.Errorf("RSS reached %d MiB, over the 256 MiB --memory-limit", maxRSS>>20)
	}
	if done == 0 || done >= backlogRecords {
		t.Errorf("%d records processed: the operator should be the bottleneck yet make progress", done)
	}
}

// BenchmarkBoundedMemory reports the peak RSS and the throughput of a slow
// operator over a 1.1 GB backlog (make bench).
func BenchmarkBoundedMemory(b *testing.B) {
	for range b.N {
		maxRSS, done := boundedMemoryRun(b, 12*time.Second)
		b.ReportMetric(float64(maxRSS>>20), "MiB-peak-RSS")
		b.ReportMetric(float64(done)/12, "records/s")
	}
}

const backlogRecords = 110_000 // ~1.1 GB of 10 KB records

// boundedMemoryRun produces the backlog, runs the slow operator over it for
// d while sampling the process's RSS, stops it, and returns the peak RSS and
// how many records were committed.
func boundedMemoryRun(t testing.TB, d time.Duration) (maxRSS int64, done int) {
	dir := t.TempDir()
	data, in := filepath.Join(dir, "data"), filepath.Join(dir, "backlog.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("x", 10_000)
	for i := 0; i < backlogRecords; i++ {
		fmt.Fprintf(w, "{\"i\":%d,\"pad\":\"%s\"}\n", i, pad)
	}
	w.Flush()
	f.Seek(0, 0)
	produce := exec.Command(cliBin, "produce", "--topic", "backlog", "--partitions", "2", "--data-dir", data)
	produce.Stdin = f
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	f.Close()
	os.Remove(in)

	out := filepath.Join(dir, "out.jsonl")
	cmd := exec.Command(cliBin, "run", "--plugin", plugin(t, "slow"), "--config", "work=300000", "--input", "log:backlog",
		"--output", "file:"+out, "--data-dir", data, "--batch-size", "200")
	cmd.Env = append(os.Environ(), testEnv(t)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if rss := rssOf(cmd.Process.Pid); rss > maxRSS {
			maxRSS = rss
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if b, err := os.ReadFile(out); err == nil {
		done = strings.Count(string(b), "\n")
	}
	return maxRSS, done
}

// rssOf reads VmRSS of pid from /proc, in bytes.
func rssOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
