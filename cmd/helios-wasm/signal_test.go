//go:build unix

// The signal tests stop and signal the CLI as unix does (SIGSTOP, SIGTERM).

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSIGINTCommitsAndExitsZero: a following pipeline stopped by SIGINT
// commits what it processed and exits 0; the next run continues exactly
// after it, so the output holds every input once.
func TestSIGINTCommitsAndExitsZero(t *testing.T) {
	dir := t.TempDir()
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out.jsonl")
	lines := jsonRecords(5000, 3)
	if r := runCLI(t, strings.Join(lines[:3000], "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	args := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "file:" + out, "--data-dir", data, "--batch-size", "100"}
	cmd := exec.Command(cliBin, append(args, "--follow")...)
	cmd.Env = append(os.Environ(), testEnv(t)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if strings.Count(string(b), "\n") >= 3000 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the following pipeline did not catch up:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("SIGINT did not stop the pipeline")
	}
	// More input arrives; the same command (without --follow) picks up after the last commit.
	if r := runCLI(t, strings.Join(lines[3000:], "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := runCLI(t, "", testEnv(t), args...); r.code != 0 || !strings.Contains(r.stderr, "2000 records in") {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	checkExactlyOnce(t, 0, "after SIGINT and resume", readLines(t, out), lines, strings.ToUpper)
}

// TestPausedProcessFencesNewOne: while a paused (SIGSTOP) instance holds the
// data directory, a second instance of the same pipeline cannot start (the
// directory lock fences it before it writes anything); the paused one,
// resumed, finishes, and the output holds every input once. Within one
// process, instances are fenced by producer epochs (runtime's
// TestZombieInstanceIsFenced).
func TestPausedProcessFencesNewOne(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(20000, 5)
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	args := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out", "--data-dir", data, "--batch-size", "50"}
	old := exec.Command(cliBin, append(args, "--follow")...)
	old.Env = append(os.Environ(), testEnv(t)...)
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- old.Wait() }()
	time.Sleep(300 * time.Millisecond)
	old.Process.Signal(syscall.SIGSTOP)
	r := runCLI(t, "", testEnv(t), args...)
	if r.code != 1 || !strings.Contains(r.stderr, "in use by another process") {
		t.Fatalf("second instance: exit %d\n%s", r.code, r.stderr)
	}
	old.Process.Signal(syscall.SIGCONT)
	time.Sleep(200 * time.Millisecond)
	old.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("resumed instance: %v", err)
		}
	case <-time.After(60 * time.Second):
		old.Process.Kill()
		t.Fatal("resumed instance did not stop")
	}
	if r := runCLI(t, "", testEnv(t), args...); r.code != 0 {
		t.Fatalf("final run: %d %s", r.code, r.stderr)
	}
	total := 0
	for p := 0; p < 2; p++ {
		o := consume(t, data, "out", p)
		checkExactlyOnce(t, 0, fmt.Sprintf("partition %d", p), o, consume(t, data, "in", p), strings.ToUpper)
		total += len(o)
	}
	if total != len(lines) {
		t.Fatalf("%d outputs, want %d", total, len(lines))
	}
}

// TestManyCommandsOneDataDir: while a following pipeline holds the data
// directory, produce, consume and topics go through it.
func TestManyCommandsOneDataDir(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(3000, 3)
	if r := runCLI(t, strings.Join(lines[:1000], "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cmd := exec.Command(cliBin, "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out", "--data-dir", data, "--follow")
	cmd.Env = append(os.Environ(), testEnv(t)...)
	var runErr strings.Builder
	cmd.Stderr = &runErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := runCLI(t, "", nil, "topics", "--data-dir", data)
		if r.code == 0 && strings.Contains(r.stdout, "out ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics never answered through the running process: %d %s\nrun: %s", r.code, r.stderr, runErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The normal case: feeding a live pipeline.
	r := runCLI(t, strings.Join(lines[1000:], "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data)
	if r.code != 0 || !strings.Contains(r.stderr, "committed 2000 records to in (input lines 1..2000) (through the running process)") {
		t.Fatalf("produce while running: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, `{"bad`+"\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 2 || !strings.Contains(r.stderr, "not valid JSON") {
		t.Fatalf("bad line through the process: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "status", "--data-dir", data); r.code != 0 || !strings.Contains(r.stdout, "uppercase") {
		t.Fatalf("status through the process: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", nil, "dlq", "list", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "0 entries") {
		t.Fatalf("dlq list through the process: %d %s", r.code, r.stderr)
	}
	// dlq purge and retry run in a transaction of the running pipeline.
	if r := runCLI(t, "", nil, "dlq", "purge", "--all", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "purged 0 entries through the running pipeline") {
		t.Fatalf("dlq purge while running: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "dlq", "purge", "--id", "7", "--data-dir", data); r.code != 2 || !strings.Contains(r.stderr, "no such dead-letter entry") {
		t.Fatalf("dlq purge of a missing entry while running: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "dlq", "retry", "--all", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "retried 0 entries through the running pipeline") {
		t.Fatalf("dlq retry while running: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "dlq", "retry", "--all", "--plugin", "x.wasm", "--data-dir", data); r.code != 2 || !strings.Contains(r.stderr, "uses its current plugin") {
		t.Fatalf("dlq retry --plugin while running: %d %s", r.code, r.stderr)
	}
	for {
		out := consume(t, data, "out", 0)
		if len(out) == len(lines) {
			checkExactlyOnce(t, 0, "live output", out, lines, strings.ToUpper)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d outputs", len(out), len(lines))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "helios.sock")); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// TestDLQFullFollowResumesAfterPurge: a --follow pipeline whose dead-letter
// queue is full pauses, saying how many entries are committed and reserved;
// `dlq purge` through the running process makes room, and the pipeline
// resumes by itself.
func TestDLQFullFollowResumesAfterPurge(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	var lines []string
	for i := range 30 {
		if i == 5 || i == 25 {
			lines = append(lines, fmt.Sprintf(`{"n":%d,"v":"fail"}`, i))
		} else {
			lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
		}
	}
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cmd := exec.Command(cliBin, "run", "--plugin", plugin(t, "internal/testutil/guests/hostile"), "--input", "log:in", "--output", "log:out",
		"--data-dir", data, "--follow", "--batch-size", "10", "--dlq-max", "1")
	cmd.Env = append(os.Environ(), testEnv(t)...)
	var runErr strings.Builder
	cmd.Stderr = &runErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	entries := func() string { return runCLI(t, "", nil, "dlq", "list", "--data-dir", data).stderr }
	waitFor("the first batch's entry", func() bool { return strings.Contains(entries(), "1 entries") })
	waitFor("the 19 records before the paused batch", func() bool { return len(consume(t, data, "out", 0)) == 19 })
	time.Sleep(300 * time.Millisecond) // paused: nothing more is committed
	if n := len(consume(t, data, "out", 0)); n != 19 {
		t.Fatalf("%d outputs while paused, want 19", n)
	}
	if r := runCLI(t, "", nil, "dlq", "purge", "--all", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "purged 1 entries through the running pipeline") {
		t.Fatalf("dlq purge through the process: %d %s", r.code, r.stderr)
	}
	waitFor("the rest after the purge", func() bool { return len(consume(t, data, "out", 0)) == 28 })
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, runErr.String())
	}
	for _, want := range []string{"dead-letter queue full", "entries=", "reserved=", "needed=1", "max=1"} {
		if !strings.Contains(runErr.String(), want) {
			t.Errorf("run's stderr lacks %q:\n%s", want, runErr.String())
		}
	}
}

// TestSecondSignalExits130: a second SIGINT while the first one's batch is
// still being processed exits at once with 130 (never 2, which means bad
// input); the uncommitted batch is processed by the next run, once.
func TestSecondSignalExits130(t *testing.T) {
	dir := t.TempDir()
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out.jsonl")
	lines := jsonRecords(400, 3)
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	args := []string{"run", "--plugin", plugin(t, "slow"), "--input", "log:in", "--output", "file:" + out, "--data-dir", data, "--batch-size", "200"}
	// About a minute of work per batch: the first signal cannot finish it before the second arrives.
	cmd := exec.Command(cliBin, append(append([]string{"--log-level", "debug"}, args...), "--follow", "--config", "work=50000000", "--batch-timeout", "10m", "--admin", "")...)
	cmd.Env = append(os.Environ(), testEnv(t)...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), what); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", what, stderr.String())
			}
		}
	}
	waitFor("pipeline starting")
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	waitFor("stopping:")
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 || time.Since(start) > 10*time.Second || !strings.Contains(stderr.String(), "interrupted again") {
		t.Fatalf("second SIGINT: exit %d after %v, want 130 at once\n%s", code, time.Since(start), stderr.String())
	}
	if r := runCLI(t, "", testEnv(t), append(args, "--config", "work=0")...); r.code != 0 || !strings.Contains(r.stderr, "400 records in") {
		t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
	}
	checkExactlyOnce(t, 0, "after a second SIGINT and a rerun", readLines(t, out), lines, func(s string) string { return s })
}

// syncBuffer is a strings.Builder safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
