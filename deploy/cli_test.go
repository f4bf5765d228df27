package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

var (
	cliOnce sync.Once
	cliDir  string
	cliPath string
	cliErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	os.Exit(code)
}

// cli builds helios-wasm once per test process.
func cli(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		if cliDir, cliErr = os.MkdirTemp("", "helios-deploy-test-"); cliErr != nil {
			return
		}
		cliPath = filepath.Join(cliDir, "helios-wasm")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/helios-wasm")
		cmd.Dir = testutil.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("build helios-wasm: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// envInHelp matches urfave/cli's "[$A, $B]" after a flag's usage.
var envInHelp = regexp.MustCompile(`\[(\$[A-Z][A-Z0-9_]*(?:, \$[A-Z][A-Z0-9_]*)*)\]`)

// cliEnv is every environment variable the CLI's global, run and serve
// flags read, taken from their --help output, so that the deployment files
// follow the CLI as it gains variables.
func cliEnv(t *testing.T) map[string]bool {
	t.Helper()
	bin := cli(t)
	env := map[string]bool{}
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"serve", "--help"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("helios-wasm %v: %v\n%s", args, err, out)
		}
		for _, m := range envInHelp.FindAllStringSubmatch(string(out), -1) {
			for _, name := range strings.Split(m[1], ", ") {
				env[strings.TrimPrefix(name, "$")] = true
			}
		}
	}
	// Sanity: these have been in `run --help` since the start.
	for _, must := range []string{"HELIOS_DATA_DIR", "HELIOS_ADMIN", "HELIOS_ADMIN_TOKEN", "HELIOS_KAFKA_BROKERS"} {
		if !env[must] {
			t.Fatalf("parsed no %s from the CLI's --help (found %v): has the help format changed?", must, sortedKeys(env))
		}
	}
	return env
}

// checkEnv fails for a HELIOS_ variable the CLI does not read. Other names
// are allowed only where listed in other (e.g. variables expanded in args).
func checkEnv(t *testing.T, where string, names []string, cliVars map[string]bool, other map[string]bool) {
	t.Helper()
	for _, n := range names {
		if !cliVars[n] && !other[n] {
			t.Errorf("%s sets %s, which the CLI does not read (it reads %s)", where, n, strings.Join(sortedKeys(cliVars), ", "))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestCLIEnvFromHelp checks that reading --help finds the variables the
// manifests rely on, so that the checks built on cliEnv mean something.
func TestCLIEnvFromHelp(t *testing.T) {
	env := cliEnv(t)
	for _, want := range []string{"HELIOS_DATA_DIR", "HELIOS_ADMIN", "HELIOS_ADMIN_ALLOWED_HOSTS", "HELIOS_KAFKA_BROKERS", "HELIOS_LOG_FORMAT"} {
		if !env[want] {
			t.Errorf("%s not found in the CLI's --help; it reads %v", want, sortedKeys(env))
		}
	}
}
