package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/scaffold"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// TestPluginNewBuildsAndPassesPluginTest: for every language, the generated
// project builds with one command and passes `plugin test` on its fixture;
// a wrong expectation fails with a diff; a config changes the output.
func TestPluginNewBuildsAndPassesPluginTest(t *testing.T) {
	for _, lang := range scaffold.Languages {
		t.Run(lang, func(t *testing.T) {
			env := testutil.ToolchainEnv(t, lang)
			dir := filepath.Join(t.TempDir(), "proj")
			name := "shout-" + lang
			if r := runCLI(t, "", nil, "plugin", "new", "--lang", lang, name, dir); r.code != 0 || !strings.Contains(r.stdout, "make test") {
				t.Fatalf("plugin new: %+v", r)
			}
			build := exec.Command("make", "-s")
			build.Dir = dir
			build.Env = append(append(os.Environ(), env...), "HELIOS="+cliBin)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("make: %v\n%s", err, out)
			}
			wasm := filepath.Join(dir, name+".wasm")
			in, expect := filepath.Join(dir, "testdata", "in.jsonl"), filepath.Join(dir, "testdata", "out.jsonl")
			r := runCLI(t, "", testEnv(t), "plugin", "test", "--input", in, "--expect", expect, wasm)
			if r.code != 0 || !strings.Contains(r.stdout, "3 records in, 3 out, 0 failed, output matches") {
				t.Fatalf("plugin test: %+v", r)
			}
			r = runCLI(t, "", testEnv(t), "plugin", "test", "--config", "suffix=!", "--input", in, "--expect", expect, wasm)
			if r.code != 1 || !strings.Contains(r.stdout, "\n-{\"MSG\":\"HELLO WORLD\"}\n") || !strings.Contains(r.stdout, "\n+{\"MSG\":\"HELLO WORLD\"}!\n") ||
				!strings.Contains(r.stderr, "output differs from") {
				t.Fatalf("plugin test with a suffix: %+v", r)
			}
			if r := runCLI(t, "", testEnv(t), "plugin", "inspect", wasm); r.code != 0 || !strings.Contains(r.stdout, "language:") {
				t.Fatalf("plugin inspect: %+v", r)
			}
		})
	}
}

func TestPluginNewRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--lang", "cobol", "op"}, `unknown language "cobol"`},
		{[]string{"--lang", "go", "Bad Name"}, "project name must start with a lowercase letter"},
		{[]string{"--lang", "go", "op", dir}, "already exists and is not empty"},
		{[]string{"op"}, `Required flag "lang" not set`},
	}
	for _, tt := range tests {
		r := runCLI(t, "", nil, append([]string{"plugin", "new"}, tt.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("plugin new %v: %+v, want exit 2 and %q", tt.args, r, tt.want)
		}
	}
}

// TestPluginTestFailuresAndUpdate: failed records appear as "# failed"
// lines, --update writes the expectation, and bad arguments are refused.
func TestPluginTestFailuresAndUpdate(t *testing.T) {
	dir := t.TempDir()
	in, expect := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, []string{`{"user":"u1"}`, `[1]`, ``, `{"user":"u2"}`})
	filter := plugin(t, "filter")
	args := []string{"plugin", "test", "--config", "field=user", "--config", "equals=u1", "--input", in, "--expect", expect}
	if r := runCLI(t, "", testEnv(t), append(args, filter)...); r.code != 2 || !strings.Contains(r.stderr, "create it with --update") {
		t.Fatalf("missing expectation: %+v", r)
	}
	if r := runCLI(t, "", testEnv(t), append(append(args, "--update"), filter)...); r.code != 0 {
		t.Fatalf("--update: %+v", r)
	}
	want := []string{`{"user":"u1"}`, "# failed line 2 (code 3): filter: value is not a JSON object"}
	if got := readLines(t, expect); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("--update wrote %q", got)
	}
	if r := runCLI(t, "", testEnv(t), append(args, filter)...); r.code != 0 || !strings.Contains(r.stdout, "3 records in, 1 out, 1 failed, output matches") {
		t.Fatalf("rerun: %+v", r)
	}
	if r := runCLI(t, "", testEnv(t), "plugin", "test", "--input", in, "--expect", expect, filter); r.code != 2 || !strings.Contains(r.stderr, "filter: needs --config") {
		t.Fatalf("missing config: %+v", r)
	}
}

// TestPluginTestIsolatesPoisonRecords: a record that makes the plugin trap
// shows as a failed line with the host's code, and the others still run.
func TestPluginTestIsolatesPoisonRecords(t *testing.T) {
	dir := t.TempDir()
	in, expect := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, []string{`{"v":"one"}`, `{"v":"boom"}`, `{"v":"two"}`, `{"v":"fail"}`, `{"v":"loop"}`})
	hostile := plugin(t, "internal/testutil/guests/hostile")
	r := runCLI(t, "", testEnv(t), "plugin", "test", "--batch-timeout", "300ms", "--update", "--input", in, "--expect", expect, hostile)
	if r.code != 0 || !strings.Contains(r.stdout, "5 records in, 2 out, 3 failed") {
		t.Fatalf("plugin test: %+v", r)
	}
	got := readLines(t, expect)
	if len(got) != 5 || got[0] != `{"v":"one"}` ||
		got[1] != "# failed line 2 (code 100): plugin trapped: wasm error: unreachable; guest stderr: panic: boom: operator bug" || got[2] != `{"v":"two"}` || got[3] != "# failed line 4 (code 1): hostile: asked to fail" ||
		!strings.HasPrefix(got[4], "# failed line 5 (code 101): batch deadline exceeded: the call ran longer than 300ms") {
		t.Fatalf("output %q", got)
	}
}

// TestPluginTestNotJSON: a line that is not JSON fails with code 110 in its
// place, without reaching the plugin, as `run` dead-letters it. Before, the
// plugin received it (uppercase turned it into an output line).
func TestPluginTestNotJSON(t *testing.T) {
	dir := t.TempDir()
	in, expect := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, []string{`"a"`, `not json`, ``, `"b"`})
	r := runCLI(t, "", testEnv(t), "plugin", "test", "--update", "--input", in, "--expect", expect, plugin(t, "uppercase"))
	if r.code != 0 || !strings.Contains(r.stdout, "3 records in, 2 out, 1 failed") {
		t.Fatalf("plugin test: %+v", r)
	}
	got := readLines(t, expect)
	if len(got) != 3 || got[0] != `"A"` || !strings.HasPrefix(got[1], "# failed line 2 (code 110): not valid JSON (invalid character") || got[2] != `"B"` {
		t.Fatalf("output %q", got)
	}
}
