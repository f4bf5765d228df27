package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var committedRe = regexp.MustCompile(`committed (\d+) records to in \(input lines (\d+)\.\.(\d+)\)`)

// parseCommitted returns N and L of "committed N records to in (input lines F..L)".
func parseCommitted(t *testing.T, stderr string) (n, last int) {
	t.Helper()
	m := committedRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no committed count in:\n%s", stderr)
	}
	n, _ = strconv.Atoi(m[1])
	last, _ = strconv.Atoi(m[3])
	return n, last
}

// consumeAll reads both partitions of topic in.
func consumeAll(t *testing.T, data string) (parts [2][]string) {
	for p := range parts {
		parts[p] = consume(t, data, "in", p)
	}
	return parts
}

// TestProduceInterruptResume: SIGTERM or SIGINT mid-stream commits what
// produce staged and prints exactly what is committed; a rerun with --skip
// of the printed line number yields every line exactly once.
func TestProduceInterruptResume(t *testing.T) {
	lines := jsonRecords(100_000, 4)
	for _, tt := range []struct {
		sig     syscall.Signal
		through bool // a running pipeline holds the data directory: produce goes through its socket
	}{{syscall.SIGTERM, false}, {syscall.SIGINT, false}, {syscall.SIGTERM, true}} {
		sig := tt.sig
		t.Run(fmt.Sprintf("%v through process %v", sig, tt.through), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			if tt.through {
				if r := runCLI(t, "", nil, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data); r.code != 0 {
					t.Fatal(r.stderr)
				}
				run, _ := startLogged(t, "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out",
					"--data-dir", data, "--follow", "--admin", "127.0.0.1:0")
				defer func() {
					run.Process.Signal(syscall.SIGINT)
					run.Wait()
				}()
			}
			cmd := exec.Command(cliBin, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data)
			stdin, _ := cmd.StdinPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill() })
			io.WriteString(stdin, strings.Join(lines[:43_210], "\n")+"\n"+lines[43_210][:5]) // and half a line
			time.Sleep(500 * time.Millisecond)                                               // all read: 43 batches committed, 210 lines staged
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			stdin.Close()
			if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted") {
				t.Fatalf("exit %v, want 1 (interrupted)\n%s", err, stderr.String())
			}
			if tt.through != strings.Contains(stderr.String(), "through the running process") {
				t.Fatalf("through the running process: want %v\n%s", tt.through, stderr.String())
			}
			n, last := parseCommitted(t, stderr.String())
			parts := consumeAll(t, data)
			if n != len(parts[0])+len(parts[1]) || n != last || n != 43_210 {
				t.Fatalf("printed %d records (lines 1..%d), the topic holds %d; 43210 lines were sent whole", n, last, len(parts[0])+len(parts[1]))
			}
			if !strings.Contains(stderr.String(), fmt.Sprintf("rerun with --skip %d", last)) {
				t.Fatalf("no resume hint:\n%s", stderr.String())
			}

			r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data, "--skip", strconv.Itoa(last))
			if r.code != 0 || !strings.Contains(r.stderr, fmt.Sprintf("committed %d records to in (input lines %d..%d)", len(lines)-last, last+1, len(lines))) {
				t.Fatalf("resume: %d %s", r.code, r.stderr)
			}
			parts = consumeAll(t, data)
			for p := range parts {
				var want []string
				for i, l := range lines {
					if (i+1)%2 == p { // line numbers pick the partition, skipped lines counted
						want = append(want, l)
					}
				}
				checkExactlyOnce(t, 0, fmt.Sprintf("partition %d after resume", p), parts[p], want, func(s string) string { return s })
			}
		})
	}
}

