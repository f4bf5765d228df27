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
			plugin: "uppercase", args: []string{"--no-dlq"}, code: 2, stderr: []string{"in.jsonl line 2501", "not valid JSON", "everything before it is committed"}, outLines: 2500},
		{name: "empty input", lines: []string{}, plugin: "uppercase", code: 0, stderr: []string{"0 records in"}, outLines: 0},
		// Over the 8 MiB default --max-record-bytes: skipped and dead-lettered (code 111); a raised limit lets it through.
		{name: "10 MB record", lines: []string{`{"big":"` + strings.Repeat("x", 10<<20) + `"}`, `{"small":1}`}, plugin: "uppercase", code: 0,
			stderr: []string{"1 records went to the dead-letter queue"}, outLines: 1},
		{name: "10 MB record under a raised limit", lines: []string{`{"big":"` + strings.Repeat("x", 10<<20) + `"}`, `{"small":1}`}, plugin: "uppercase",
			args: []string{"--max-record-bytes", "16777216"}, code: 0, outLines: 2},
		{name: "record over the limit without DLQ", lines: append(append(append([]string{}, good[:600]...), `{"big":"`+strings.Repeat("x", 2000)+`"}`), good[600:]...),
			plugin: "uppercase", args: []string{"--no-dlq", "--max-record-bytes", "1000"}, code: 2,
			stderr: []string{"in.jsonl line 601", "longer than the 1000-byte limit", "--max-record-bytes", "everything before it is committed"}, outLines: 600},
		{name: "max-record-bytes zero", lines: good, plugin: "uppercase", args: []string{"--max-record-bytes", "0"}, code: 2,
			stderr: []string{"--max-record-bytes must be at least 1"}, outLines: -1},
		{name: "not a wasm file", lines: good, plugin: "@notwasm", code: 2, stderr: []string{"not a WebAssembly module", "\\x7fELF"}, outLines: -1},
		{name: "plugin missing exports", lines: good, plugin: "internal/testutil/guests/nosdk", code: 2,
			stderr: []string{"missing or mistyped ABI export", "missing export helios_process", "abi.md"}, outLines: -1},
		{name: "plugin refuses config", lines: good, plugin: "filter", code: 2, stderr: []string{"operator refused its configuration", "filter: needs --config field=NAME --config equals=VALUE"}, outLines: -1},
		{name: "plugin traps", lines: append(append([]string{}, good[:2000]...), `{"v":"boom"}`), plugin: "internal/testutil/guests/hostile",
			args: []string{"--no-dlq"}, code: 2, stderr: []string{"plugin trapped", "panic: boom: operator bug", "offset"}, outLines: 2000},
		{name: "plugin loops forever", lines: append(append([]string{}, good[:1000]...), `{"v":"loop"}`), plugin: "internal/testutil/guests/hostile",
			args: []string{"--batch-timeout", "1s", "--no-dlq"}, code: 2, stderr: []string{"batch deadline exceeded", "longer than 1s"}, outLines: 1000},
		{name: "plugin grows memory without bound", lines: append(append([]string{}, good[:1000]...), `{"v":"grow"}`), plugin: "internal/testutil/guests/hostile",
			args: []string{"--max-memory", "64", "--no-dlq"}, code: 2, stderr: []string{"memory limit", "64 MiB"}, outLines: 1000},
		// With the dead-letter queue (the default) the same records are set aside and the run completes.
		{name: "poison records dead-lettered", lines: append(append(append([]string{}, good[:1000]...), `{"v":"boom"}`, `{"v":"loop"}`, `{"v":"grow"}`, `{"v":"fail"}`, `{nope`), good[1000:]...),
			plugin: "internal/testutil/guests/hostile", args: []string{"--batch-timeout", "1s", "--max-memory", "64"}, code: 0,
			stderr: []string{"3000 out", "5 records went to the dead-letter queue", "helios-wasm dlq list"}, outLines: 3000},
		// A queue too small for a batch's failures ends a bounded run (exit 1) after committing what came before.
		{name: "dead-letter queue full", lines: append(append(append(append(append([]string{}, good[:499]...), `{"v":"fail"}`), good[499:998]...), `{"v":"fail"}`), good[998:1500]...),
			plugin: "internal/testutil/guests/hostile", args: []string{"--dlq-max", "1"}, code: 1,
			stderr: []string{"dead-letter queue full", "max 1", "needs 1 more", "dlq purge", "everything before this batch is committed", "(--dlq-max 1)"}, outLines: 499},
		{name: "batch larger than the dead-letter queue", lines: []string{`{"v":"fail"}`, `{"v":"fail"}`, `{"v":"fail"}`},
			plugin: "internal/testutil/guests/hostile", args: []string{"--dlq-max", "2"}, code: 1,
			stderr: []string{"one batch needs 3 entries, more than the queue's max of 2", "can never fit", "(--dlq-max 2)"}, outLines: 0},
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

