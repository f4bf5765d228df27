package scaffold

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		lang string
		want []string // files that must be there, besides README.md, Makefile and testdata
	}{
		{"go", []string{"go.mod", "main.go", "third_party/helios-wasm/go.mod", "third_party/helios-wasm/abi/abi.go", "third_party/helios-wasm/plugins/sdk/go/sdk.go"}},
		{"rust", []string{"Cargo.toml", "src/lib.rs", ".cargo/config.toml", "helios/Cargo.toml", "helios/src/lib.rs", "helios/src/abi.rs"}},
		{"c", []string{"op-1.c", "helios.h", "helios_abi.h", "helios_json.h", "helios_state.h"}},
		{"cpp", []string{"op-1.cpp", "helios.h", "helios_abi.h", "helios_json.h"}},
		{"assemblyscript", []string{"package.json", "package-lock.json", "assembly/index.ts", "helios/assembly/index.ts", "helios/transform.js"}},
		{"zig", []string{"op-1.zig", "helios.zig"}},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "p")
			files, err := Write(tt.lang, "op-1", dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range append(tt.want, "README.md", "Makefile", ".gitignore", "testdata/in.jsonl", "testdata/out.jsonl") {
				if !slices.Contains(files, f) {
					t.Errorf("%s missing from %v", f, files)
				}
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			for _, f := range files {
				if strings.HasSuffix(f, "_test.go") || strings.Contains(f, "{{") {
					t.Errorf("unexpected file %s", f)
				}
			}
			mk, _ := os.ReadFile(filepath.Join(dir, "Makefile"))
			if !strings.Contains(string(mk), "op-1.wasm") || !strings.Contains(string(mk), "plugin test") {
				t.Errorf("Makefile does not build and test op-1.wasm:\n%s", mk)
			}
			if _, err := Write(tt.lang, "op-1", dir); err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Errorf("second Write into the same directory: %v", err)
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	for _, name := range []string{"", "Op", "1op", "op name", "op/x", strings.Repeat("a", 64)} {
		if _, err := Write("go", name, t.TempDir()); !errors.Is(err, ErrBadName) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, err := Write("cobol", "op", t.TempDir()); err == nil || !strings.Contains(err.Error(), "unknown language") {
		t.Errorf("unknown language: %v", err)
	}
}
