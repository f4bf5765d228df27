// Package kafkatest runs a real Apache Kafka cluster (Kafka 4.x in KRaft
// mode, no ZooKeeper) for the tests: the broker's jars come from Maven
// Central into a cache folder (`make kafka-libs`, part of `make deps`), each
// node runs in its own JVM process on free loopback ports with a freshly
// formatted storage directory, and the cluster is stopped when the test (or
// the package's TestMain) ends. Killing a helios process under test never
// touches the broker: it is the test's child, not helios's.
//
// One cluster per package run (Shared, with Main in TestMain) keeps the
// broker's start-up out of the suite's hot loop; tests take topics of their
// own (Topic). A missing Java or Maven skips the test, except under
// CI=true, where it fails.
package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// Version is the Apache Kafka release the tests run (see pom.xml).
const Version = "4.4.0"

// Options configure a cluster. The zero value is one combined
// broker+controller node.
type Options struct {
	// Nodes is the number of combined broker+controller nodes. Default 1.
	Nodes int
	// SASLUsers, when set, adds a SASL_PLAINTEXT listener (mechanism PLAIN)
	// that accepts these user/password pairs; Cluster.SASLAddrs lists it.
	SASLUsers map[string]string
}

// Cluster is a running Kafka cluster.
type Cluster struct {
	nodes     []*node
	clusterID string
	opts      Options
	stopOnce  sync.Once
}

type node struct {
	id        int
	dir       string
	port      int // PLAINTEXT
	ctrlPort  int
	saslPort  int
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	running   atomic.Bool
	wanted    atomic.Bool // started and not stopped on purpose
	propsPath string
}

// Addrs lists the PLAINTEXT bootstrap addresses of the running nodes.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", n.port))
	}
	return out
}

// SASLAddrs lists the SASL_PLAINTEXT addresses (Options.SASLUsers).
func (c *Cluster) SASLAddrs() []string {
	var out []string
	for _, n := range c.nodes {
		if n.saslPort != 0 {
			out = append(out, fmt.Sprintf("127.0.0.1:%d", n.saslPort))
		}
	}
	return out
}

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
func requireJars(t testing.TB) {
	t.Helper()
	testutil.RequireTool(t, "java", "apt-get install openjdk-17-jre-headless")
	if _, err := os.Stat(filepath.Join(LibsDir(), "kafka_2.13-"+Version+".jar")); err == nil {
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
	requireJars(t)
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	root, err := os.MkdirTemp("", "helios-kafka-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	for i := range opts.Nodes {
		n := &node{id: i + 1, dir: filepath.Join(root, fmt.Sprintf("node%d", i+1)), exited: make(chan struct{})}
		ports, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		n.port, n.ctrlPort = ports[0], ports[1]
		if len(opts.SASLUsers) > 0 {
			n.saslPort = ports[2]
		}
		c.nodes = append(c.nodes, n)
	}
	if c.clusterID, err = storageTool("random-uuid"); err != nil {
		return nil, err
	}
	c.clusterID = strings.TrimSpace(c.clusterID)
	for _, n := range c.nodes {
		if err := c.writeConfig(n); err != nil {
			return nil, err
		}
		if _, err := storageTool("format", "-t", c.clusterID, "-c", n.propsPath); err != nil {
			return nil, fmt.Errorf("kafkatest: format node %d: %w", n.id, err)
		}
	}
	for _, n := range c.nodes {
		if err := c.startNode(n); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.waitReady(90 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) writeConfig(n *node) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	var voters []string
	for _, o := range c.nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", o.id, o.ctrlPort))
	}
	rf := min(len(c.nodes), 3)
	listeners := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.port, n.ctrlPort)
	advertised := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.port)
	protoMap := "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	var sasl string
	if n.saslPort != 0 {
		listeners += fmt.Sprintf(",SASL_PLAINTEXT://127.0.0.1:%d", n.saslPort)
		advertised += fmt.Sprintf(",SASL_PLAINTEXT://127.0.0.1:%d", n.saslPort)
		protoMap += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
		var users strings.Builder
		for u, p := range c.opts.SASLUsers {
			fmt.Fprintf(&users, " user_%s=%q", u, p)
		}
		sasl = "sasl.enabled.mechanisms=PLAIN\n" +
			"listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required" + users.String() + ";\n"
	}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=%d
