package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/crashpoint"
	"github.com/heliosdb/helios-wasm/internal/kafkatest"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// produceKeyed writes n records keyed u0..u(users-1) (Kafka's default
// partitioner: all of a key's records in one partition) and returns how
// many each key got.
func produceKeyed(t *testing.T, c *kafkatest.Cluster, topic string, from, n, users int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	for i := from; i < from+n; i++ {
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "u%d", i%users), Value: fmt.Appendf(nil, `{"n":%d}`, i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// outputWatcher reads a topic with read_committed in the background.
type outputWatcher struct {
	mu    sync.Mutex
	recs  []*kgo.Record
	topic string
	cl    *kgo.Client
}

func watchOutput(t *testing.T, c *kafkatest.Cluster, topic string) *outputWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	w := &outputWatcher{topic: topic, cl: cl}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			w.mu.Lock()
			w.recs = append(w.recs, fs.Records()...)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// describe says, per partition, what the watcher has read and what the
// broker holds (last stable and high watermark offsets), which tells
// records never written from records a hanging transaction hides.
func (w *outputWatcher) describe() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(w.cl)
	stable, serr := adm.ListCommittedOffsets(ctx, w.topic)
	high, herr := adm.ListEndOffsets(ctx, w.topic)
	w.mu.Lock()
	got, next := map[int32]int{}, map[int32]int64{}
	for _, r := range w.recs {
		got[r.Partition]++
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
	}
	w.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "topic %s (list errors: %v, %v)\n", w.topic, serr, herr)
	high.Each(func(o kadm.ListedOffset) {
		s, _ := stable.Lookup(o.Topic, o.Partition)
		fmt.Fprintf(&b, "  partition %d: read %d records up to offset %d; last stable offset %d; high watermark %d\n",
			o.Partition, got[o.Partition], next[o.Partition], s.Offset, o.Offset)
	})
	return b.String()
}

func (w *outputWatcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.recs)
}

