package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sha(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(tmp, to)
}

// TestHotSwapCLI drives a running pipeline through the admin API: swap,
// refused swap, wrong token, rollback, --watch, status; afterwards every
// record is output exactly once.
func TestHotSwapCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(20000, 4)
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	watched := filepath.Join(dir, "op.wasm")
	copyFile(t, plugin(t, "uppercase"), watched)
	cmd, addr := startLogged(t, "run", "--plugin", watched, "--input", "log:in", "--output", "log:out", "--data-dir", data,
		"--follow", "--watch", "--admin", "127.0.0.1:0", "--admin-token", "s3cret", "--batch-size", "20", "--name", "live")
	admin := []string{"--admin", addr, "--token", "s3cret"}
	status := func() string { return runCLI(t, "", nil, append([]string{"status"}, admin[:4]...)...).stdout }

	if r := runCLI(t, "", nil, append(append([]string{"plugin", "swap"}, admin...), plugin(t, "lowercase"))...); r.code != 0 {
		t.Fatalf("swap: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(status(), sha(t, plugin(t, "lowercase"))[:12]) {
		t.Fatalf("status after swap:\n%s", status())
	}
	if r := runCLI(t, "", nil, "plugin", "swap", "--admin", addr, "--token", "wrong", plugin(t, "uppercase")); r.code != 2 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("wrong token: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "plugin", "rollback", "--admin", addr, "--pipeline", "live"); r.code != 2 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("missing token: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(status(), sha(t, plugin(t, "lowercase"))[:12]) {
		t.Fatalf("a refused request changed the plugin:\n%s", status())
	}
	if r := runCLI(t, "", nil, append(append([]string{"plugin", "swap"}, admin...), cliBin)...); r.code != 2 || !strings.Contains(r.stderr, "not a WebAssembly module") {
		t.Fatalf("bad module: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, append([]string{"plugin", "rollback"}, admin...)...); r.code != 0 {
		t.Fatalf("rollback: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(status(), sha(t, plugin(t, "uppercase"))[:12]) {
		t.Fatalf("status after rollback:\n%s", status())
	}
	copyFile(t, plugin(t, "lowercase"), watched) // --watch picks up the rebuilt file
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(status(), sha(t, plugin(t, "lowercase"))[:12]) {
		if time.Now().After(deadline) {
			t.Fatalf("--watch did not swap:\n%s", status())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if r := runCLI(t, "", testEnv(t), "run", "--plugin", watched, "--input", "log:in", "--output", "log:out", "--data-dir", data, "--name", "live"); r.code != 0 {
		t.Fatalf("final run: %d %s", r.code, r.stderr)
	}
	total := 0
	for p := 0; p < 2; p++ {
		out := consume(t, data, "out", p)
		checkExactlyOnce(t, 0, "swapped output", upperAll(out), consume(t, data, "in", p), strings.ToUpper)
		total += len(out)
	}
	if total != len(lines) {
		t.Fatalf("%d outputs, want %d", total, len(lines))
	}
}

func upperAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.ToUpper(x)
	}
	return out
}

// TestKillDuringSwap: SIGKILL at random moments around a swap; every restart
// comes up consistent: each record is output exactly once, by one version.
func TestKillDuringSwap(t *testing.T) {
	seed, rng := crashRand(t, 5)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(100000, 4)
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "in", "--partitions", "2", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	args := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "log:out", "--data-dir", data, "--batch-size", "20"}
	for i := 0; i < 5; i++ {
		cmd, addr := startLogged(t, append(args, "--follow", "--admin", "127.0.0.1:0")...)
		swap := exec.Command(cliBin, "plugin", "swap", "--admin", addr, "--data-dir", data, plugin(t, "lowercase"))
		swap.Start()
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		swap.Wait()
	}
	if r := runCLI(t, "", testEnv(t), args...); r.code != 0 {
		t.Fatalf("final run: %d %s", r.code, r.stderr)
	}
	lower := 0
	for p := 0; p < 2; p++ {
		out := consume(t, data, "out", p)
		for _, o := range out {
			if o != strings.ToUpper(o) && o != strings.ToLower(o) {
				t.Fatalf("seed %d: %q processed by two versions", seed, o)
			}
			if o == strings.ToLower(o) {
				lower++
			}
		}
		defer t.Logf("%d records were processed by the swapped-in version before a kill", lower)
		checkExactlyOnce(t, seed, fmt.Sprintf("partition %d", p), upperAll(out), consume(t, data, "in", p), strings.ToUpper)
	}
}

// TestDeadLetterRetryUsesSwappedPlugin: `dlq retry` of a stopped pipeline
// runs the version the pipeline ran last, kept in the data directory. It
// used the file the pipeline had started from: after a swap to a fixed
// operator the entries failed again ("0 succeeded", exit 0).
func TestDeadLetterRetryUsesSwappedPlugin(t *testing.T) {
	dir := t.TempDir()
	data, in, out := filepath.Join(dir, "data"), filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, []string{`{"a":1}`, `{"v":"fail"}`, `{"b":2}`})
	cmd, addr := startLogged(t, "run", "--plugin", plugin(t, "internal/testutil/guests/hostile"), "--input", "file:"+in, "--output", "file:"+out,
		"--follow", "--admin", "127.0.0.1:0", "--admin-token", "s3cret", "--name", "orders", "--data-dir", data)
	deadline := time.Now().Add(30 * time.Second)
	for b, _ := os.ReadFile(out); strings.Count(string(b), "\n") < 2; b, _ = os.ReadFile(out) {
		if time.Now().After(deadline) {
			t.Fatal("the first batch did not commit")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := runCLI(t, "", nil, "plugin", "swap", "--admin", addr, "--token", "s3cret", plugin(t, "uppercase")); r.code != 0 {
		t.Fatalf("swap: %d %s", r.code, r.stderr)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v", err)
	}
	r := runCLI(t, "", testEnv(t), "dlq", "retry", "--all", "--data-dir", data)
	if r.code != 0 || !strings.Contains(r.stderr, "1 succeeded") || !strings.Contains(r.stderr, "uppercase") {
		t.Fatalf("retry after the swap: %d %s", r.code, r.stderr)
	}
	if got := readLines(t, out); strings.Join(got, "|") != `{"a":1}|{"b":2}|{"V":"FAIL"}` {
		t.Fatalf("output %q", got)
	}
}
