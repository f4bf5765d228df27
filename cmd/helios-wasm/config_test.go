package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/storage"
)

// TestEveryRunAndServeFlagHasEnvVar walks every flag of run and serve: each
// reads HELIOS_<FLAG> first, and EnvVars (what deploy/ checks its manifests
// against) lists it, with the seed's aliases.
func TestEveryRunAndServeFlagHasEnvVar(t *testing.T) {
	all := EnvVars()
	for _, cmd := range []*cli.Command{runCommand(), serveCommand()} {
		for _, f := range cmd.Flags {
			name := f.Names()[0]
			ev := envVarsField(f)
			if !ev.IsValid() {
				t.Errorf("%s --%s: no EnvVars", cmd.Name, name)
				continue
			}
			vars := ev.Interface().([]string)
			want := flagEnvVar(name)
			if len(vars) == 0 || vars[0] != want {
				t.Errorf("%s --%s: environment variables %v, want %s first", cmd.Name, name, vars, want)
			}
			if n := strings.Count(strings.Join(vars, " ")+" ", want+" "); n != 1 {
				t.Errorf("%s --%s: %s listed %d times", cmd.Name, name, want, n)
			}
			if !slices.Contains(all, want) {
				t.Errorf("EnvVars() lacks %s", want)
			}
		}
	}
	for _, e := range []string{"CHECKPOINT_DIR", "DLQ_DIR", "MAX_QUEUE_DEPTH", "TRANSACTION_TIMEOUT", "HELIOS_LOG_LEVEL", "HELIOS_KAFKA_BROKERS", "HELIOS_CONFIG"} {
		if !slices.Contains(all, e) {
			t.Errorf("EnvVars() lacks %s", e)
		}
	}
	if !slices.IsSorted(all) {
		t.Errorf("EnvVars() not sorted: %v", all)
	}
}

// TestWithEnvCoversAnyFlag: a flag added later to run or serve gets its
// variable without listing it; a seed alias stays after it.
func TestWithEnvCoversAnyFlag(t *testing.T) {
	flags := withEnv([]cli.Flag{
		&cli.StringFlag{Name: "output-schema"},
		&cli.IntFlag{Name: "depth", EnvVars: []string{"SEED_DEPTH"}},
		&cli.GenericFlag{Name: "wait", Value: &seconds{}},
		&cli.StringFlag{Name: "data", EnvVars: []string{"HELIOS_DATA", "OLD_DATA"}},
	})
	want := [][]string{{"HELIOS_OUTPUT_SCHEMA"}, {"HELIOS_DEPTH", "SEED_DEPTH"}, {"HELIOS_WAIT"}, {"HELIOS_DATA", "OLD_DATA"}}
	for i, f := range flags {
		if got := envVarsField(f).Interface().([]string); !slices.Equal(got, want[i]) {
			t.Errorf("--%s: %v, want %v", f.Names()[0], got, want[i])
		}
	}
}

func TestFlagEnvVar(t *testing.T) {
	for flag, want := range map[string]string{"data-dir": "HELIOS_DATA_DIR", "max-queue-depth": "HELIOS_MAX_QUEUE_DEPTH", "admin": "HELIOS_ADMIN"} {
		if got := flagEnvVar(flag); got != want {
			t.Errorf("flagEnvVar(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestCheckDataDirEnv(t *testing.T) {
	for _, tc := range []struct {
		name            string
		helios, ck, dlq string
		wantErr         string
	}{
		{name: "none"},
		{name: "checkpoint dir alone", ck: "/d"},
		{name: "all agree", helios: "/d", ck: "/d/", dlq: "/x/../d"},
		{name: "seed dirs differ", ck: "/a", dlq: "/b", wantErr: "CHECKPOINT_DIR=/a and DLQ_DIR=/b name different data directories"},
		{name: "differs from HELIOS_DATA_DIR", helios: "/a", dlq: "/b", wantErr: "HELIOS_DATA_DIR=/a and DLQ_DIR=/b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HELIOS_DATA_DIR", tc.helios)
			t.Setenv("CHECKPOINT_DIR", tc.ck)
			t.Setenv("DLQ_DIR", tc.dlq)
			err := checkDataDirEnv()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			case err != nil && exitCode(err) != exitInput:
				t.Fatalf("exit code %d, want %d", exitCode(err), exitInput)
			}
		})
	}
}

func TestParseSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "1.5": 1500 * time.Millisecond, "45s": 45 * time.Second, "2m": 2 * time.Minute, " 7 ": 7 * time.Second} {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "30x"} {
		if _, err := parseSeconds(in); err == nil || !strings.Contains(err.Error(), "number of seconds") {
			t.Errorf("parseSeconds(%q): error %v", in, err)
		}
	}
}

// clearConfigEnv unsets (for the test) every variable the CLI reads.
func clearConfigEnv(t *testing.T) {
	for _, e := range EnvVars() {
		if v, ok := os.LookupEnv(e); ok {
			t.Setenv(e, v) // restored after the test
			os.Unsetenv(e)
		}
	}
}

// loadServe runs `serve` in process up to loading its configuration.
func loadServe(t *testing.T, path string, args ...string) (*serveConfig, error) {
	t.Helper()
	cmd := serveCommand()
	var cfg *serveConfig
	cmd.Action = func(c *cli.Context) (err error) {
		cfg, err = loadServeConfig(c, c.String("config"))
		return err
	}
	app := &cli.App{Name: "helios-wasm", Commands: []*cli.Command{cmd}, ExitErrHandler: func(*cli.Context, error) {}}
	err := app.Run(append([]string{"helios-wasm", "serve", "--config", path}, args...))
	return cfg, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const onePipelineYAML = "pipelines:\n  - {name: p, plugin: p.wasm, input: log:in, output: log:out}\n"

// TestServeConfigPrecedence: for each setting, default < file < environment
// (HELIOS_<FLAG>, or the seed's alias) < flag.
func TestServeConfigPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		file                   string // a top-level line of the file
		env                    map[string]string
		flag                   []string
		get                    func(*serveConfig) any
		def, fromFile, fromEnv any
		fromFlag               any
	}{
		{"data dir", "data_dir: /file", map[string]string{"HELIOS_DATA_DIR": "/env"}, []string{"--data-dir", "/flag"},
			func(c *serveConfig) any { return c.DataDir }, "./helios-data", "/file", "/env", "/flag"},
		{"data dir by seed alias", "data_dir: /file", map[string]string{"CHECKPOINT_DIR": "/env", "DLQ_DIR": "/env"}, []string{"--data-dir", "/flag"},
			func(c *serveConfig) any { return c.DataDir }, "./helios-data", "/file", "/env", "/flag"},
		{"admin", `admin: ""`, map[string]string{"HELIOS_ADMIN": "127.0.0.1:9001"}, []string{"--admin", "127.0.0.1:9002"},
			func(c *serveConfig) any { return *c.Admin }, "127.0.0.1:8080", "", "127.0.0.1:9001", "127.0.0.1:9002"},
		{"admin token", "admin_token: f", map[string]string{"HELIOS_ADMIN_TOKEN": "e"}, []string{"--admin-token", "g"},
			func(c *serveConfig) any { return c.AdminToken }, "", "f", "e", "g"},
		{"keep versions", "keep_versions: 3", map[string]string{"HELIOS_KEEP_VERSIONS": "4"}, []string{"--keep-versions", "5"},
			func(c *serveConfig) any { return c.KeepVersions }, 10, 3, 4, 5},
		{"transaction timeout", "transaction_timeout: 45", map[string]string{"HELIOS_TRANSACTION_TIMEOUT": "1m", "TRANSACTION_TIMEOUT": "50"}, []string{"--transaction-timeout", "2m"},
			func(c *serveConfig) any { return c.commit.txnTimeout }, 30 * time.Second, 45 * time.Second, time.Minute, 2 * time.Minute},
		{"transaction timeout by seed alias (seconds)", "transaction_timeout: 45s", map[string]string{"TRANSACTION_TIMEOUT": "50"}, []string{"--transaction-timeout", "2m"},
			func(c *serveConfig) any { return c.commit.txnTimeout }, 30 * time.Second, 45 * time.Second, 50 * time.Second, 2 * time.Minute},
		{"checkpoint every", "checkpoint_every: 100", map[string]string{"HELIOS_CHECKPOINT_EVERY": "200"}, []string{"--checkpoint-every", "300"},
			func(c *serveConfig) any { return c.commit.checkpointEvery }, int64(10_000), int64(100), int64(200), int64(300)},
		{"checkpoints keep", "checkpoints_keep: 2", map[string]string{"HELIOS_CHECKPOINTS_KEEP": "3"}, []string{"--checkpoints-keep", "4"},
			func(c *serveConfig) any { return c.commit.checkpointsKeep }, 10, 2, 3, 4},
		{"max queue depth by seed alias", "max_queue_depth: 2", map[string]string{"MAX_QUEUE_DEPTH": "3"}, []string{"--max-queue-depth", "4"},
			func(c *serveConfig) any { return c.commit.maxQueueDepth }, 8, 2, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layers := []struct {
				name             string
				file, env, flags bool
				want             any
			}{
				{"default", false, false, false, tc.def},
				{"file", true, false, false, tc.fromFile},
				{"env over file", true, true, false, tc.fromEnv},
				{"flag over env", true, true, true, tc.fromFlag},
				{"env over default", false, true, false, tc.fromEnv},
			}
			for _, l := range layers {
				t.Run(l.name, func(t *testing.T) {
					clearConfigEnv(t)
					content := onePipelineYAML
					if l.file {
						content = tc.file + "\n" + content
					}
					if l.env {
						for k, v := range tc.env {
							t.Setenv(k, v)
						}
					}
					var args []string
					if l.flags {
						args = tc.flag
					}
					cfg, err := loadServe(t, writeFile(t, "serve.yaml", content), args...)
					if err != nil {
						t.Fatal(err)
					}
					if got := tc.get(cfg); got != l.want {
						t.Errorf("got %v (%T), want %v (%T)", got, got, l.want, l.want)
					}
				})
			}
		})
	}
}

