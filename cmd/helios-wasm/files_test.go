package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// File inputs and outputs through the CLI (issue #10, hardening).

// TestOutputOwnerCLI: day 1 and day 2 into one output, then day 1 again.
// Before the owner record the third command exited 0 and truncated day 2's
// committed lines; now the second writer is refused up front, naming the
// owner and how to hand the file over.
func TestOutputOwnerCLI(t *testing.T) {
	dir := t.TempDir()
	data, all := filepath.Join(dir, "data"), filepath.Join(dir, "all.jsonl")
	day1, day2 := filepath.Join(dir, "day1.jsonl"), filepath.Join(dir, "day2.jsonl")
	recs := jsonRecords(2000, 3)
	writeLines(t, day1, recs[:1000])
	writeLines(t, day2, recs[1000:])
	run := func(in string, extra ...string) result {
		return runCLI(t, "", testEnv(t), append([]string{"run", "--plugin", plugin(t, "uppercase"), "--input", "file:" + in,
			"--output", "file:" + all, "--data-dir", data}, extra...)...)
	}
	if r := run(day1); r.code != 0 {
		t.Fatalf("day 1: %d %s", r.code, r.stderr)
	}
	r := run(day2)
	if r.code != 2 {
		t.Fatalf("day 2 into day 1's output: exit %d, want 2\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"output file belongs to another pipeline", ".all.jsonl.helios-owner", "hand the file over"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r := run(day2, "--data-dir", filepath.Join(dir, "data2")); r.code != 2 {
		t.Fatalf("another data directory: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(day1); r.code != 0 || !strings.Contains(r.stderr, "0 records in") {
		t.Fatalf("day 1 rerun: %d %s", r.code, r.stderr)
	}
	if n := len(readLines(t, all)); n != 1000 {
		t.Fatalf("%d lines in the output, want 1000", n)
	}
	// A pipeline reading its own output is refused.
	if r := runCLI(t, strings.Join(recs[:3], "\n")+"\n", nil, "produce", "--topic", "x", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "log:x", "--output", "log:x", "--follow", "--data-dir", data)
	if r.code != 2 || !strings.Contains(r.stderr, "input and output are both log:x") {
		t.Fatalf("log:x -> log:x: %d %s", r.code, r.stderr)
	}
	// /dev/null is not a regular file: refused with a way to discard outputs.
	r = runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "file:"+day1, "--output", "file:/dev/null", "--data-dir", data)
	if r.code != 2 || !strings.Contains(r.stderr, "not a regular file") {
		t.Fatalf("file:/dev/null: %d %s", r.code, r.stderr)
	}
}

// TestReplacedInputCLI: an input replaced by a longer file was resumed at
// the old offset (1000 of 2000 records skipped, exit 0). Now the run stops
// and says what to do; --from-start processes the new file.
func TestReplacedInputCLI(t *testing.T) {
	dir := t.TempDir()
	data, in, out := filepath.Join(dir, "data"), filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	recs := jsonRecords(3000, 3)
	writeLines(t, in, recs[:1000])
	args := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "file:" + in, "--output", "file:" + out, "--data-dir", data}
	if r := runCLI(t, "", testEnv(t), args...); r.code != 0 {
		t.Fatalf("first run: %d %s", r.code, r.stderr)
	}
	writeLines(t, in+".new", recs[1000:])
	os.Rename(in+".new", in)
	r := runCLI(t, "", testEnv(t), args...)
	if r.code != 2 || !strings.Contains(r.stderr, "--from-start") || !strings.Contains(r.stderr, "is another file") {
		t.Fatalf("replaced input: %d %s", r.code, r.stderr)
	}
	for run, want := range []string{"2000 records in", "0 records in"} {
		if r := runCLI(t, "", testEnv(t), append(args, "--from-start")...); r.code != 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("--from-start run %d: %d %s", run, r.code, r.stderr)
		}
	}
	if n := len(readLines(t, out)); n != 3000 {
		t.Fatalf("%d output lines, want 3000", n)
	}
}

// peakRSS runs cmd to completion, sampling its RSS, with a timeout.
func peakRSS(t *testing.T, cmd *exec.Cmd) (int64, result) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), testEnv(t)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case err := <-done:
			return peak, toResult(t, err, out.String(), errb.String())
		case <-deadline:
			cmd.Process.Kill()
			<-done
			t.Fatalf("%v hung\n%s", cmd.Args, errb.String())
		case <-time.After(20 * time.Millisecond):
			peak = max(peak, rssOf(cmd.Process.Pid))
		}
	}
}

