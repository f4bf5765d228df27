package localkafka

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartSaysWhatIsMissing: without the broker's jars Start fails at
// once, saying where it looked and what to run (the cluster itself is
// tested through internal/kafkatest).
func TestStartSaysWhatIsMissing(t *testing.T) {
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java not found: Start would say so before looking for the jars")
	}
	missing := filepath.Join(t.TempDir(), "no-jars")
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"no LibsDir", Options{}, []string{"Options.LibsDir is empty", "make kafka-libs"}},
		{"no jars there", Options{LibsDir: missing}, []string{"not in " + missing, "run `make kafka-libs`"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Start(tc.opts)
			if err == nil {
				c.Stop()
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