// TestServeConfigYAMLEqualsJSON: the same configuration in either format
// loads the same.
func TestServeConfigYAMLEqualsJSON(t *testing.T) {
	clearConfigEnv(t)
	yml := `# pipelines of the shop
data_dir: /data
admin: ""
admin_allowed_hosts: [helios.local]
keep_versions: 4
transaction_timeout: 1m30s
checkpoint_every: 500
checkpoints_keep: 3
max_queue_depth: 2
pipelines:
  - name: purchases
    plugin: filter.wasm
    config: [field=action, equals=buy]
    input: log:events
    output: log:purchases
    batch_size: 10
    follow: false
    dlq_max: 5
    final_line: true
    from_start: true
    max_record_bytes: 1024
`
	jsn := `{"data_dir": "/data", "admin": "", "admin_allowed_hosts": ["helios.local"], "keep_versions": 4,
 "transaction_timeout": "1m30s", "checkpoint_every": 500, "checkpoints_keep": 3, "max_queue_depth": 2,
 "pipelines": [{"name": "purchases", "plugin": "filter.wasm", "config": ["field=action", "equals=buy"],
  "input": "log:events", "output": "log:purchases", "batch_size": 10, "follow": false, "dlq_max": 5,
  "final_line": true, "from_start": true, "max_record_bytes": 1024}]}`
	var got []*serveConfig
	for _, f := range []struct{ name, content string }{{"s.yaml", yml}, {"s.yml", yml}, {"s.json", jsn}, {"s.conf", jsn}} {
		cfg, err := loadServe(t, writeFile(t, f.name, f.content))
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		got = append(got, cfg)
	}
	c := got[0]
	if c.DataDir != "/data" || *c.Admin != "" || c.KeepVersions != 4 || c.commit.txnTimeout != 90*time.Second || c.commit.checkpointEvery != 500 ||
		c.commit.checkpointsKeep != 3 || c.commit.maxQueueDepth != 2 || len(c.Pipelines) != 1 || *c.Pipelines[0].Follow ||
		c.Pipelines[0].MaxRecordBytes != 1024 || !slices.Equal(c.Pipelines[0].Config, []string{"field=action", "equals=buy"}) {
		t.Fatalf("YAML loaded as %+v", c)
	}
	for i := 1; i < len(got); i++ {
		if !reflect.DeepEqual(got[i], c) {
			t.Errorf("file %d loaded as %+v, want %+v", i, got[i], c)
		}
	}
}