func TestDeadLetterCLI(t *testing.T) {
	dir := t.TempDir()
	data, in := filepath.Join(dir, "data"), filepath.Join(dir, "in.jsonl")
	writeLines(t, in, []string{`{"a":1}`, `{"v":"fail"}`, `{"v":"boom"}`, `{nope`, `{"b":2}`})
	r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "internal/testutil/guests/hostile"), "--input", "file:"+in,
		"--output", "file:"+filepath.Join(dir, "out.jsonl"), "--data-dir", data, "--name", "orders")
	if r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	list := runCLI(t, "", nil, "dlq", "list", "--data-dir", data)
	for _, want := range []string{"1 GENERIC", "100 TRAP", "110 MALFORMED_INPUT", "in.jsonl line 4", "hostile: asked to fail"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("dlq list lacks %q:\n%s", want, list.stdout)
		}
	}
	exp := runCLI(t, "", nil, "dlq", "export", "--format", "jsonl", "--name", "orders", "--data-dir", data)
	if n := strings.Count(exp.stdout, "\n"); n != 3 || !strings.Contains(exp.stdout, `"value":"{\"v\":\"boom\"}"`) {
		t.Fatalf("export: %d lines\n%s", n, exp.stdout)
	}
	show := runCLI(t, "", nil, "dlq", "show", "--data-dir", data, "0")
	if show.code != 0 || !strings.Contains(show.stdout, `"code_name": "`) || !strings.Contains(show.stdout, `"pipeline": "orders"`) {
		t.Fatalf("show: %d %s %s", show.code, show.stdout, show.stderr)
	}
	if r := runCLI(t, "", nil, "dlq", "show", "--data-dir", data, "42"); r.code != 2 || !strings.Contains(r.stderr, "no such dead-letter entry") {
		t.Fatalf("show missing: %d %s", r.code, r.stderr)
	}
	// A retry with the same plugin fails again and keeps the entries...
	if r := runCLI(t, "", testEnv(t), "dlq", "retry", "--all", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "retried 2 entries") ||
		!strings.Contains(r.stderr, "0 succeeded") || !strings.Contains(r.stderr, "skipped 1 malformed-input") {
		t.Fatalf("retry with the same plugin: %d %s", r.code, r.stderr)
	}
	if show := runCLI(t, "", nil, "dlq", "show", "--data-dir", data, "1"); !strings.Contains(show.stdout, `"retry_count": 1`) {
		t.Fatalf("retry count not updated:\n%s", show.stdout)
	}
	// ...a fixed plugin moves the records to the output, once.
	if r := runCLI(t, "", testEnv(t), "dlq", "retry", "--id", "1", "--id", "2", "--plugin", plugin(t, "uppercase"), "--data-dir", data); r.code != 0 ||
		!strings.Contains(r.stderr, "2 succeeded (2 outputs") {
		t.Fatalf("retry with a fixed plugin: %d %s", r.code, r.stderr)
	}
	if got := readLines(t, filepath.Join(dir, "out.jsonl")); strings.Join(got, "|") != `{"a":1}|{"b":2}|{"V":"FAIL"}|{"V":"BOOM"}` {
		t.Fatalf("output after retry: %q", got)
	}
	if r := runCLI(t, "", nil, "dlq", "purge", "--id", "0", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "purged 1 entries; 0 left") {
		t.Fatalf("purge one: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "dlq", "purge", "--all", "--data-dir", data); r.code != 0 || !strings.Contains(r.stderr, "purged 0 entries; 0 left") {
		t.Fatalf("purge all: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "dlq", "list", "--name", "nope", "--data-dir", data); r.code != 2 || !strings.Contains(r.stderr, `no pipeline "nope"`) {
		t.Fatalf("unknown pipeline: %d %s", r.code, r.stderr)
	}
	// The pipeline resumes cleanly after dlq commands wrote their own transactions.
	if r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "internal/testutil/guests/hostile"), "--input", "file:"+in,
		"--output", "file:"+filepath.Join(dir, "out.jsonl"), "--data-dir", data, "--name", "orders"); r.code != 0 || !strings.Contains(r.stderr, "0 records in") {
		t.Fatalf("rerun: %d %s", r.code, r.stderr)
	}
}

