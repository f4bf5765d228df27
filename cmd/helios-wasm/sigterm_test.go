//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sigtermBound is what TestSIGTERMExitTime allows from SIGTERM to exit
// under load. The documented worst case is an operator call in flight
// (at most --batch-timeout, 10s by default) plus committing the batches
// queued for the committer; these batches take well under a second.
const sigtermBound = 5 * time.Second

// TestSIGTERMExitTime measures SIGTERM to exit for run and serve in the
// middle of a backlog (a CPU-bound operator, a batch always in flight):
// the process commits what it processed, exits 0 within sigtermBound, and
// the next start continues exactly after the last commit.
func TestSIGTERMExitTime(t *testing.T) {
	slow := plugin(t, "slow")
	for _, mode := range []string{"run", "serve"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			in, out, data := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "data")
			lines := jsonRecords(20_000, 7)
			writeLines(t, in, lines)
			var args, rest []string
			switch mode {
			case "run":
				args = []string{"run", "--plugin", slow, "--config", "work=100000", "--input", "file:" + in, "--output", "file:" + out,
					"--data-dir", data, "--batch-size", "200", "--admin", ""}
				rest = args
				args = append(args[:len(args):len(args)], "--follow")
			case "serve":
				cfg := func(follow bool) string {
					return writeFile(t, "serve.yaml", "data_dir: "+data+"\nadmin: \"\"\npipelines:\n  - name: p\n    plugin: "+slow+
						"\n    config: [work=100000]\n    input: file:"+in+"\n    output: file:"+out+"\n    batch_size: 200\n    follow: "+
						map[bool]string{true: "true", false: "false"}[follow]+"\n")
				}
				args, rest = []string{"serve", "--config", cfg(true)}, []string{"serve", "--config", cfg(false)}
			}
			run := startCLI(t, testEnv(t), args...)
			deadline := time.Now().Add(60 * time.Second)
			for {
				b, _ := os.ReadFile(out)
				if n := strings.Count(string(b), "\n"); n >= 1000 {
					if n >= len(lines) {
						t.Fatalf("the backlog was done before the signal (%d outputs): no load to measure under", n)
					}
					break
				}
				if time.Now().After(deadline) {
					run.cmd.Process.Kill()
					t.Fatalf("no progress:\n%s", run.stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			sent := time.Now()
			run.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-run.done:
				took := time.Since(sent)
				t.Logf("%s: SIGTERM to exit %v", mode, took.Round(time.Millisecond))
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v\n%s", err, run.stderr.String())
				}
				if took > sigtermBound {
					t.Fatalf("SIGTERM to exit took %v, bound %v", took, sigtermBound)
				}
			case <-time.After(60 * time.Second):
				run.cmd.Process.Kill()
				t.Fatalf("SIGTERM did not stop %s:\n%s", mode, run.stderr.String())
			}
			if r := runCLI(t, "", testEnv(t), rest...); r.code != 0 {
				t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
			}
			checkExactlyOnce(t, 0, mode+" after SIGTERM and resume", readLines(t, out), lines, func(s string) string { return s })
		})
	}
}