// TestServeConfigErrors: every error names the file, line and column.
func TestServeConfigErrors(t *testing.T) {
	clearConfigEnv(t)
	for _, tc := range []struct {
		file, content string
		want          []string
	}{
		{"unknown.yaml", "data_dir: d\npipelines:\n  - name: p\n    plugin: p.wasm\n    input: log:in\n    output: log:out\n    bogus: 1\n",
			[]string{"unknown.yaml:7:5: unknown field \"bogus\""}},
		{"unknown.json", "{\"data_dir\": \"d\",\n \"datadir\": \"e\", \"pipelines\": []}", []string{"unknown.json:2:2: unknown field \"datadir\""}},
		{"syntax.yaml", "data_dir: [\n", []string{"syntax.yaml:1:"}},
		{"trailing-comma.json", "{\"data_dir\": \"d\",\n \"pipelines\": [],}", []string{"trailing-comma.json:2:18:", "(JSON)"}},
		{"type.yaml", "keep_versions: many\n" + onePipelineYAML, []string{"type.yaml:1:16:"}},
		{"timeout.yaml", "transaction_timeout: soon\n" + onePipelineYAML, []string{"timeout.yaml:1:22: transaction_timeout \"soon\": want a duration"}},
		{"values.yaml", "checkpoint_every: -1\nkeep_versions: 1\npipelines:\n  - {name: p, plugin: p.wasm, input: log:in, output: log:out}\n  - {name: p, plugin: p.wasm, input: log:in}\n",
			[]string{"values.yaml:1:19: checkpoint_every -1: at least 1", "values.yaml:2:16: keep_versions 1: at least 2",
				`values.yaml:5:5: pipelines[1]: pipeline "p" appears twice`, "values.yaml:5:5: pipelines[1] (p): output is required"}},
		{"none.yaml", "data_dir: d\n", []string{"none.yaml: no pipelines"}},
		{"window.yaml", "data_dir: d\npipelines:\n  - {name: p, plugin: p.wasm, input: log:in, output: log:out, window: tumbling:1m}\n" +
			"  - {name: q, plugin: p.wasm, input: log:in, output: log:out, event_time: json:ts, window: session:1ms0, emit: all}\n",
			[]string{"pipelines[0] (p): window: event-time settings need", "pipelines[0] (p): event_time (where to read the event time)",
				`pipelines[1] (q): window: window spec "session:1ms0": gap "1ms0" is not a duration`, `pipelines[1] (q): emit "all": want final or updates`}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := loadServe(t, writeFile(t, tc.file, tc.content))
			if err == nil {
				t.Fatal("loaded")
			}
			if exitCode(err) != exitInput {
				t.Errorf("exit code %d, want %d", exitCode(err), exitInput)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// A bad value from a flag or variable is reported as such, not at the file.
	t.Setenv("MAX_QUEUE_DEPTH", "0")
	_, err := loadServe(t, writeFile(t, "s.yaml", "max_queue_depth: 3\n"+onePipelineYAML))
	if err == nil || !strings.Contains(err.Error(), "--max-queue-depth (or HELIOS_MAX_QUEUE_DEPTH, MAX_QUEUE_DEPTH): max_queue_depth 0: at least 1") {
		t.Errorf("error %v does not name the flag and its variables", err)
	}
}

// TestRunFromEnvironment runs a pipeline configured only by environment
// variables (seed alias CHECKPOINT_DIR for the data directory) and checks
// that the checkpoint settings reach the pipeline; a transaction timeout
// from TRANSACTION_TIMEOUT reaches the coordinator.
func TestRunFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	in, out, data := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "data")
	writeLines(t, in, []string{`{"a":"x"}`, `{"a":"y"}`, `{"a":"z"}`, `{"a":"w"}`, `{"a":"v"}`})
	env := append(testEnv(t), "HELIOS_PLUGIN="+plugin(t, "uppercase"), "HELIOS_INPUT=file:"+in, "HELIOS_OUTPUT=file:"+out,
		"CHECKPOINT_DIR="+data, "HELIOS_NAME=envpipe", "HELIOS_ADMIN=", "HELIOS_BATCH_SIZE=1",
		"HELIOS_CHECKPOINT_EVERY=1", "HELIOS_CHECKPOINTS_KEEP=2", "MAX_QUEUE_DEPTH=1", "TRANSACTION_TIMEOUT=20")
	if r := runCLI(t, "", env, "run"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := readLines(t, out); len(got) != 5 || got[0] != `{"A":"X"}` {
		t.Fatalf("output %v", got)
	}
	db, err := storage.Open(data, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("data directory from CHECKPOINT_DIR: %v", err)
	}
	n := 0
	err = db.ListSeq(storage.SeqCheckpoint, "envpipe", func(uint64, []byte) error { n++; return nil })
	db.Close()
	if err != nil || n != 2 {
		t.Fatalf("%d checkpoints kept (%v), want 2 (a checkpoint per record, 2 kept)", n, err)
	}

	for _, tc := range []struct {
		name string
		env  []string
		code int
		want string
	}{
		{"timeout reaches the coordinator", []string{"TRANSACTION_TIMEOUT=0.000000001"}, exitRuntime, "beyond the 1ns timeout: transaction timed out"},
		{"zero timeout", []string{"TRANSACTION_TIMEOUT=0"}, exitInput, "--transaction-timeout (or HELIOS_TRANSACTION_TIMEOUT, TRANSACTION_TIMEOUT) 0s: must be positive"},
		{"unparsable timeout", []string{"TRANSACTION_TIMEOUT=soon"}, exitInput, `"soon": want a duration such as 30s or 2m, or a number of seconds`},
		{"bad checkpoints keep", []string{"HELIOS_CHECKPOINTS_KEEP=0"}, exitInput, "--checkpoints-keep (or HELIOS_CHECKPOINTS_KEEP) 0: at least 1"},
		{"data directories differ", []string{"CHECKPOINT_DIR=" + data, "DLQ_DIR=" + data + "2"}, exitInput, "name different data directories"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out2 := filepath.Join(t.TempDir(), "out.jsonl")
			env := append(testEnv(t), "HELIOS_PLUGIN="+plugin(t, "uppercase"), "HELIOS_INPUT=file:"+in, "HELIOS_OUTPUT=file:"+out2,
				"HELIOS_DATA_DIR="+filepath.Join(t.TempDir(), "d"), "HELIOS_ADMIN=")
			if tc.name == "data directories differ" {
				env[len(env)-2] = "HELIOS_DATA_DIR=" + data
			}
			r := runCLI(t, "", append(env, tc.env...), "run")
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q lacks %q", r.code, tc.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "USAGE:") {
				t.Errorf("usage error prints the whole help: %s", r.stderr)
			}
		})
	}
}
