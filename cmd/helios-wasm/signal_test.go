package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
