package wasmbin

import (
	"os"
	"strings"
	"testing"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// TestDescribeOrigin recognises every example language the build marks.
func TestDescribeOrigin(t *testing.T) {
	tests := []struct {
		lang, want string
	}{
		{"go", "Go (Go cmd/compile go1."},
		{"rust", "Rust (helios SDK rust/"},
		{"c", "C ("},
		{"cpp", "C++ ("}, // told from C by libc++'s entry in producers: count links it, uppercase does not
		{"assemblyscript", "AssemblyScript (helios SDK assemblyscript/"},
		{"wat", "unrecognised"},
		{"zig", "unrecognised"}, // Zig 0.11 strips its producers section in release builds
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			name := "count"
			if tt.lang == "wat" {
				name = "uppercase"
			}
			wasm, err := os.ReadFile(testutil.Plugin(t, tt.lang, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := DescribeOrigin(wasm).String(); !strings.HasPrefix(got, tt.want) {
				t.Fatalf("got %q, want prefix %q", got, tt.want)
			}
		})
	}
}

func TestDescribeOriginProducers(t *testing.T) {
	// A module whose only custom section is producers: language C99,
	// processed-by clang 14.0.6.
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	body := append(name("producers"), 2)
	body = append(append(append(body, name("language")...), 1), append(name("C99"), name("")...)...)
	body = append(append(append(body, name("processed-by")...), 1), append(name("clang"), name("14.0.6")...)...)
	wasm := append([]byte("\x00asm\x01\x00\x00\x00\x00"), byte(len(body)))
	wasm = append(wasm, body...)
	if got := DescribeOrigin(wasm).String(); got != "C (clang 14.0.6), from its producers section" {
		t.Fatalf("got %q", got)
	}
	if got := DescribeOrigin([]byte("garbage")); got.Language != "" {
		t.Fatalf("garbage recognised as %v", got)
	}
}
