// Package scaffold writes a new operator project for `helios-wasm plugin
// new`: a starter operator, a Makefile that builds it with one command and
// tests it with `helios-wasm plugin test`, a fixture, and the SDK vendored
// so that the project builds offline.
package scaffold

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	helioswasm "github.com/heliosdb/helios-wasm"
)

//go:embed all:templates
var templates embed.FS

// Languages lists the languages `plugin new` scaffolds.
var Languages = []string{"go", "rust", "c", "cpp", "assemblyscript", "zig"}

var titles = map[string]string{
	"go": "Go", "rust": "Rust", "c": "C", "cpp": "C++", "assemblyscript": "AssemblyScript", "zig": "Zig",
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ErrBadName reports a project name no toolchain accepts everywhere.
var ErrBadName = errors.New("project name must start with a lowercase letter and hold only a-z, 0-9, '-' and '_' (at most 63)")

type vars struct {
	Name   string // project and module name
	Crate  string // Rust artifact name ('-' becomes '_')
	Title  string // language, for prose
	SDKDir string // where the SDK is vendored
}

// Write creates the project for lang in dir, which must not exist or be
// empty, and returns the files written (relative to dir).
func Write(lang, name, dir string) ([]string, error) {
	title, ok := titles[lang]
	if !ok {
		return nil, fmt.Errorf("unknown language %q (choose one of %s)", lang, strings.Join(Languages, ", "))
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("%q: %w", name, ErrBadName)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s already exists and is not empty: choose another directory", dir)
	}
	v := vars{Name: name, Crate: strings.ReplaceAll(name, "-", "_"), Title: title, SDKDir: sdkDirs[lang]}
	files, err := projectFiles(lang, v)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return written, err
		}
		written = append(written, f.path)
	}
	return written, nil
}

var sdkDirs = map[string]string{
	"go": "third_party/helios-wasm", "rust": "helios/", "c": "helios*.h", "cpp": "helios*.h",
	"assemblyscript": "helios/", "zig": "helios.zig",
}

type file struct {
	path string
	data []byte
}

// sourceNames maps a template's starter file to its name in the project.
var sourceNames = map[string]string{
	"main.c.tmpl": "{{.Name}}.c", "main.cpp.tmpl": "{{.Name}}.cpp", "main.zig.tmpl": "{{.Name}}.zig",
}

func projectFiles(lang string, v vars) ([]file, error) {
	var files []file
	render := func(name, src string) error {
		t, err := template.New(name).Option("missingkey=error").Parse(src)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return err
		}
		files = append(files, file{name, b.Bytes()})
		return nil
	}
	// The language's own templates.
	root := "templates/" + lang
	err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if n, ok := sourceNames[path.Base(rel)]; ok {
			rel = path.Join(path.Dir(rel), n)
		}
		rel = strings.TrimSuffix(rel, ".tmpl")
		if rel == "Makefile" {
			common, err := templates.ReadFile("templates/common/Makefile.test.tmpl")
			if err != nil {
				return err
			}
			src = append(src, common...)
		}
		return render(strings.ReplaceAll(rel, "{{.Name}}", v.Name), string(src))
	})
	if err != nil {
		return nil, err
	}
	for _, c := range []string{"README.md.tmpl", "testdata/in.jsonl", "testdata/out.jsonl"} {
		src, err := templates.ReadFile("templates/common/" + c)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(c, ".tmpl") {
			if err := render(strings.TrimSuffix(c, ".tmpl"), string(src)); err != nil {
				return nil, err
			}
		} else {
			files = append(files, file{c, src})
		}
	}
	files = append(files, file{".gitignore", []byte("*.wasm\n*.wasm.o\ntarget/\nnode_modules/\nzig-cache/\n")})
	sdk, err := vendored(lang, v)
	if err != nil {
		return nil, err
	}
	return append(files, sdk...), nil
}

// vendored returns the SDK files a project of lang carries.
func vendored(lang string, v vars) ([]file, error) {
	var files []file
	copyTree := func(srcDir, dstDir string) error {
		return fs.WalkDir(helioswasm.SDKSources, srcDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := helioswasm.SDKSources.ReadFile(p)
			if err != nil {
				return err
			}
			files = append(files, file{path.Join(dstDir, strings.TrimPrefix(p, srcDir+"/")), b})
			return nil
		})
	}
	var err error
	switch lang {
	case "go":
		files = append(files, file{"third_party/helios-wasm/go.mod", []byte("module github.com/heliosdb/helios-wasm\n\ngo 1.24\n")})
		if err = copyTree("abi", "third_party/helios-wasm/abi"); err == nil {
			err = copyTree("plugins/sdk/go", "third_party/helios-wasm/plugins/sdk/go")
		}
	case "rust":
		err = copyTree("plugins/sdk/rust", "helios")
	case "c", "cpp":
		err = copyTree("plugins/sdk/c", ".")
	case "assemblyscript":
		err = copyTree("plugins/sdk/assemblyscript/assembly", "helios/assembly")
		if err == nil {
			var b []byte
			b, err = helioswasm.SDKSources.ReadFile("plugins/sdk/assemblyscript/transform.js")
			files = append(files, file{"helios/transform.js", b})
		}
		if err == nil {
			var pkg []file
			pkg, err = npmFiles(v.Name)
			files = append(files, pkg...)
		}
	case "zig":
		err = copyTree("plugins/examples/zig", ".")
	}
	if err != nil {
		return nil, err
	}
	return files, nil
}

// npmFiles derives the project's package.json and lockfile from the SDK's,
// so that `npm ci` installs the same, pinned AssemblyScript compiler.
func npmFiles(name string) ([]file, error) {
	var sdkPkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	b, err := helioswasm.SDKSources.ReadFile("plugins/sdk/assemblyscript/package.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &sdkPkg); err != nil {
		return nil, err
	}
	pkg := map[string]any{
		"name": name, "version": "0.1.0", "private": true, "type": "module",
		"scripts":         map[string]string{"build": "make", "test": "make test"},
		"devDependencies": sdkPkg.DevDependencies,
	}
	var lock map[string]any
	if b, err = helioswasm.SDKSources.ReadFile("plugins/sdk/assemblyscript/package-lock.json"); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, err
	}
	lock["name"], lock["version"] = name, "0.1.0"
	if pkgs, ok := lock["packages"].(map[string]any); ok {
		pkgs[""] = map[string]any{"name": name, "version": "0.1.0", "devDependencies": sdkPkg.DevDependencies}
	}
	var files []file
	for _, f := range []struct {
		path string
		v    any
	}{{"package.json", pkg}, {"package-lock.json", lock}} {
		out, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files, file{f.path, append(out, '\n')})
	}
	return files, nil
}
