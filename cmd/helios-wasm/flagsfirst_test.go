package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestFlagsFirst(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		// The case: a flag after the file.
		{"plugin swap op.wasm --config k=v", "plugin swap --config k=v op.wasm"},
		{"plugin swap --admin 127.0.0.1:9 op.wasm -c a=1 --config=b=2", "plugin swap --admin 127.0.0.1:9 -c a=1 --config=b=2 op.wasm"},
		{"--log-level debug plugin test op.wasm --input in --update --expect out", "--log-level debug plugin test --input in --update --expect out op.wasm"},
		{"dlq show 7 --data-dir d --name p", "dlq show --data-dir d --name p 7"},
		{"plugin new x dir --lang rust", "plugin new --lang rust x dir"},
		// Flag values that look like positionals stay with their flag.
		{"plugin test op.wasm --input - --expect out", "plugin test --input - --expect out op.wasm"},
		// Unchanged: already in order, "--", commands without positionals, unknown commands.
		{"plugin swap --config k=v op.wasm", "plugin swap --config k=v op.wasm"},
		{"plugin swap op.wasm -- --config", "plugin swap op.wasm -- --config"},
		{"run --plugin p.wasm --input - --output -", "run --plugin p.wasm --input - --output -"},
		{"nosuch a --b c", "nosuch a --b c"},
		{"", ""},
	} {
		args := append([]string{"helios-wasm"}, strings.Fields(tc.in)...)
		got := strings.Join(flagsFirst(app, args)[1:], " ")
		if got != tc.want {
			t.Errorf("flagsFirst(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFlagAfterArgument runs the CLI with the flags after the plugin file.
func TestFlagAfterArgument(t *testing.T) {
	dir := t.TempDir()
	in, expect := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeLines(t, in, []string{`{"a":"x"}`})
	writeLines(t, expect, []string{`{"A":"X"}`})
	r := runCLI(t, "", testEnv(t), "plugin", "test", plugin(t, "uppercase"), "--input", in, "--expect", expect, "--batch-size", "10")
	if r.code != 0 {
		t.Fatalf("plugin test FILE --input ... --expect ...: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestFlagPlaceholders: urfave/cli takes the back-quoted part of a flag's
// usage as its placeholder in --help; it must be a single word.
func TestFlagPlaceholders(t *testing.T) {
	var walk func(path string, cmds []*cli.Command, flags []cli.Flag)
	walk = func(path string, cmds []*cli.Command, flags []cli.Flag) {
		for _, f := range flags {
			d, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			u := d.GetUsage()
			if i := strings.IndexByte(u, '`'); i >= 0 {
				if j := strings.IndexByte(u[i+1:], '`'); j >= 0 && strings.ContainsAny(u[i+1:i+1+j], " \t") {
					t.Errorf("%s --%s: placeholder %q in usage %q", path, f.Names()[0], u[i+1:i+1+j], u)
				}
			}
		}
		for _, c := range cmds {
			walk(path+" "+c.Name, c.Subcommands, c.Flags)
		}
	}
	app := newApp()
	walk(filepath.Base(os.Args[0]), app.Commands, app.Flags)
}
