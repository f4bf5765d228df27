// Package kafkatest runs a real Apache Kafka cluster (Kafka 4.x in KRaft
// mode, no ZooKeeper; internal/localkafka starts it) for the tests: the
// broker's jars come from Maven Central into a cache folder (`make
// kafka-libs`, part of `make deps`), each node runs in its own JVM process
// on free loopback ports with a freshly formatted storage directory, and the
// cluster is stopped when the test (or the package's TestMain) ends. Killing
// a helios process under test never touches the broker: it is the test's
// child, not helios's.
//
// One cluster per package run (Shared, with Main in TestMain) keeps the
// broker's start-up out of the suite's hot loop; tests take topics of their
// own (Topic). A missing Java or Maven skips the test, except under
// CI=true, where it fails.
package kafkatest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/localkafka"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// Version is the Apache Kafka release the tests run (see pom.xml).
const Version = localkafka.Version

// Options configure a cluster (LibsDir defaults to LibsDir()). The zero
// value is one combined broker+controller node.
type Options = localkafka.Options

// Cluster is a running Kafka cluster with helpers for tests.
type Cluster struct{ *localkafka.Cluster }

// LibsDir is the folder holding the broker's jars: $HELIOS_KAFKA_LIBS, or
// build/cache/kafka-VERSION in the repository.
func LibsDir() string {
	if d := os.Getenv("HELIOS_KAFKA_LIBS"); d != "" {
		return d
	}
	return filepath.Join(testutil.RepoRoot(), "build", "cache", "kafka-"+Version)
}

// requireJars makes sure Java and the broker's jars are there (fetching the
// jars through the Makefile), or skips (fails under CI=true).
func requireJars(t testing.TB, libs string) {
	t.Helper()
	testutil.RequireTool(t, "java", "apt-get install openjdk-17-jre-headless")
	if _, err := os.Stat(localkafka.JarPath(libs)); err == nil {
		return
	}
	testutil.RequireTool(t, "mvn", "apt-get install maven")
	testutil.Make(t, "kafka-libs")
}

// Start formats and starts a cluster, waits until every node answers and
// registers t.Cleanup to stop it.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := start(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func start(t testing.TB, opts Options) (*Cluster, error) {
	if opts.LibsDir == "" {
		opts.LibsDir = LibsDir()
	}
	requireJars(t, opts.LibsDir)
	c, err := localkafka.Start(opts)
	if err != nil {
		return nil, err
	}
	return &Cluster{c}, nil
}

// RestartNode starts node i again (after StopNode or KillNode) and waits
// until the cluster lists it.
func (c *Cluster) RestartNode(t testing.TB, i int) {
	t.Helper()
	if err := c.Cluster.RestartNode(i); err != nil {
		t.Fatal(err)
	}
}

// Client returns a franz-go client for the cluster, closed at the end of t.
func (c *Cluster) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

var topicSeq atomic.Int64

// Topic creates a topic of its own for t (named after the test) with the
// given number of partitions and returns its name.
func (c *Cluster) Topic(t testing.TB, partitions int32) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", sanitize(t.Name()), os.Getpid(), topicSeq.Add(1))
	c.CreateTopic(t, name, partitions)
	return name
}

// CreateTopic creates topic name and waits until it can be used.
func (c *Cluster) CreateTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Cluster.CreateTopic(ctx, name, partitions); err != nil {
		t.Fatal(err)
	}
}

// StableEnds waits, up to wait, until every partition of topic has its
// transactions' markers written (its last stable offset is its high-water
// mark: Kafka writes them after EndTransaction returns), and returns the
// last stable offsets and whether they caught up.
func (c *Cluster) StableEnds(t testing.TB, ctx context.Context, topic string, wait time.Duration) (kadm.ListedOffsets, bool) {
	t.Helper()
	adm := kadm.NewClient(c.Client(t))
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		lso, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		hw, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		stable := true
		hw.Each(func(o kadm.ListedOffset) {
			if l, ok := lso.Lookup(topic, o.Partition); !ok || l.Offset != o.Offset {
				stable = false
			}
		})
		if stable || time.Now().After(deadline) {
			return lso, stable
		}
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 120 {
		b = b[:120]
	}
	return string(b)
}

var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
)

// Shared returns the package's single-node cluster, starting it on first
// use. Call Main from TestMain so that it is stopped at the end.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start(t, Options{})
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// Main runs the package's tests and stops the shared cluster afterwards.
// Use it as `func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }`.
func Main(m *testing.M) int { return Wrap(m).Run() }

// Wrap is Main for wrappers such as goleak.VerifyTestMain: its Run runs
// the tests, then stops the shared cluster.
func Wrap(m *testing.M) interface{ Run() int } { return runner{m} }

type runner struct{ m *testing.M }

func (r runner) Run() int {
	code := r.m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
	sharedMu.Unlock()
	return code
}
