package localkafka

import (
	"fmt"
	"os"
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

// TestConfigSizesReplication: the generated server.properties make every
// node of a cluster a voter of its KRaft quorum, and size replication to the
// cluster: with 3 nodes or more, topics (the internal ones too) get 3
// replicas and writes need 2 in sync, so one node may be down.
func TestConfigSizesReplication(t *testing.T) {
	for _, tc := range []struct {
		nodes      int
		rf, minISR string
		wantVoters int
	}{
		{1, "1", "1", 1},
		{2, "2", "1", 2},
		{3, "3", "2", 3},
		{5, "3", "2", 5},
	} {
		t.Run(fmt.Sprintf("%d nodes", tc.nodes), func(t *testing.T) {
			c := &Cluster{}
			for i := range tc.nodes {
				c.nodes = append(c.nodes, &node{id: i + 1, dir: filepath.Join(t.TempDir(), fmt.Sprint(i)), port: 9000 + i, ctrlPort: 9100 + i})
			}
			for _, n := range c.nodes {
				if err := c.writeConfig(n); err != nil {
					t.Fatal(err)
				}
				props := readProps(t, n.propsPath)
				for key, want := range map[string]string{
					"node.id":                                  fmt.Sprint(n.id),
					"process.roles":                            "broker,controller",
					"default.replication.factor":               tc.rf,
					"offsets.topic.replication.factor":         tc.rf,
					"transaction.state.log.replication.factor": tc.rf,
					"min.insync.replicas":                      tc.minISR,
					"transaction.state.log.min.isr":            tc.minISR,
				} {
					if props[key] != want {
						t.Errorf("node %d: %s=%q, want %q", n.id, key, props[key], want)
					}
				}
				if voters := strings.Split(props["controller.quorum.voters"], ","); len(voters) != tc.wantVoters {
					t.Errorf("node %d: controller.quorum.voters=%q, want %d voters", n.id, props["controller.quorum.voters"], tc.wantVoters)
				}
			}
		})
	}
}

func readProps(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			props[k] = v
		}
	}
	return props
}
