package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// envPrefix starts the environment variable of every flag of run and serve.
const envPrefix = "HELIOS_"

// flagEnvVar is the environment variable derived from a flag name:
// "max-queue-depth" -> "HELIOS_MAX_QUEUE_DEPTH".
func flagEnvVar(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// withEnv gives every flag in flags its HELIOS_<FLAG> environment variable,
// first (it wins over the seed's alias names a flag lists after it), keeping
// the variables a flag already names. It applies to flags added later as
// well: run and serve pass their whole flag list through it.
func withEnv(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		ev := envVarsField(f)
		if !ev.IsValid() {
			panic(fmt.Sprintf("flag --%s (%T) has no EnvVars field", f.Names()[0], f))
		}
		name := flagEnvVar(f.Names()[0])
		cur := ev.Interface().([]string)
		if !slices.Contains(cur, name) {
			ev.Set(reflect.ValueOf(append([]string{name}, cur...)))
		}
	}
	return flags
}

// envVarsField is the settable EnvVars field every urfave/cli flag struct has.
func envVarsField(f cli.Flag) reflect.Value {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	ev := v.Elem().FieldByName("EnvVars")
	if !ev.IsValid() || ev.Type() != reflect.TypeOf([]string(nil)) {
		return reflect.Value{}
	}
	return ev
}

// flagSource names a flag for an error about its value: "--FLAG", and its
// environment variables, which may be where the value came from.
func flagSource(c *cli.Context, name string) string {
	for _, f := range c.Command.Flags {
		if f.Names()[0] == name {
			if ev := envVarsField(f); ev.IsValid() && ev.Len() > 0 {
				return fmt.Sprintf("--%s (or %s)", name, strings.Join(ev.Interface().([]string), ", "))
			}
		}
	}
	return "--" + name
}

// EnvVars lists, sorted, every environment variable a helios-wasm flag
// reads (any command), with the seed's aliases. deploy/ checks its
// manifests against it.
func EnvVars() []string {
	seen := map[string]bool{}
	var walk func(flags []cli.Flag, cmds []*cli.Command)
	walk = func(flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			if ev := envVarsField(f); ev.IsValid() {
				for _, e := range ev.Interface().([]string) {
					seen[e] = true
				}
			}
		}
		for _, c := range cmds {
			walk(c.Flags, c.Subcommands)
		}
	}
	app := newApp()
	walk(app.Flags, app.Commands)
	out := make([]string, 0, len(seen))
	for e := range seen {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// dataDirEnvVars name the data directory: HELIOS_DATA_DIR and the seed's
// CHECKPOINT_DIR and DLQ_DIR (helios keeps checkpoints and the dead-letter
// queue in the one data directory).
var dataDirEnvVars = []string{"HELIOS_DATA_DIR", "CHECKPOINT_DIR", "DLQ_DIR"}

// checkDataDirEnv refuses data directory variables that disagree: the
// seed's layout had two directories, helios has one, and silently picking
// one of them would start an empty pipeline next to the existing one.
func checkDataDirEnv() error {
	var set []string
	first := ""
	for _, e := range dataDirEnvVars {
		v, ok := os.LookupEnv(e)
		if !ok || v == "" {
			continue
		}
		set = append(set, fmt.Sprintf("%s=%s", e, v))
		switch {
		case first == "":
			first = v
		case !sameDir(first, v):
			return usagef("environment: %s name different data directories; helios keeps offsets, checkpoints and the "+
				"dead-letter queue in one data directory: set HELIOS_DATA_DIR only (or make them equal)", strings.Join(set, " and "))
		}
	}
	return nil
}

func sameDir(a, b string) bool { return filepath.Clean(a) == filepath.Clean(b) }
