// Package testutil builds test plugins: Go examples with the Go toolchain,
// WAT modules with wabt's wat2wasm, and every language's examples through
// the Makefile (Plugin). A missing toolchain skips the test, except under
// CI=true, where it fails: CI must never pass by skipping.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RepoRoot is the repository root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RequireTool returns the path of tool, or skips (fails under CI=true).
func RequireTool(t testing.TB, tool, install string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found under CI=true (install: %s; `make deps` does it)", tool, install)
		}
		t.Skipf("%s not found (install: %s, or run `make deps`)", tool, install)
	}
	return p
}

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// GoPlugin builds plugins/examples/go/NAME (or a directory relative to the
// repository root when name contains a slash) for wasip1 once per test
// process and returns the .wasm path.
func GoPlugin(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "helios-test-plugins-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	src := filepath.Join(RepoRoot(), "plugins", "examples", "go", name)
	if strings.Contains(name, "/") {
		src = filepath.Join(RepoRoot(), name)
	}
	out := filepath.Join(buildDir, strings.ReplaceAll(name, "/", "_")+".wasm")
	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-o", out, "."}
	if strings.HasSuffix(name, "/nosdk") { // a plain WASI command, not a reactor
		args = []string{"build", "-trimpath", "-o", out, "."}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build Go plugin %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

// WAT compiles WebAssembly text to binary with wat2wasm; flags enable
// further features (e.g. --enable-threads).
func WAT(t testing.TB, src string, flags ...string) []byte {
	t.Helper()
	tool := RequireTool(t, "wat2wasm", "apt-get install wabt")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(tool, append([]string{in, "-o", out}, flags...)...).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s\n%s", err, b, src)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