controller.quorum.voters=%s
listeners=%s
advertised.listeners=%s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=%s
log.dirs=%s
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=%d
min.insync.replicas=1
offsets.topic.replication.factor=%d
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=%d
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=2
%s`, n.id, strings.Join(voters, ","), listeners, advertised, protoMap, filepath.Join(n.dir, "data"), rf, rf, rf, sasl)
	n.propsPath = filepath.Join(n.dir, "server.properties")
	if err := os.WriteFile(n.propsPath, []byte(props), 0o644); err != nil {
		return err
	}
	log4j := `status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ` + filepath.Join(n.dir, "broker.log") + `
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.org.name = org.apache.kafka
logger.org.level = warn
`
	return os.WriteFile(filepath.Join(n.dir, "log4j2.properties"), []byte(log4j), 0o644)
}

func javaArgs(extra ...string) []string {
	return append([]string{"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-cp", filepath.Join(LibsDir(), "*")}, extra...)
}

func storageTool(args ...string) (string, error) {
	cmd := exec.Command("java", javaArgs(append([]string{"kafka.tools.StorageTool"}, args...)...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kafka StorageTool %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

func (c *Cluster) startNode(n *node) error {
	logf, err := os.OpenFile(filepath.Join(n.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("java", javaArgs("-Dlog4j2.configurationFile="+filepath.Join(n.dir, "log4j2.properties"),
		"kafka.Kafka", n.propsPath)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("kafkatest: start node %d: %w", n.id, err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	n.running.Store(true)
	n.wanted.Store(true)
	go func() {
		n.exitErr = cmd.Wait()
		n.running.Store(false)
		logf.Close()
		close(n.exited)
	}()
	return nil
}

// waitReady waits until every running node answers metadata requests and
// the cluster lists all of them.
func (c *Cluster) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	want := 0
	for _, n := range c.nodes {
		if n.running.Load() {
			want++
		}
	}
	var last error
	for {
		for _, n := range c.nodes {
			if n.wanted.Load() && !n.running.Load() {
				return fmt.Errorf("kafkatest: node %d exited while starting: %v\n%s", n.id, n.exitErr, c.logTail(n))
			}
		}
		last = c.ping(ctx, want)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkatest: cluster not ready after %s: %v\n%s", timeout, last, c.logTail(c.nodes[0]))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) ping(ctx context.Context, want int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RequestTimeoutOverhead(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(pctx)
	if err != nil {
		return err
	}
	if len(md.Brokers) < want {
		return fmt.Errorf("%d of %d brokers registered", len(md.Brokers), want)
	}
	return nil
}

func (c *Cluster) logTail(n *node) string {
	var b strings.Builder
	for _, f := range []string{"stdout.log", "broker.log"} {
		data, _ := os.ReadFile(filepath.Join(n.dir, f))
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- node %d %s ---\n%s\n", n.id, f, data)
	}
	return b.String()
}

// StopNode stops node i (0-based) with SIGTERM (SIGKILL after 20 s), for
// broker-restart tests.
func (c *Cluster) StopNode(i int) { c.nodes[i].stop(20 * time.Second) }

// KillNode kills node i with SIGKILL.
func (c *Cluster) KillNode(i int) { c.nodes[i].stop(0) }

// RestartNode starts node i again (after StopNode or KillNode) and waits
// until the cluster lists it.
func (c *Cluster) RestartNode(t testing.TB, i int) {
	t.Helper()
	if err := c.startNode(c.nodes[i]); err != nil {
		t.Fatal(err)
	}
	if err := c.waitReady(90 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func (n *node) stop(grace time.Duration) {
	n.wanted.Store(false)
	if n.cmd == nil || !n.running.Load() {
		return
	}
	if grace > 0 {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
			return
		case <-time.After(grace):
		}
	}
	n.cmd.Process.Kill()
	<-n.exited
}

// Stop stops every node and removes the cluster's files. It is idempotent.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		var wg sync.WaitGroup
		for _, n := range c.nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.stop(10 * time.Second) }()
		}
		wg.Wait()
		if len(c.nodes) > 0 {
			os.RemoveAll(filepath.Dir(c.nodes[0].dir))
		}
	})
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
	adm := kadm.NewClient(c.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rf := int16(min(len(c.nodes), 3))
	resp, err := adm.CreateTopic(ctx, partitions, rf, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("kafkatest: create topic %s: %v", name, err)
	}
	for ctx.Err() == nil { // leaders are elected asynchronously
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			if td, ok := md.Topics[name]; ok && td.Err == nil && len(td.Partitions) == int(partitions) && leadersReady(td) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("kafkatest: topic %s has no leaders after 30s", name)
}

func leadersReady(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Leader < 0 || p.Err != nil {
			return false
		}
	}
	return true
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

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
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
