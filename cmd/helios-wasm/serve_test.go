package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServe runs two pipelines in one process over one data directory,
// swaps and pauses one of them through the admin API, and checks both
// outputs.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(5000, 3)
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cfg := fmt.Sprintf(`{"data_dir": %q, "admin": "127.0.0.1:0", "pipelines": [
		{"name": "up", "plugin": %q, "input": "log:in", "output": "log:up", "batch_size": 100},
		{"name": "down", "plugin": %q, "input": "log:in", "output": "log:down"}]}`, data, plugin(t, "uppercase"), plugin(t, "lowercase"))
	path := filepath.Join(dir, "pipelines.json")
	os.WriteFile(path, []byte(cfg), 0o644)

	if r := runCLI(t, "", nil, "serve", "--config", filepath.Join(dir, "nope.json")); r.code != 2 {
		t.Fatalf("missing config: %d", r.code)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"pipelines": [{"name": "a b"}, {"name": "x", "plugin": "p", "input": "log:t", "output": "-", "bogus": 1}]}`), 0o644)
	if r := runCLI(t, "", nil, "serve", "--config", bad); r.code != 2 || !strings.Contains(r.stderr, "bogus") {
		t.Fatalf("bad config: %d %s", r.code, r.stderr)
	}

	cmd, addr := startLogged(t, "serve", "--config", path)
	st := runCLI(t, "", nil, "status", "--admin", addr)
	if st.code != 0 || !strings.Contains(st.stdout, "up ") || !strings.Contains(st.stdout, "down ") {
		t.Fatalf("status: %d %s %s", st.code, st.stdout, st.stderr)
	}
	if r := runCLI(t, "", nil, "plugin", "swap", "--admin", addr, "--data-dir", data, plugin(t, "lowercase")); r.code != 2 || !strings.Contains(r.stderr, "choose one with --pipeline") {
		t.Fatalf("ambiguous swap: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "plugin", "swap", "--admin", addr, "--pipeline", "down", plugin(t, "uppercase")); r.code != 2 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("swap without a token: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "plugin", "swap", "--admin", addr, "--data-dir", data, "--pipeline", "down", plugin(t, "uppercase")); r.code != 0 {
		t.Fatalf("swap down: %d %s", r.code, r.stderr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		up, down := recordsOut(t, addr, "up"), recordsOut(t, addr, "down")
		if up == len(lines) && down == len(lines) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outputs: up %d, down %d of %d", up, down, len(lines))
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	for p := 0; p < 2; p++ {
		in := consume(t, data, "in", p)
		checkExactlyOnce(t, 0, "up", consume(t, data, "up", p), in, strings.ToUpper)
		checkExactlyOnce(t, 0, "down (swapped)", upperAll(consume(t, data, "down", p)), in, strings.ToUpper)
	}
}

// recordsOut reads a pipeline's committed output count from `status`
// (serve holds the data directory, so `consume` cannot open it meanwhile).
func recordsOut(t *testing.T, addr, pipeline string) int {
	r := runCLI(t, "", nil, "status", "--admin", addr)
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) > 7 && f[0] == pipeline {
			var out int
			fmt.Sscan(f[6], &out)
			return out
		}
	}
	return -1
}

// TestServeReportsFailedPipeline: a pipeline of serve that fails stops
// alone (the others go on), and says so: status shows it failed with its
// error, /readyz turns 503 naming it, and the process exits non-zero at
// the end. Before, only a log line told: status said "running" and /readyz
// stayed ready.
func TestServeReportsFailedPipeline(t *testing.T) {
	dir := t.TempDir()
	data, good, bad := filepath.Join(dir, "data"), filepath.Join(dir, "good.jsonl"), filepath.Join(dir, "bad.jsonl")
	writeLines(t, good, []string{`{"a":1}`})
	writeLines(t, bad, []string{`{"v":"fail"}`, `{"v":"fail"}`}) // two dead letters for a queue of one: the run fails
	cfg := fmt.Sprintf(`{"data_dir": %q, "admin": "127.0.0.1:0", "pipelines": [
		{"name": "good", "plugin": %q, "input": "file:%s", "output": "file:%s"},
		{"name": "bad", "plugin": %q, "input": "file:%s", "output": "file:%s", "dlq_max": 1}]}`,
		data, plugin(t, "uppercase"), good, filepath.Join(dir, "good-out.jsonl"),
		plugin(t, "internal/testutil/guests/hostile"), bad, filepath.Join(dir, "bad-out.jsonl"))
	path := filepath.Join(dir, "pipelines.json")
	os.WriteFile(path, []byte(cfg), 0o644)
	cmd, addr := startLogged(t, "serve", "--config", path)
	deadline := time.Now().Add(30 * time.Second)
	var st result
	for {
		st = runCLI(t, "", nil, "status", "--admin", addr)
		if strings.Contains(st.stdout, "failed: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status does not show the failed pipeline:\n%s", st.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, line := range strings.Split(st.stdout, "\n") {
		if strings.HasPrefix(line, "good ") && !strings.Contains(line, "running") || strings.HasPrefix(line, "bad ") && !strings.Contains(line, "dead-letter") {
			t.Errorf("status line %q", line)
		}
	}
	if r := runCLI(t, "", nil, "healthcheck", "--admin", addr, "--ready"); r.code != 1 || !strings.Contains(r.stdout+r.stderr, "pipeline bad stopped") {
		t.Fatalf("readyz with a failed pipeline: %d %s %s", r.code, r.stdout, r.stderr)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil {
		t.Fatal("serve exited 0 with a failed pipeline")
	}
	if got := readLines(t, filepath.Join(dir, "good-out.jsonl")); len(got) != 1 {
		t.Fatalf("the good pipeline's output: %q", got)
	}
}