// TestRecordSizeBoundMemory: a 50 MB line was buffered whole and
// dead-lettered as a trap at 300-400 MiB RSS; an endless line on stdin grew
// without bound. Now both are skipped within the record limit plus one read
// buffer, and dead-lettered as RECORD_TOO_LARGE.
func TestRecordSizeBoundMemory(t *testing.T) {
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.jsonl"), filepath.Join(dir, "big.jsonl")
	writeLines(t, small, []string{`{"a":1}`, `{"b":2}`})
	writeLines(t, big, []string{`{"a":1}`, `{"big":"` + strings.Repeat("x", 50<<20) + `"}`, `{"b":2}`})
	run := func(name, input string) *exec.Cmd {
		return exec.Command(cliBin, "run", "--plugin", plugin(t, "uppercase"), "--input", input,
			"--output", "file:"+filepath.Join(dir, name+".out"), "--data-dir", filepath.Join(dir, "data-"+name), "--admin", "", "--at-least-once")
	}
	base, r := peakRSS(t, run("small", "file:"+small))
	if r.code != 0 {
		t.Fatalf("baseline: %d %s", r.code, r.stderr)
	}
	check := func(what string, peak int64, r result) {
		t.Helper()
		t.Logf("%s: peak RSS %d MiB (baseline %d MiB)", what, peak>>20, base>>20)
		if r.code != 0 || !strings.Contains(r.stderr, "1 records went to the dead-letter queue") {
			t.Fatalf("%s: %d %s", what, r.code, r.stderr)
		}
		if peak > base+128<<20 {
			t.Errorf("%s: peak RSS %d MiB, more than 128 MiB over the baseline %d MiB", what, peak>>20, base>>20)
		}
	}
	peak, r := peakRSS(t, run("big", "file:"+big))
	check("50 MB line", peak, r)
	if got := readLines(t, filepath.Join(dir, "big.out")); strings.Join(got, "|") != `{"A":1}|{"B":2}` {
		t.Fatalf("output %q", got)
	}
	list := runCLI(t, "", nil, "dlq", "list", "--data-dir", filepath.Join(dir, "data-big"))
	if !strings.Contains(list.stdout, "111 RECORD_TOO_LARGE") || !strings.Contains(list.stdout, "line 2") {
		t.Fatalf("dlq list:\n%s", list.stdout)
	}

	// An endless line on stdin (bounded here: 300 MB, then its newline).
	cmd := run("stdin", "-")
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	go func() {
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for i := 0; i < 300; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		fmt.Fprint(pw, "\n"+`{"ok":1}`+"\n")
		pw.Close()
	}()
	peak, r = peakRSS(t, cmd)
	check("300 MB line on stdin", peak, r)
	if got := readLines(t, filepath.Join(dir, "stdin.out")); strings.Join(got, "|") != `{"OK":1}` {
		t.Fatalf("stdin output %q", got)
	}
}

// TestServeTwoPipelinesOneFile: serve refuses two pipelines writing one
// output file (the second cannot lock it) before anything runs.
func TestServeTwoPipelinesOneFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, jsonRecords(10, 2))
	cfg := fmt.Sprintf(`{"data_dir": %q, "admin": "127.0.0.1:0", "pipelines": [
		{"name": "a", "plugin": %q, "input": "file:%s", "output": "file:%s"},
		{"name": "b", "plugin": %q, "input": "file:%s", "output": "file:%s"}]}`,
		filepath.Join(dir, "data"), plugin(t, "uppercase"), in, out, plugin(t, "lowercase"), in, out)
	path := filepath.Join(dir, "pipelines.json")
	os.WriteFile(path, []byte(cfg), 0o644)
	r := runCLI(t, "", testEnv(t), "serve", "--config", path)
	if r.code != 2 || !strings.Contains(r.stderr, "pipeline b") || !strings.Contains(r.stderr, "in use by another running pipeline") {
		t.Fatalf("serve, two pipelines into one file: %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(out); len(b) != 0 {
		t.Fatalf("output written: %q", b)
	}
}

// TestOutputLockedAcrossProcessesCLI: while one process follows its input
// into an output file, a second process (its own data directory, so the
// data-directory lock does not stop it) is refused the output.
func TestOutputLockedAcrossProcessesCLI(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, jsonRecords(10, 2))
	first, _ := startLogged(t, "run", "--plugin", plugin(t, "uppercase"), "--input", "file:"+in, "--output", "file:"+out,
		"--data-dir", filepath.Join(dir, "data1"), "--follow", "--admin", "127.0.0.1:0")
	r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "lowercase"), "--input", "file:"+in, "--output", "file:"+out,
		"--data-dir", filepath.Join(dir, "data2"), "--admin", "")
	if r.code != 2 || !strings.Contains(r.stderr, "in use by another running pipeline") {
		t.Fatalf("second process on the same output: %d %s", r.code, r.stderr)
	}
	first.Process.Signal(syscall.SIGINT)
	if err := first.Wait(); err != nil {
		t.Fatalf("first process: %v", err)
	}
	if got := readLines(t, out); len(got) != 10 || got[0] != strings.ToUpper(got[0]) {
		t.Fatalf("output %q", got)
	}
}