// waitFor waits until the output holds n records.
func (w *outputWatcher) waitFor(t *testing.T, n int, timeout time.Duration, what string, runs ...background) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for w.count() < n {
		for _, r := range runs {
			select {
			case err := <-r.done:
				t.Fatalf("%s: an instance exited (%v) with %d of %d outputs\n%s", what, err, w.count(), n, r.stderr.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d outputs after %s\n%s", what, w.count(), n, timeout, w.describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkCounts checks a stateful count's outputs: every key's counts are
// 1, 2, ..., its number of inputs, in order, each once.
func (w *outputWatcher) checkCounts(t *testing.T, total, users int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.recs) != total {
		t.Errorf("%d outputs, want %d (one per input)", len(w.recs), total)
	}
	last := map[string]int{}
	bad := 0
	for _, r := range w.recs {
		var out struct {
			Key   string `json:"key"`
			Count int    `json:"count"`
		}
		if err := json.Unmarshal(r.Value, &out); err != nil || out.Key != string(r.Key) {
			t.Fatalf("output %q (key %q): %v", r.Value, r.Key, err)
		}
		if out.Count != last[out.Key]+1 && bad < 10 {
			bad++
			t.Errorf("key %s: count %d after %d (lost or repeated state, or a duplicate output)", out.Key, out.Count, last[out.Key])
		}
		last[out.Key] = out.Count
	}
	for u := range users {
		k := fmt.Sprintf("u%d", u)
		if want := total/users + btoi(u < total%users); last[k] != want {
			t.Errorf("key %s: final count %d, want %d", k, last[k], want)
		}
	}
}

// stopAll sends SIGTERM to every run and expects each to exit 0 within 30s.
func stopAll(t *testing.T, runs ...background) {
	t.Helper()
	for _, run := range runs {
		run.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-run.done:
			if err != nil {
				t.Errorf("SIGTERM: %v\n%s", err, run.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("an instance did not stop within 30s of SIGTERM")
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestKafkaFleet: two instances of one kafka: -> kafka: pipeline with the
// stateful count share the input's 4 partitions through the consumer group.
// One is SIGKILLed mid-run; after its session times out the other takes its
// partitions over (their state comes with them through the changelog) and
// processes what is produced meanwhile; the killed one restarts (crashing
// once in the middle of its changelog restore, then again cleanly), takes
// partitions back (catching up on the changelog) and processes the rest,
// while b hot-swaps its operator to the Rust one. SIGTERM stops both with exit 0. Every input has exactly one output, and
// every key's counts run 1..n in order: nothing lost, nothing duplicated,
// no state lost or applied twice across the moves.
func TestKafkaFleet(t *testing.T) {
	c := kafkatest.Shared(t)
	const parts, users = 4, 97
	in := c.Topic(t, parts)
	out := in + "-out"
	dir := t.TempDir()
	bAdmin := freeAddr(t)
	args := func(name string) []string {
		admin := ""
		if name == "b" {
			admin = bAdmin
		}
		return countFleetArgs(t, c, in, out, filepath.Join(dir, name),
			"--transaction-timeout", "5s", "--follow", "--name", "fleet-"+in, "--batch-size", "500", "--admin", admin)
	}
	w := watchOutput(t, c, out)
	produceKeyed(t, c, in, 0, 100_000, users)
	a := startCLI(t, testEnv(t), args("a")...)
	b := startCLI(t, testEnv(t), args("b")...)
	defer a.cmd.Process.Kill()
	defer b.cmd.Process.Kill()

	w.waitFor(t, 20_000, 2*time.Minute, "both instances started", a, b)
	a.cmd.Process.Kill()
	<-a.done
	t.Logf("instance a killed with %d outputs", w.count())
	produceKeyed(t, c, in, 100_000, 50_000, users)
	w.waitFor(t, 150_000, 2*time.Minute, "b took a's partitions over", b)

	// a comes back: the first time it dies in the middle of restoring a
	// partition's state (b has moved the changelog on since a last wrote).
	crashed := startCLI(t, append(testEnv(t), crashpoint.EnvVar+"="+crashpoint.DuringRestore), args("a")...)
	select {
	case err := <-crashed.done:
		if ws, ok := err.(*exec.ExitError); !ok || ws.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("a's restart was not killed in its changelog restore (%v)\n%s", err, crashed.stderr.String())
		}
	case <-time.After(time.Minute):
		crashed.cmd.Process.Kill()
		<-crashed.done
		t.Fatalf("a's restart did not reach its changelog restore within a minute\n%s", crashed.stderr.String())
	}
	a = startCLI(t, testEnv(t), args("a")...)
	// While a rejoins (a rebalance moves partitions back to it), b swaps
	// to the Rust count operator, whose outputs and state are byte for
	// byte the Go one's.
	if r := runCLI(t, "", nil, "plugin", "swap", "--admin", bAdmin, "--data-dir", filepath.Join(dir, "b"), testutil.Plugin(t, "rust", "count")); r.code != 0 {
		t.Fatalf("swap during the rebalance: exit %d\n%s", r.code, r.stderr)
	}
	produceKeyed(t, c, in, 150_000, 50_000, users)
	w.waitFor(t, 200_000, 2*time.Minute, "a rejoined", a, b)
	time.Sleep(2 * time.Second) // anything beyond the inputs would show now

	stopAll(t, a, b)
	// (The crashed restart proved a restore: it died in one.)
	if !strings.Contains(b.stderr.String(), "partitions assigned") {
		t.Errorf("b logged no assignment:\n%s", b.stderr.String())
	}
	w.checkCounts(t, 200_000, users)
}

// TestKafkaFleetBounded: two bounded instances of one job (no --follow)
// share the input; one is killed mid-run and rerun. Each exits 0 only once
// the group's committed offsets reach the input's end on every partition,
// and the output is exact.
func TestKafkaFleetBounded(t *testing.T) {
	c := kafkatest.Shared(t)
	const parts, users, records = 4, 31, 100_000
	in := c.Topic(t, parts)
	out := in + "-out"
	dir := t.TempDir()
	args := func(name string) []string {
		return countFleetArgs(t, c, in, out, filepath.Join(dir, name),
			"--transaction-timeout", "5s", "--name", "bounded-"+in, "--batch-size", "250", "--admin", "")
	}
	produceKeyed(t, c, in, 0, records, users)
	w := watchOutput(t, c, out)
	a := startCLI(t, testEnv(t), args("a")...)
	b := startCLI(t, testEnv(t), args("b")...)
	defer a.cmd.Process.Kill()
	defer b.cmd.Process.Kill()
	w.waitFor(t, 5_000, 2*time.Minute, "started", a, b)
	b.cmd.Process.Kill()
	<-b.done
	b2 := startCLI(t, testEnv(t), args("b")...)
	defer b2.cmd.Process.Kill()
	for _, run := range []background{a, b2} {
		select {
		case err := <-run.done:
			if err != nil {
				t.Fatalf("exit: %v\n%s", err, run.stderr.String())
			}
		case <-time.After(2 * time.Minute):
			run.cmd.Process.Kill()
			t.Fatalf("a bounded instance did not finish\n%s", run.stderr.String())
		}
	}
	defer func() {
		if t.Failed() { // which counts are missing, and what the instances said
			w.checkCounts(t, records, users)
			t.Logf("a:\n%s\nb (killed):\n%s\nb (rerun):\n%s", a.stderr.String(), b.stderr.String(), b2.stderr.String())
		}
	}()
	w.waitFor(t, records, time.Minute, "output")
	time.Sleep(2 * time.Second)
	w.checkCounts(t, records, users)
}

// countFleetArgs runs the count operator from kafka:in to kafka:out on c
// as a fleet instance (6s session timeout) with data directory data, plus
// extra.
func countFleetArgs(t *testing.T, c *kafkatest.Cluster, in, out, data string, extra ...string) []string {
	return append([]string{"run", "--plugin", plugin(t, "count"), "--input", "kafka:" + in, "--output", "kafka:" + out,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--kafka-create-topics", "--kafka-session-timeout", "6s",
		"--data-dir", data}, extra...)
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestKafkaFleetReplicated: two --follow instances of the stateful count
// on a 3-broker cluster (every topic, the ones the pipeline creates too,
// has 3 replicas, 2 of them needed in sync). The broker that coordinates
// the group (or instance a's transactions) is SIGKILLed mid-run while input
// keeps coming: leadership of
// its partitions, the group and the transactions it coordinated move to
// the other two, and the instances go on without it, with no restart.
// Their 6 s session timeout is shorter than the broker's failover (it is
// fenced after 9 s), so the members lose their group session on the way
// and must join again, as franz-go does by itself.
// The broker comes back and catches up; more input comes. Every input has
// exactly one output and every key's counts run 1..n.
func TestKafkaFleetReplicated(t *testing.T) {
	for _, victim := range []string{"group coordinator", "transaction coordinator of a"} {
		t.Run(victim, func(t *testing.T) { testFleetReplicated(t, victim) })
	}
}

func testFleetReplicated(t *testing.T, victimRole string) {
	c := kafkatest.Start(t, kafkatest.Options{Nodes: 3})
	const parts, users = 4, 61
	const before, during, after = 20_000, 15_000, 5_000
	in := c.Topic(t, parts)
	out := in + "-out"
	dir := t.TempDir()
	args := func(name string) []string {
		return countFleetArgs(t, c, in, out, filepath.Join(dir, name),
			"--kafka-instance-id", name, "--follow", "--name", "replicated", "--batch-size", "250", "--admin", "")
	}
	w := watchOutput(t, c, out)
	produceKeyed(t, c, in, 0, before, users)
	a := startCLI(t, testEnv(t), args("a")...)
	b := startCLI(t, testEnv(t), args("b")...)
	defer a.cmd.Process.Kill()
	defer b.cmd.Process.Kill()
	w.waitFor(t, before/4, time.Minute, "both instances started", a, b)

	// Every topic has 3 replicas: the input (created by the test), and the
	// output, changelog, dead-letter and marker topics the pipeline
	// created with the cluster's default.
	adm := kadm.NewClient(c.Client(t, kgo.MetadataMinAge(10*time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := []string{in, out, "replicated-state", "replicated-dlq", "replicated" + "-helios-txn"}
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range topics {
		td := md.Topics[name]
		if td.Err != nil || len(td.Partitions) == 0 {
			t.Fatalf("topic %s: %v, %d partitions", name, td.Err, len(td.Partitions))
		}
		for _, p := range td.Partitions {
			if len(p.Replicas) != 3 {
				t.Errorf("topic %s partition %d: replicas %v, want 3", name, p.Partition, p.Replicas)
			}
		}
	}

	// The victim: the group's coordinator, or instance a's transaction
	// coordinator (broker ids are node index + 1).
	gc := adm.FindGroupCoordinators(ctx, "replicated")
	tcs := adm.FindTxnCoordinators(ctx, "helios-wasm:replicated:a", "helios-wasm:replicated:b")
	coord, ok := gc["replicated"]
	if victimRole != "group coordinator" {
		coord, ok = tcs["helios-wasm:replicated:a"]
	}
	if !ok || coord.Err != nil {
		t.Fatalf("%s: %+v %+v", victimRole, gc, tcs)
	}
	victim := int(coord.NodeID) - 1
	var roles []string
	if g := gc["replicated"]; g.Err == nil && g.NodeID == coord.NodeID {
		roles = append(roles, "group coordinator")
	}
	for name, tc := range tcs {
		if tc.Err == nil && tc.NodeID == coord.NodeID {
			roles = append(roles, "transaction coordinator of "+name)
		}
	}
	for _, p := range md.Topics[in].Partitions {
		if p.Leader == coord.NodeID {
			roles = append(roles, fmt.Sprintf("leader of input partition %d", p.Partition))
		}
	}
	killedAt := w.count()
	c.KillNode(victim)
	t.Logf("broker %d killed (%s) with %d outputs", coord.NodeID, strings.Join(roles, ", "), killedAt)
	down := time.Now()
	produceKeyed(t, c, in, before, during, users)
	w.waitFor(t, before+during, time.Minute, "with a broker down", a, b)
	t.Logf("all %d inputs so far output %s after the kill", before+during, time.Since(down).Round(time.Millisecond))

	c.RestartNode(t, victim)
	produceKeyed(t, c, in, before+during, after, users)
	w.waitFor(t, before+during+after, time.Minute, "after the broker came back", a, b)
	time.Sleep(2 * time.Second) // anything beyond the inputs would show now
	stopAll(t, a, b)
	w.checkCounts(t, before+during+after, users)
}

// TestKafkaFleetSessionExpired: instance a of a two-instance fleet is
// frozen (SIGSTOP) with work in flight for longer than its session timeout,
// so the group gives its partitions to b, which processes them on. When a
// thaws, its in-flight batches were read under an assignment that has
// since moved: they must never commit, not even after a rejoins and gets
// some of those partitions back (a newer generation would accept them),
// and a goes on. Frozen beyond the transaction timeout too, the broker
// has aborted a's open transaction: a takes a new transactional writer
// and goes on. Every input has exactly one output and every key's counts
// run 1..n.
func TestKafkaFleetSessionExpired(t *testing.T) {
	for _, tc := range []struct {
		name       string
		txnTimeout string        // the broker's is twice this, at least 10s
		frozen     time.Duration // beyond the 6s session timeout
	}{
		{"open transaction still open", "30s", 15 * time.Second},
		// A transaction of 64 batches takes seconds on 2 busy cores: the
		// pipeline's own timeout must not expire first.
		{"open transaction aborted by the broker", "10s", 25 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) { testFleetFrozen(t, tc.txnTimeout, tc.frozen) })
	}
}

func testFleetFrozen(t *testing.T, txnTimeout string, frozen time.Duration) {
	c := kafkatest.Shared(t)
	const parts, users = 4, 53
	in := c.Topic(t, parts)
	out := in + "-out"
	dir := t.TempDir()
	name, aAdmin := "frozen-"+in, freeAddr(t)
	args := func(id, admin string) []string {
		return countFleetArgs(t, c, in, out, filepath.Join(dir, id),
			"--kafka-instance-id", id, "--transaction-timeout", txnTimeout, "--follow", "--name", name, "--batch-size", "200", "--admin", admin)
	}
	w := watchOutput(t, c, out)
	produceKeyed(t, c, in, 0, 40_000, users)
	a := startCLI(t, testEnv(t), args("a", aAdmin)...)
	b := startCLI(t, testEnv(t), args("b", "")...)
	defer a.cmd.Process.Kill()
	defer b.cmd.Process.Kill()
	// a holds partitions and has committed some of their records: it is
	// in the middle of its share when it freezes. (Input produced after
	// its assignment: b may have finished what was there before.)
	status := func() (st struct {
		Assigned  []uint32 `json:"assigned"`
		RecordsIn int64    `json:"records_in"`
	}) {
		if resp, err := http.Get("http://" + aAdmin + "/v1/pipelines/" + name); err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		return st
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(status().Assigned) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a was assigned no partition within 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	produceKeyed(t, c, in, 40_000, 40_000, users)
	for status().RecordsIn == 0 {
		if time.Now().After(deadline) {
			for _, run := range []background{a, b} {
				run.cmd.Process.Signal(syscall.SIGQUIT) // goroutine dumps
				<-run.done
			}
			t.Fatalf("a committed nothing within 2 minutes\na:\n%s\nb:\n%s", a.stderr.String(), b.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Frozen beyond the 6s session timeout, and within or beyond the
	// broker's transaction timeout.
	a.cmd.Process.Signal(syscall.SIGSTOP)
	t.Logf("a frozen with %d outputs", w.count())
	produceKeyed(t, c, in, 80_000, 20_000, users)
	time.Sleep(frozen)
	a.cmd.Process.Signal(syscall.SIGCONT)
	t.Logf("a thawed with %d outputs", w.count())
	produceKeyed(t, c, in, 100_000, 20_000, users)
	w.waitFor(t, 120_000, 2*time.Minute, "after a thawed", b)
	time.Sleep(3 * time.Second) // a stale commit would show now
	stopAll(t, a, b)
	if !strings.Contains(a.stderr.String(), "partitions lost") {
		t.Errorf("a's session did not expire while it was frozen:\n%s", a.stderr.String())
	}
	for _, line := range strings.Split(a.stderr.String(), "\n") {
		if strings.Contains(line, "discarded") {
			t.Log(line)
		}
	}
	w.checkCounts(t, 120_000, users)
}
