package abigen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"Version": "VERSION", "ExportABIVersion": "EXPORT_ABI_VERSION", "OffRecID": "OFF_REC_ID",
		"RecIDLen": "REC_ID_LEN", "MaxStateKeyLen": "MAX_STATE_KEY_LEN", "FailUserBase": "FAIL_USER_BASE",
	} {
		if got := Snake(in); got != want {
			t.Errorf("Snake(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGeneratedFilesCurrent: every SDK's constants match abi/abi.go.
func TestGeneratedFilesCurrent(t *testing.T) {
	root := testutil.RepoRoot()
	cs, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) < 50 {
		t.Fatalf("only %d constants found in abi/abi.go", len(cs))
	}
	for _, tg := range Targets {
		got, err := os.ReadFile(filepath.Join(root, tg.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tg.Render(cs)) {
			t.Errorf("%s is stale: run `go generate ./abi`", tg.Path)
		}
	}
}
