package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/internal/crashpoint"
	"github.com/heliosdb/helios-wasm/internal/kafkatest"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

var cliBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "helios-cli-test-")
	if err != nil {
		panic(err)
	}
	cliBin = filepath.Join(dir, "helios-wasm")
	// The crash tests need the crash-point hooks, compiled only with the tag;
	// a test binary built with the wasmtime tag tests a CLI that has it too.
	tags := crashpoint.BuildTag
	if cliHasWasmtime() {
		tags += ",wasmtime"
	}
	if out, err := exec.Command("go", "build", "-tags", tags, "-o", cliBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build CLI: %v\n%s", err, out)
		os.Exit(1)
	}
	code := kafkatest.Main(m) // stops the Kafka cluster if a test started it
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one finished CLI invocation.
type result struct {
	code           int
	stdout, stderr string
	signaled       bool
}

// runCLI runs the CLI to completion with a timeout (a hang fails the test).
func runCLI(t testing.TB, stdin string, env []string, args ...string) result {
	t.Helper()
	return runCLIWith(t, nil, stdin, env, args...)
}

// runCLIWith is runCLI with prepare (when not nil) applied to the command
// before it starts.
func runCLIWith(t testing.TB, prepare func(*exec.Cmd), stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), env...)
	if prepare != nil {
		prepare(cmd)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return toResult(t, err, out.String(), errb.String())
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("helios-wasm %v hung\nstderr: %s", args, errb.String())
	}
	return result{}
}

func toResult(t testing.TB, err error, stdout, stderr string) result {
	r := result{stdout: stdout, stderr: stderr}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signaled, r.code = true, -1
		} else {
			r.code = ee.ExitCode()
		}
	default:
		t.Fatal(err)
	}
	return r
}

func writeLines(t testing.TB, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func plugin(t testing.TB, name string) string { return testutil.GoPlugin(t, name) }

// testEnv shares the compilation cache between the CLI runs of a test.
func testEnv(t testing.TB) []string {
	return []string{"HELIOS_CACHE_DIR=" + filepath.Join(os.TempDir(), "helios-cli-test-cache")}
}

// startLogged starts the CLI and waits for a log line with
// addr=http://HOST:PORT (the admin API), returning the command and address.
// The caller kills or signals the command.
func startLogged(t testing.TB, args ...string) (*exec.Cmd, string) {
	t.Helper()
	re := regexp.MustCompile(`addr=http://(\S+)`)
	var addr string
	cmd := startUntil(t, "its admin address", func(line string) bool {
		if m := re.FindStringSubmatch(line); m != nil {
			addr = m[1]
		}
		return addr != ""
	}, args...)
	return cmd, addr
}

// startWaiting starts the CLI and waits until its stderr has a line
// containing want. The caller signals or kills the command.
func startWaiting(t testing.TB, want string, args ...string) *exec.Cmd {
	t.Helper()
	return startUntil(t, fmt.Sprintf("%q", want), func(line string) bool { return strings.Contains(line, want) }, args...)
}

// background is a CLI process the test started: its stderr so far, and
// done, which receives its exit once.
type background struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	done   <-chan error
}

// startCLI starts helios-wasm args with the tests' environment plus env,
// without waiting for it.
func startCLI(t testing.TB, env []string, args ...string) background {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return background{cmd: cmd, stderr: &stderr, done: done}
}

// startUntil starts the CLI and reads its stderr until done accepts a line
// (then discards the rest); what names what done waits for.
func startUntil(t testing.TB, what string, done func(line string) bool, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), testEnv(t)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if done(sc.Text()) {
			go io.Copy(io.Discard, stderr)
			return cmd
		}
	}
	t.Fatalf("helios-wasm %v never logged %s", args, what)
	return nil
}
