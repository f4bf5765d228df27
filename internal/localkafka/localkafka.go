// Package localkafka runs a real Apache Kafka cluster on this machine (Kafka
// 4.x in KRaft mode, no ZooKeeper) from the broker's jars that `make
// kafka-libs` caches: each node runs in its own JVM process on free loopback
// ports with a freshly formatted storage directory under a temporary
// folder, which Stop removes. The tests use it through internal/kafkatest;
// `make demo-kafka` uses it directly.
package localkafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Version is the Apache Kafka release the jars are (internal/kafkatest/pom.xml).
const Version = "4.4.0"

// Options configure a cluster. Only LibsDir is required; the rest of the
// zero value is one combined broker+controller node.
type Options struct {
	// LibsDir is the folder holding the broker's jars (`make kafka-libs`
	// puts them in build/cache/kafka-VERSION).
	LibsDir string
	// Nodes is the number of combined broker+controller nodes, all voters
	// of the KRaft quorum; node i (0-based) has broker id i+1. Default 1.
	// Topics get min(Nodes, 3) replicas (internal ones too); with 3 or more
	// nodes, min.insync.replicas is 2, so one node may be down.
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

// JarPath is the broker's main jar in libsDir; its presence means the
// jars were fetched.
func JarPath(libsDir string) string {
	return filepath.Join(libsDir, "kafka_2.13-"+Version+".jar")
}

// Start formats and starts a cluster in a new temporary folder and waits
// until every node answers (at most 90 s). The caller stops it with Stop.
func Start(opts Options) (*Cluster, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("localkafka: java not found: install a JRE 17 or newer (apt-get install openjdk-17-jre-headless; `make deps` does it)")
	}
	if opts.LibsDir == "" {
		return nil, errors.New("localkafka: Options.LibsDir is empty: it names the folder of the broker's jars (`make kafka-libs` fills build/cache/kafka-" + Version + ")")
	}
	if _, err := os.Stat(JarPath(opts.LibsDir)); err != nil {
		return nil, fmt.Errorf("localkafka: the Kafka broker's jars are not in %s (%v): run `make kafka-libs`", opts.LibsDir, err)
	}
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	root, err := os.MkdirTemp("", "helios-kafka-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	fail := func(err error) (*Cluster, error) {
		c.Stop()
		os.RemoveAll(root)
		return nil, err
	}
	for i := range opts.Nodes {
		n := &node{id: i + 1, dir: filepath.Join(root, fmt.Sprintf("node%d", i+1)), exited: make(chan struct{})}
		ports, err := freePorts(3)
		if err != nil {
			return fail(err)
		}
		n.port, n.ctrlPort = ports[0], ports[1]
		if len(opts.SASLUsers) > 0 {
			n.saslPort = ports[2]
		}
		c.nodes = append(c.nodes, n)
	}
	if c.clusterID, err = c.storageTool("random-uuid"); err != nil {
		return fail(err)
	}
	c.clusterID = strings.TrimSpace(c.clusterID)
	for _, n := range c.nodes {
		if err := c.writeConfig(n); err != nil {
			return fail(err)
		}
		if _, err := c.storageTool("format", "-t", c.clusterID, "-c", n.propsPath); err != nil {
			return fail(fmt.Errorf("localkafka: format node %d: %w", n.id, err))
		}
	}
	for _, n := range c.nodes {
		if err := c.startNode(n); err != nil {
			return fail(err)
		}
	}
	if err := c.waitReady(90 * time.Second); err != nil {
		return fail(err)
	}
	return c, nil
}

func (c *Cluster) javaArgs(extra ...string) []string {
	return append([]string{"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
		"-cp", filepath.Join(c.opts.LibsDir, "*")}, extra...)
}

func (c *Cluster) storageTool(args ...string) (string, error) {
	cmd := exec.Command("java", c.javaArgs(append([]string{"kafka.tools.StorageTool"}, args...)...)...)
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
	cmd := exec.Command("java", c.javaArgs("-Dlog4j2.configurationFile="+filepath.Join(n.dir, "log4j2.properties"),
		"kafka.Kafka", n.propsPath)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("localkafka: start node %d: %w", n.id, err)
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
				return fmt.Errorf("localkafka: node %d exited while starting: %v\n%s", n.id, n.exitErr, c.logTail(n))
			}
		}
		last = c.ping(ctx, want)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localkafka: cluster not ready after %s: %v\n%s", timeout, last, c.logTail(c.nodes[0]))
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
// until the cluster lists it. A node whose port is still held (by a
// connection the kernel has not let go of yet) is started again, for up
// to 30 s.
func (c *Cluster) RestartNode(i int) error {
	n := c.nodes[i]
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.startNode(n); err != nil {
			return err
		}
		err := c.waitReady(90 * time.Second)
		if err == nil || !strings.Contains(err.Error(), "Address already in use") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
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
