package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: every kind of bad input gives a clear error naming what
// failed, the documented exit code, no hang, and keeps what was committed.
func TestBadInput(t *testing.T) {
	good := jsonRecords(3000, 3)
	tests := []struct {
		name     string
		lines    []string // input file; nil: no file written
		plugin   string   // Go plugin name, or a path relative to the test's dir
		args     []string
		code     int
		stderr   []string // substrings of stderr
		outLines int      // committed output lines afterwards (-1: don't check)
	}{
		{name: "malformed JSON line", lines: append(append(append([]string{}, good[:2500]...), `{"n": oops}`), good[2500:]...),
			plugin: "uppercase", code: 2, stderr: []string{"in.jsonl line 2501", "not valid JSON", "everything before it is committed"}, outLines: 2500},
		{name: "empty input", lines: []string{}, plugin: "uppercase", code: 0, stderr: []string{"0 records in"}, outLines: 0},
		{name: "10 MB record", lines: []string{`{"big":"` + strings.Repeat("x", 10<<20) + `"}`, `{"small":1}`}, plugin: "uppercase", code: 0, outLines: 2},
		{name: "not a wasm file", lines: good, plugin: "@notwasm", code: 2, stderr: []string{"not a WebAssembly module", "\\x7fELF"}, outLines: -1},
		{name: "plugin missing exports", lines: good, plugin: "internal/testutil/guests/nosdk", code: 2,
			stderr: []string{"missing or mistyped ABI export", "missing export helios_process", "abi.md"}, outLines: -1},
		{name: "plugin refuses config", lines: good, plugin: "filter", code: 2, stderr: []string{"operator refused its configuration", "missing config [field equals]"}, outLines: -1},
		{name: "plugin traps", lines: append(append([]string{}, good[:2000]...), `{"v":"boom"}`), plugin: "internal/testutil/guests/hostile",
			code: 2, stderr: []string{"plugin trapped", "panic: boom: operator bug", "offset"}, outLines: 2000},
		{name: "plugin loops forever", lines: append(append([]string{}, good[:1000]...), `{"v":"loop"}`), plugin: "internal/testutil/guests/hostile",
			args: []string{"--batch-timeout", "1s"}, code: 2, stderr: []string{"batch deadline exceeded", "longer than 1s"}, outLines: 1000},
		{name: "plugin grows memory without bound", lines: append(append([]string{}, good[:1000]...), `{"v":"grow"}`), plugin: "internal/testutil/guests/hostile",
			args: []string{"--max-memory", "64"}, code: 2, stderr: []string{"memory limit", "64 MiB"}, outLines: 1000},
		{name: "missing input file", plugin: "uppercase", code: 2, stderr: []string{"input file", "no such file"}, outLines: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
			if tt.lines != nil {
				if len(tt.lines) == 0 {
					os.WriteFile(in, nil, 0o644)
				} else {
					writeLines(t, in, tt.lines)
				}
			}
			p := tt.plugin
			if p == "@notwasm" {
				p = cliBin // an ELF executable
			} else {
				p = plugin(t, p)
			}
			args := append([]string{"run", "--plugin", p, "--input", "file:" + in, "--output", "file:" + out,
				"--data-dir", filepath.Join(dir, "data"), "--batch-size", "500"}, tt.args...)
			r := runCLI(t, "", testEnv(t), args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if tt.outLines >= 0 {
				if got := len(readLines(t, out)); got != tt.outLines {
					t.Errorf("%d output lines committed, want %d", got, tt.outLines)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"run", "--input", "file:x", "--output", "-"}, `Required flag "plugin" not set`},
		{[]string{"run", "--plugin", "x.wasm", "--input", "file:x", "--output", "-", "--config", "novalue"}, `--config "novalue": want key=value`},
		{[]string{"run", "--plugin", "x.wasm", "--input", "file:x", "--output", "-", "--batch-size", "0"}, "--batch-size must be at least 1"},
		{[]string{"run", "--plugin", "/nonexistent.wasm", "--input", "file:x", "--output", "-"}, "plugin: open /nonexistent.wasm"},
		{[]string{"nosuchcommand"}, ""},
		{[]string{"consume", "--topic", "nope", "--data-dir", "@tmp"}, `topic "nope": no such topic`},
		{[]string{"produce", "--topic", "bad name", "--data-dir", "@tmp"}, "may only contain letters"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			for i, a := range tt.args {
				if a == "@tmp" {
					tt.args[i] = t.TempDir()
				}
			}
			r := runCLI(t, "", nil, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d, want 2 with %q\nstderr: %s", r.code, tt.stderr, r.stderr)
			}
		})
	}
}