func TestDedupCLI(t *testing.T) {
	dir := t.TempDir()
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out.jsonl")
	batch := `{"id":"a","v":1}` + "\n" + `{"id":"b","v":2}` + "\n" + `{"id":"a","v":1}` + "\n"
	for i := 0; i < 2; i++ { // the producer sends everything twice
		if r := runCLI(t, batch, nil, "produce", "--topic", "in", "--data-dir", data); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "log:in", "--output", "file:"+out,
		"--data-dir", data, "--id-field", "id")
	if r.code != 0 || !strings.Contains(r.stderr, "4 duplicate records skipped") {
		t.Fatalf("%d %s", r.code, r.stderr)
	}
	if got := readLines(t, out); strings.Join(got, "|") != `{"ID":"A","V":1}|{"ID":"B","V":2}` {
		t.Fatalf("output %q", got)
	}
}

func TestReplayCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	lines := jsonRecords(300, 3)
	if r := runCLI(t, strings.Join(lines, "\n")+"\n", nil, "produce", "--topic", "ev", "--data-dir", data); r.code != 0 {
		t.Fatal(r.stderr)
	}
	out := filepath.Join(dir, "replayed.jsonl")
	args := []string{"replay", "--input", "log:ev", "--from", "100", "--to", "110", "--plugin", plugin(t, "uppercase"), "--output", "file:" + out, "--data-dir", data}
	for run, want := range []string{"10 records in", "0 records in"} {
		if r := runCLI(t, "", testEnv(t), args...); r.code != 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("replay run %d: %d %s", run, r.code, r.stderr)
		}
	}
	checkExactlyOnce(t, 0, "replayed range", readLines(t, out), lines[100:110], strings.ToUpper)
	// stdin input is archived and can be replayed.
	r := runCLI(t, strings.Join(lines[:20], "\n")+"\n", testEnv(t), "run", "--plugin", plugin(t, "lowercase"), "--at-least-once", "--input", "-", "--output",
		"file:"+filepath.Join(dir, "s.jsonl"), "--data-dir", data, "--name", "fromstdin")
	if r.code != 0 || !strings.Contains(r.stderr, "at-least-once") {
		t.Fatalf("stdin run: %d %s", r.code, r.stderr)
	}
	out2 := filepath.Join(dir, "archive.jsonl")
	if r := runCLI(t, "", testEnv(t), "replay", "--input", "archive:fromstdin", "--plugin", plugin(t, "uppercase"), "--output", "file:"+out2, "--data-dir", data); r.code != 0 {
		t.Fatalf("archive replay: %d %s", r.code, r.stderr)
	}
	checkExactlyOnce(t, 0, "archive replay", readLines(t, out2), lines[:20], strings.ToUpper)
	// A window operator is refused: without windows its every record
	// failed into the replay's dead-letter queue, exit 0.
	if r := runCLI(t, "", testEnv(t), "replay", "--input", "log:ev", "--from", "0", "--plugin", plugin(t, "window_count"), "--output", "file:"+filepath.Join(dir, "w.jsonl"),
		"--data-dir", data); r.code != 2 || !strings.Contains(r.stderr, "is a window operator") {
		t.Fatalf("replay through a window operator: %d %s", r.code, r.stderr)
	}
}