// TestProduceIDFromLineDedup: a rerun without --skip (the first run's
// count unknown, e.g. SIGKILL) duplicates records in the topic, and with
// --id-from line a --dedup pipeline drops every duplicate.
func TestProduceIDFromLineDedup(t *testing.T) {
	dir := t.TempDir()
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out.jsonl")
	lines := jsonRecords(1000, 4)
	for _, n := range []int{600, 1000} {
		if r := runCLI(t, strings.Join(lines[:n], "\n")+"\n", nil, "produce", "--topic", "in", "--data-dir", data, "--id-from", "line", "--batch-size", "100"); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "file:"+out, "--data-dir", data, "--dedup")
	if r.code != 0 || !strings.Contains(r.stderr, "600 duplicate records skipped") {
		t.Fatalf("%d %s", r.code, r.stderr)
	}
	checkExactlyOnce(t, 0, "deduplicated output", readLines(t, out), lines, strings.ToUpper)
	if r := runCLI(t, "", nil, "produce", "--topic", "in", "--data-dir", data, "--id-from", "uuid"); r.code != 2 || !strings.Contains(r.stderr, "--id-from") {
		t.Fatalf("bad --id-from: %d %s", r.code, r.stderr)
	}
}

// TestProduceEndlessLine: a line that never ends (produce < /dev/zero) is
// refused at --max-record-bytes with its line number, after committing the
// lines before it, in bounded memory.
func TestProduceEndlessLine(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(cliBin, "produce", "--topic", "in", "--data-dir", data)
	stdin, _ := cmd.StdinPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	go func() {
		io.WriteString(stdin, "{\"a\":1}\n{\"a\":2}\n")
		chunk := []byte(strings.Repeat("x", 1<<16))
		for { // until produce exits and the pipe breaks; paced so that the RSS samples follow
			if _, err := stdin.Write(chunk); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The peak RSS of this process (VmHWM; rusage's maxrss of an exec'd
	// child includes the test binary's own), sampled until it exits.
	var maxRSS int64
	timeout := time.After(60 * time.Second)
	for running := true; running; {
		if hwm := statusKB(cmd.Process.Pid, "VmHWM:") << 10; hwm > maxRSS {
			maxRSS = hwm
		}
		select {
		case <-done:
			running = false
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("produce kept reading an endless line (peak RSS %d MiB)\n%s", maxRSS>>20, stderr.String())
		case <-time.After(2 * time.Millisecond):
			if maxRSS <= 256<<20 {
				continue
			}
			cmd.Process.Kill()
		}
	}
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "input line 3: longer than 8388608 bytes") {
		t.Fatalf("exit %d, want 2 naming line 3\n%s", code, stderr.String())
	}
	if n, last := parseCommitted(t, stderr.String()); n != 2 || last != 2 || len(consume(t, data, "in", 0)) != 2 {
		t.Fatalf("committed %d (lines ..%d), want 2 records\n%s", n, last, stderr.String())
	}
	t.Logf("peak RSS %d MiB", maxRSS>>20)
	if maxRSS == 0 || maxRSS > 96<<20 {
		t.Errorf("peak RSS %d MiB: the line was buffered beyond the 8 MiB limit", maxRSS>>20)
	}
}

// statusKB reads a kB field (e.g. "VmHWM:") of /proc/PID/status (0 when
// the process is gone).
func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// TestProduceLongLineThroughProcess: through a running process, a line
// longer than --max-record-bytes is refused with its number, and the count
// the process committed is printed.
func TestProduceLongLineThroughProcess(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if r := runCLI(t, "", nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	run, _ := startLogged(t, "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out",
		"--data-dir", data, "--follow", "--admin", "127.0.0.1:0")
	defer func() {
		run.Process.Signal(syscall.SIGINT)
		run.Wait()
	}()
	in := "{\"a\":1}\n{\"a\":2}\n\"" + strings.Repeat("x", 5000) + "\"\n{\"a\":4}\n"
	r := runCLI(t, in, nil, "produce", "--topic", "in", "--data-dir", data, "--max-record-bytes", "1000")
	if r.code != 2 || !strings.Contains(r.stderr, "input line 3: longer than 1000 bytes") || !strings.Contains(r.stderr, "through the running process") {
		t.Fatalf("exit %d, want 2 naming line 3\n%s", r.code, r.stderr)
	}
	if n, last := parseCommitted(t, r.stderr); n != 2 || last != 2 || len(consume(t, data, "in", 0)) != 2 {
		t.Fatalf("committed %d (lines ..%d), want 2\n%s", n, last, r.stderr)
	}
}
