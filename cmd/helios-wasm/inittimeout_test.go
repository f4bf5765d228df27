package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// loopingWAT builds an ABI v1 module that loops forever in its start
// section (start) or in helios_init (init).
func loopingWAT(t *testing.T, where string) string {
	start, init := "", "(i64.const 0)"
	switch where {
	case "start":
		start = `(func $s (loop $l (br $l))) (start $s)`
	case "init":
		init = `(loop $l (br $l)) (i64.const 0)`
	}
	src := `(module
  (memory (export "memory") 1)
  (func (export "helios_abi_version") (result i32) (i32.const 1))
  (func (export "helios_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "helios_dealloc") (param i32 i32))
  (func (export "helios_init") (param i32 i32) (result i64) ` + init + `)
  (func (export "helios_process") (param i32 i32) (result i64) (i64.const 0))
  ` + start + `)`
	path := filepath.Join(t.TempDir(), where+".wasm")
	if err := os.WriteFile(path, testutil.WAT(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoopingStartIsInterrupted: `plugin inspect` and `run` of a module
// whose start function (or helios_init) never returns fail within
// --init-timeout with an error that says so (they used to hang forever).
func TestLoopingStartIsInterrupted(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeLines(t, in, []string{`{"a":1}`})
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"inspect, start section", []string{"plugin", "inspect", "--init-timeout", "500ms", loopingWAT(t, "start")}},
		{"run, start section", []string{"run", "--init-timeout", "500ms", "--plugin", loopingWAT(t, "start"), "--input", "file:" + in, "--output", "-", "--at-least-once", "--data-dir", filepath.Join(dir, "d1")}},
		{"run, helios_init", []string{"run", "--init-timeout", "500ms", "--plugin", loopingWAT(t, "init"), "--input", "file:" + in, "--output", "-", "--at-least-once", "--data-dir", filepath.Join(dir, "d2")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			begin := time.Now()
			r := runCLI(t, "", testEnv(t), tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, "longer than the 500ms init timeout") {
				t.Fatalf("exit %d, want 2 naming the init timeout\nstderr: %s", r.code, r.stderr)
			}
			if took := time.Since(begin); took > 20*time.Second {
				t.Fatalf("took %v", took)
			}
		})
	}
}

// TestSIGTERMDuringInit: SIGTERM stops a run whose helios_init loops, long
// before the init timeout, and (nothing having been read) exits 0.
func TestSIGTERMDuringInit(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	writeLines(t, in, []string{`{"a":1}`})
	cmd := exec.Command(cliBin, "run", "--init-timeout", "10m", "--plugin", loopingWAT(t, "init"), "--input", "file:"+in,
		"--output", "-", "--at-least-once", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), testEnv(t)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("SIGTERM did not stop the run\nstderr: %s", stderr.String())
	}
}
