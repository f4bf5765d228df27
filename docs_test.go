package helioswasm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Go blocks of the project's Markdown files are built as their readers
// would build them: each in a module of its own whose go.mod `replace`s this
// module with the checkout (as the README's quick start tells operator
// authors to do), after `go mod tidy`. A block that imports the Go SDK is a
// guest and builds for wasip1 with -buildmode=c-shared; any other is a
// program for the host platform.
//
// A block that is not a whole file is preceded by a marker line
//
//	<!-- snippet: fragment imports="context fmt" -->
//
// and is compiled as the body of a function in a file with those imports.

var docFiles = []string{"README.md", "RATIONALE.md", "abi.md"}

const sdkImport = `"github.com/heliosdb/helios-wasm/plugins/sdk/go"`

// snippet is one ```go block of a Markdown file.
type snippet struct {
	file     string
	line     int // of the opening fence
	fragment bool
	imports  []string // of a fragment
	code     string
}

func (s snippet) String() string { return fmt.Sprintf("%s:%d", s.file, s.line) }

var markerRE = regexp.MustCompile(`^<!--\s*snippet:\s*(\w+)(?:\s+imports="([^"]*)")?\s*-->$`)

// extractSnippets returns the ```go blocks of a Markdown text.
func extractSnippets(file, text string) ([]snippet, error) {
	var out []snippet
	var cur *snippet
	var body strings.Builder
	prev := "" // the last non-blank line outside a block
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && trimmed == "```":
			cur.code = body.String()
			out = append(out, *cur)
			cur, prev = nil, trimmed
		case cur != nil:
			body.WriteString(line + "\n")
		case trimmed == "```go":
			cur = &snippet{file: file, line: n}
			body.Reset()
			if m := markerRE.FindStringSubmatch(prev); m != nil {
				if m[1] != "fragment" {
					return nil, fmt.Errorf("%s:%d: unknown snippet marker %q (want fragment)", file, n-1, m[1])
				}
				cur.fragment, cur.imports = true, strings.Fields(m[2])
			}
		case trimmed != "":
			prev = trimmed
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: ```go block never closed", file, cur.line)
	}
	return out, sc.Err()
}

// source is the Go file a snippet compiles as.
func (s snippet) source() string {
	if !s.fragment {
		return s.code
	}
	var b strings.Builder
	b.WriteString("package snippet\n\nimport (\n")
	for _, imp := range s.imports {
		fmt.Fprintf(&b, "\t%q\n", imp)
	}
	b.WriteString(")\n\nfunc _() {\n" + s.code + "}\n")
	return b.String()
}

// buildSnippet builds s in a fresh module under dir, returning the go
// command's output on failure.
func buildSnippet(t *testing.T, dir string, s snippet) error {
	t.Helper()
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	gomod := fmt.Sprintf("module snippet\n\ngo 1.26\n\nrequire github.com/heliosdb/helios-wasm v0.0.0\n\nreplace github.com/heliosdb/helios-wasm => %s\n", root)
	for name, content := range map[string]string{"go.mod": gomod, "snippet.go": s.source()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := []string{"build", "-o", os.DevNull, "."}
	env := append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if strings.Contains(s.code, sdkImport) {
		build = []string{"build", "-buildmode=c-shared", "-o", os.DevNull, "."}
		env = append(env, "GOOS=wasip1", "GOARCH=wasm")
	}
	for _, args := range [][]string{{"mod", "tidy"}, build} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: go %s: %v\n%s\n--- the snippet as compiled:\n%s", s, strings.Join(args, " "), err, out, s.source())
		}
	}
	return nil
}

// TestDocSnippetsBuild builds every Go block of README.md, RATIONALE.md
// and abi.md.
func TestDocSnippetsBuild(t *testing.T) {
	total := 0
	for _, f := range docFiles {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		snips, err := extractSnippets(f, string(text))
		if err != nil {
			t.Fatal(err)
		}
		total += len(snips)
		for _, s := range snips {
			t.Run(strings.ReplaceAll(s.String(), ":", "_"), func(t *testing.T) {
				if err := buildSnippet(t, t.TempDir(), s); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	// The quick start and the embedding example at least: fewer means the
	// extraction broke, not that the docs are fine.
	if total < 2 {
		t.Fatalf("found %d Go blocks in %v, want at least 2", total, docFiles)
	}
}

// TestSnippetBuildCatchesErrors: the quick start as it once was, without
// its "errors" import, must fail; a fragment is wrapped and type-checked.
func TestSnippetBuildCatchesErrors(t *testing.T) {
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	snips, err := extractSnippets("README.md", string(text))
	if err != nil || len(snips) == 0 || !strings.Contains(snips[0].code, sdkImport) {
		t.Fatalf("README.md's first Go block should be the SDK quick start (err %v)", err)
	}
	broken := snips[0]
	broken.code = strings.Replace(broken.code, "\t\"errors\"\n", "", 1)
	if broken.code == snips[0].code {
		t.Fatal("the quick start no longer imports errors: update this test")
	}
	if err := buildSnippet(t, t.TempDir(), broken); err == nil || !strings.Contains(err.Error(), "undefined: errors") {
		t.Fatalf("building the quick start without its errors import: %v, want undefined: errors", err)
	}

	frag, err := extractSnippets("x.md", "<!-- snippet: fragment imports=\"fmt\" -->\n\n```go\nfmt.Println(undefinedName)\n```\n")
	if err != nil || len(frag) != 1 || !frag[0].fragment {
		t.Fatalf("fragment: %+v, %v", frag, err)
	}
	if err := buildSnippet(t, t.TempDir(), frag[0]); err == nil || !strings.Contains(err.Error(), "undefined: undefinedName") {
		t.Fatalf("a fragment using an undefined name: %v, want undefined: undefinedName", err)
	}
	frag[0].code = "fmt.Println(\"ok\")\n"
	if err := buildSnippet(t, t.TempDir(), frag[0]); err != nil {
		t.Fatalf("a correct fragment: %v", err)
	}
}

func TestExtractSnippets(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []snippet
		err        string
	}{
		{"none", "# t\n```sh\nls\n```\n", nil, ""},
		{"two", "a\n```go\npackage a\n```\n\n```go\npackage b\n```\n",
			[]snippet{{file: "f", line: 2, code: "package a\n"}, {file: "f", line: 6, code: "package b\n"}}, ""},
		{"fragment", "<!-- snippet: fragment imports=\"fmt os\" -->\n```go\nx()\n```\n",
			[]snippet{{file: "f", line: 2, fragment: true, imports: []string{"fmt", "os"}, code: "x()\n"}}, ""},
		{"marker applies to the next block only", "<!-- snippet: fragment -->\n```go\nx()\n```\n```go\npackage p\n```\n",
			[]snippet{{file: "f", line: 2, fragment: true, code: "x()\n"}, {file: "f", line: 5, code: "package p\n"}}, ""},
		{"unknown marker", "<!-- snippet: skip -->\n```go\nx\n```\n", nil, "f:1: unknown snippet marker"},
		{"unclosed", "```go\npackage p\n", nil, "f:1: ```go block never closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := extractSnippets("f", tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
