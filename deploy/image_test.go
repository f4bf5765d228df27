package deploy

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// instruction is one Dockerfile instruction: its keyword and the rest.
type instruction struct{ cmd, args string }

// stage is one FROM ... AS name section.
type stage struct {
	from, name string
	ins        []instruction
}

// parseDockerfile splits a Dockerfile into stages (comments dropped,
// continuation lines joined).
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before any FROM", path, cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, instruction{cmd, args})
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(line, " "), "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// dockerEnv parses ENV K=V [K=V...] instructions.
func dockerEnv(s stage) map[string]string {
	env := map[string]string{}
	for _, in := range s.ins {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	return env
}

func findStage(t *testing.T, stages []stage, name string) stage {
	t.Helper()
	for _, s := range stages {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no stage %q", name)
	return stage{}
}

// checkRuntimeStage checks the invariants of the image's final stage.
func checkRuntimeStage(t *testing.T, where string, s stage, cliVars map[string]bool) {
	t.Helper()
	env := dockerEnv(s)
	if env["HELIOS_DATA_DIR"] != "/data" {
		t.Errorf("%s: HELIOS_DATA_DIR=%q, want /data", where, env["HELIOS_DATA_DIR"])
	}
	names := sortedKeys(env)
	checkEnv(t, where, names, cliVars, map[string]bool{"PATH": true})
	_, port, err := net.SplitHostPort(env["HELIOS_ADMIN"])
	if err != nil || port != "8080" {
		t.Errorf("%s: HELIOS_ADMIN=%q, want a listener on port 8080", where, env["HELIOS_ADMIN"])
	}
	allowed := strings.Split(env["HELIOS_ADMIN_ALLOWED_HOSTS"], ",")
	got := map[string]string{}
	for _, in := range s.ins {
		got[in.cmd] = in.args
	}
	if u := got["USER"]; u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		t.Errorf("%s: USER %q: the image must run as a non-root user", where, u)
	}
	if got["VOLUME"] != "/data" {
		t.Errorf("%s: VOLUME %q, want /data", where, got["VOLUME"])
	}
	if got["EXPOSE"] != port {
		t.Errorf("%s: EXPOSE %q, but HELIOS_ADMIN listens on %s", where, got["EXPOSE"], port)
	}
	hc := got["HEALTHCHECK"]
	_, cmd, ok := strings.Cut(hc, "CMD ")
	var argv []string
	if !ok || json.Unmarshal([]byte(cmd), &argv) != nil || len(argv) < 4 || argv[0] != "helios-wasm" || argv[1] != "healthcheck" || argv[2] != "--admin" {
		t.Fatalf("%s: HEALTHCHECK %q, want CMD [\"helios-wasm\", \"healthcheck\", \"--admin\", ADDR] (no shell in the image)", where, hc)
	}
	if _, p, _ := net.SplitHostPort(argv[3]); p != port || !slices.Contains(allowed, argv[3]) {
		t.Errorf("%s: the health check asks %s, which must be port %s and in HELIOS_ADMIN_ALLOWED_HOSTS %v (else 421)", where, argv[3], port, allowed)
	}
	if !strings.Contains(got["ENTRYPOINT"], `"helios-wasm"`) {
		t.Errorf("%s: ENTRYPOINT %q", where, got["ENTRYPOINT"])
	}
}

// TestDockerfile checks the Dockerfile without a container engine: it
// pulls nothing, runs as non-root with the /data volume, port and health
// check consistent with the admin flags, sets only variables the CLI reads,
// and copies only what `make image` stages; the multi-stage variant for
// users with a registry ends in the same runtime stage.
func TestDockerfile(t *testing.T) {
	root := testutil.RepoRoot()
	cliVars := cliEnv(t)
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	seen := map[string]bool{}
	for _, s := range stages {
		if s.from != "scratch" && !seen[s.from] {
			t.Errorf("Dockerfile: FROM %s would be pulled; build from scratch and local stages only", s.from)
		}
		seen[s.name] = true
	}
	base := findStage(t, stages, "helios-wasm")
	checkRuntimeStage(t, "Dockerfile", base, cliVars)
	examples := findStage(t, stages, "helios-wasm-examples")
	if examples.from != "helios-wasm" {
		t.Errorf("helios-wasm-examples builds on %s, want the helios-wasm stage", examples.from)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stages {
		for _, in := range s.ins {
			if in.cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.args)
			src := strings.TrimSuffix(f[len(f)-2], "/")
			if !bytes.Contains(mk, []byte("$(IMAGE_CTX)/"+src)) {
				t.Errorf("Dockerfile copies %s, which make image does not stage into $(IMAGE_CTX)", src)
			}
		}
	}

	multi := parseDockerfile(t, filepath.Join(root, "deploy", "image", "Dockerfile.multistage"))
	mbase := findStage(t, multi, "helios-wasm")
	checkRuntimeStage(t, "Dockerfile.multistage", mbase, cliVars)
	same := func(s stage) []instruction {
		var out []instruction
		for _, in := range s.ins {
			if in.cmd != "COPY" {
				out = append(out, in)
			}
		}
		return out
	}
	if !slices.Equal(same(base), same(mbase)) {
		t.Errorf("Dockerfile.multistage's helios-wasm stage differs from the Dockerfile's:\n%v\n%v", same(mbase), same(base))
	}
	if mbase.from != "scratch" || findStage(t, multi, "helios-wasm-examples").from != "helios-wasm" {
		t.Error("Dockerfile.multistage: the runtime stage must be FROM scratch and the examples stage FROM helios-wasm")
	}
}

// engine is a container engine that can build here, or "" and why not.
func engine() (string, string) {
	var why []string
	for _, e := range []string{"docker", "podman"} {
		if _, err := exec.LookPath(e); err != nil {
			why = append(why, e+": not installed")
			continue
		}
		out, err := exec.Command(e, "info").CombinedOutput()
		if err == nil {
			return e, ""
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		why = append(why, e+": "+lines[len(lines)-1])
	}
	return "", strings.Join(why, "; ")
}

// TestImage builds the image with `make image` and, where the machine can
// run containers, runs `helios-wasm --version` and a small pipeline in it.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	e, why := engine()
	if e == "" {
		t.Skipf("no container engine can build images here (%s); TestDockerfile checked the Dockerfile", why)
	}
	testutil.Make(t, "image")
	out, err := exec.Command(e, "image", "inspect", "helios-wasm:examples").Output()
	if err != nil {
		t.Fatalf("%s image inspect helios-wasm:examples: %v", e, err)
	}
	type healthcheck struct{ Test []string }
	var img []struct {
		Config struct {
			User        string
			Env         []string
			Healthcheck *healthcheck // docker
		}
		Healthcheck *healthcheck // podman
	}
	if err := json.Unmarshal(out, &img); err != nil || len(img) != 1 {
		t.Fatalf("image inspect: %v\n%s", err, out)
	}
	c := img[0].Config
	if c.Healthcheck == nil {
		c.Healthcheck = img[0].Healthcheck
	}
	if c.User != "65532:65532" || !slices.Contains(c.Env, "HELIOS_DATA_DIR=/data") || c.Healthcheck == nil || !slices.Contains(c.Healthcheck.Test, "healthcheck") {
		t.Fatalf("built image config: user %q, env %v, healthcheck %+v", c.User, c.Env, c.Healthcheck)
	}

	out, err = exec.Command(e, "run", "--rm", "helios-wasm", "--version").CombinedOutput()
	if err != nil {
		t.Skipf("%s builds images here but cannot run containers (%v: %s); the image was built and inspected", e, err, bytes.TrimSpace(out))
	}
	if !strings.Contains(string(out), "helios-wasm version") {
		t.Fatalf("--version in the image: %s", out)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // the image runs as uid 65532
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte("\"a\"\n\"b\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(e, "run", "--rm", "-v", dir+":/work", "helios-wasm:examples", "run",
		"--plugin", "/plugins/go/uppercase.wasm", "--input", "file:/work/in.jsonl", "--output", "file:/work/out.jsonl", "--admin", "").CombinedOutput()
	if err != nil {
		t.Fatalf("pipeline in the image: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out.jsonl")); string(got) != "\"A\"\n\"B\"\n" {
		t.Fatalf("pipeline output %q", got)
	}
}
