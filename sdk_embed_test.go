package helioswasm

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSDKSourcesComplete: every source file of the Go and Rust SDKs and
// the C and AssemblyScript SDK sources is embedded, so a project that
// `plugin new` scaffolds builds offline (a package added under one of them
// without widening the embed patterns would break it).
func TestSDKSourcesComplete(t *testing.T) {
	for _, tree := range []struct{ dir, ext string }{
		{"plugins/sdk/go", ".go"},
		{"plugins/sdk/rust/src", ".rs"},
		{"plugins/sdk/c", ".h"},
		{"plugins/sdk/assemblyscript/assembly", ".ts"},
	} {
		err := filepath.WalkDir(tree.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, tree.ext) || strings.HasSuffix(p, "_test.go") {
				return err
			}
			if _, err := SDKSources.ReadFile(filepath.ToSlash(p)); err != nil {
				t.Errorf("%s is not embedded (sdk_embed.go's patterns): a scaffolded project would miss it", p)
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}
