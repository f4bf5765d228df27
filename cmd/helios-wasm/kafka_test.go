package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
	"github.com/heliosdb/helios-wasm/internal/testutil"
)

// produceKafka writes lines to topic, line i to partition i%parts, and
// returns the lines of each partition in order.
func produceKafka(t *testing.T, c *kafkatest.Cluster, topic string, parts int, lines []string) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	per := make([][]string, parts)
	for i, l := range lines {
		p := i % parts
		per[p] = append(per[p], l)
		cl.Produce(ctx, &kgo.Record{Partition: int32(p), Value: []byte(l)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return per
}

// TestCrashKafkaToFile: a kafka: input under SIGKILL at random moments and
// at every named crash point; the Kafka offsets commit in the pipeline's
// transaction, so the output holds every input exactly once, in order per
// partition.
func TestCrashKafkaToFile(t *testing.T) {
	c := kafkatest.Shared(t)
	seed, rng := crashRand(t, 7)
	const parts = 4
	topic := c.Topic(t, parts)
	lines := jsonRecords(crashRecords, 13)
	per := produceKafka(t, c, topic, parts, lines)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "kafka:"+topic,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--output", "file:"+out, "--data-dir", filepath.Join(dir, "data"),
		"--batch-size", "250", "--admin", "")
	got := make([][]string, parts)
	for _, l := range readLines(t, out) {
		var n int
		if _, err := fmt.Sscanf(l, `{"N":%d,`, &n); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got[n%parts] = append(got[n%parts], l)
	}
	for p := range parts {
		checkExactlyOnce(t, seed, fmt.Sprintf("partition %d", p), got[p], per[p], strings.ToUpper)
	}
	// A finished job outputs nothing twice.
	r := runCLI(t, "", testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "kafka:"+topic,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--output", "file:"+out, "--data-dir", filepath.Join(dir, "data"), "--admin", "")
	if r.code != 0 || len(readLines(t, out)) != len(lines) {
		t.Fatalf("rerun: exit %d, %d output lines (want %d)\n%s", r.code, len(readLines(t, out)), len(lines), r.stderr)
	}
}

// TestKafkaBadConfig: an unreachable cluster is named within a bounded time
// and exits 1; a missing topic is named and exits 2.
func TestKafkaBadConfig(t *testing.T) {
	c := kafkatest.Shared(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		brokers string
		topic   string
		code    int
		mention string
	}{
		{"unreachable", "127.0.0.1:1", "in", 1, "127.0.0.1:1"},
		{"missing topic", strings.Join(c.Addrs(), ","), "no-such-topic", 2, "no-such-topic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := runCLI(t, "", append(testEnv(t), "HELIOS_KAFKA_BROKERS="+tc.brokers), "run", "--plugin", plugin(t, "uppercase"),
				"--input", "kafka:"+tc.topic, "--output", "file:"+filepath.Join(dir, "out.jsonl"), "--data-dir", filepath.Join(dir, "data"), "--admin", "")
			if r.code != tc.code || !strings.Contains(r.stderr, tc.mention) {
				t.Fatalf("exit %d (want %d), stderr:\n%s", r.code, tc.code, r.stderr)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

// consumeKafka reads topic with read_committed until want records have come
// and nothing more arrives for a while, and returns each partition's
// values, and keys, in order.
func consumeKafka(t *testing.T, c *kafkatest.Cluster, topic string, parts, want int) (values, keys [][]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := c.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	values, keys = make([][]string, parts), make([][]string, parts)
	n, quiet := 0, time.Time{}
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			values[r.Partition] = append(values[r.Partition], string(r.Value))
			keys[r.Partition] = append(keys[r.Partition], string(r.Key))
			got++
		})
		n += got
		switch {
		case got > 0 || n < want:
			quiet = time.Time{}
		case quiet.IsZero():
			quiet = time.Now()
		case time.Since(quiet) > 3*time.Second:
			return values, keys
		}
	}
	t.Fatalf("reading %s: %d of %d records before the deadline", topic, n, want)
	return nil, nil
}

// kafkaToKafkaJob produces crashRecords records into a new topic of parts
// partitions and returns the output topic, the input lines (and per
// partition) and the arguments of an uppercase job from one to the other.
func kafkaToKafkaJob(t *testing.T, c *kafkatest.Cluster, parts, batch int) (out string, lines []string, per [][]string, args []string) {
	t.Helper()
	in := c.Topic(t, int32(parts))
	out = in + "-out"
	lines = jsonRecords(crashRecords, 13)
	per = produceKafka(t, c, in, parts, lines)
	args = []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "kafka:" + in, "--output", "kafka:" + out,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--kafka-create-topics", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--batch-size", fmt.Sprint(batch), "--admin", ""}
	return out, lines, per, args
}

// TestCrashKafkaToKafka: the stateful count from one topic to another
// (200,000 keyed records in 4 partitions) under SIGKILL at every named
// crash point (before the Kafka commit, after it and before the data
// directory's write, after both) and at random moments: the read_committed
// output holds one output per input, every key's counts run 1..n in order
// (nothing lost or repeated, state neither lost nor applied twice), and a
// finished job outputs nothing twice.
func TestCrashKafkaToKafka(t *testing.T) {
	c := kafkatest.Shared(t)
	seed, rng := crashRand(t, 11)
	const parts, users, records = 4, 97, 2 * crashRecords
	in := c.Topic(t, parts)
	out := in + "-out"
	produceKeyed(t, c, in, 0, records, users)
	args := []string{"run", "--plugin", plugin(t, "count"), "--input", "kafka:" + in, "--output", "kafka:" + out,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--kafka-create-topics", "--data-dir", filepath.Join(t.TempDir(), "data"),
		// Small batches: a kafka: output gathers up to 64 per transaction,
		// and every crash run must reach its crash point's transaction.
		"--batch-size", "50", "--admin", ""}
	crashLoop(t, rng, seed, testEnv(t), args...)
	w := watchOutput(t, c, out)
	w.waitFor(t, records, 3*time.Minute, "reading the output")
	if r := runCLI(t, "", testEnv(t), args...); r.code != 0 {
		t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
	}
	time.Sleep(3 * time.Second) // a repeated output would show by now
	t.Logf("seed %d", seed)
	w.checkCounts(t, records, users)
}

// TestCrashFileToKafka: a file: input to a kafka: output (the outbox
// protocol: the decision in the data directory, the Kafka transaction
// produced again from the outbox when the process died between the two)
// under SIGKILL at every named crash point and at random moments: the
// read_committed output holds every input exactly once, in order.
func TestCrashFileToKafka(t *testing.T) {
	c := kafkatest.Shared(t)
	seed, rng := crashRand(t, 17)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	lines := jsonRecords(crashRecords, 13)
	writeLines(t, in, lines)
	out := c.Topic(t, 1)
	crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "file:"+in, "--output", "kafka:"+out,
		// Small batches: see TestCrashKafkaToKafka.
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--data-dir", filepath.Join(dir, "data"), "--batch-size", "50", "--admin", "")
	got, _ := consumeKafka(t, c, out, 1, len(lines))
	checkExactlyOnce(t, seed, "output", got[0], lines, strings.ToUpper)
}

// TestKafkaRecordsKeepKeyHeadersTimestamp: through a kafka: → kafka:
// pipeline with an operator that passes records on unchanged, every record
// keeps its key, headers and timestamp; a keyed record lands in the
// partition Kafka's Java client picks for its key, a key-less one keeps its
// input partition (modulo the output's count).
func TestKafkaRecordsKeepKeyHeadersTimestamp(t *testing.T) {
	c := kafkatest.Shared(t)
	src, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "host", "testdata", "passthrough.wat"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wasm := filepath.Join(dir, "passthrough.wasm")
	if err := os.WriteFile(wasm, testutil.WAT(t, string(src)), 0o644); err != nil {
		t.Fatal(err)
	}
	const inParts, outParts = 2, 3
	in := c.Topic(t, inParts)
	out := in + "-out"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type rec struct {
		key       []byte
		value     string
		part      int32
		timestamp int64
	}
	var sent []rec
	for i := range 40 {
		r := rec{value: fmt.Sprintf(`{"i":%d}`, i), part: int32(i % inParts), timestamp: 1_700_000_000_000 + int64(i)}
		if i%4 != 0 {
			r.key = []byte(fmt.Sprintf("user-%d", i%7))
		}
		sent = append(sent, r)
	}
	pcl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, r := range sent {
		kr := &kgo.Record{Topic: in, Partition: r.part, Key: r.key, Value: []byte(r.value), Timestamp: time.UnixMilli(r.timestamp),
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte(r.value)}}}
		if err := pcl.ProduceSync(ctx, kr).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, "", testEnv(t), "run", "--plugin", wasm, "--input", "kafka:"+in, "--output", "kafka:"+out,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--kafka-create-topics", "--kafka-partitions", fmt.Sprint(outParts),
		"--data-dir", filepath.Join(dir, "data"), "--admin", "")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	ccl := c.Client(t, kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]*kgo.Record{}
	for len(got) < len(sent) && ctx.Err() == nil {
		ccl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)] = r })
	}
	keyed := kgo.StickyKeyPartitioner(nil).ForTopic(out)
	for _, s := range sent {
		g := got[s.value]
		if g == nil {
			t.Fatalf("record %s missing from the output", s.value)
		}
		want := s.part % outParts
		if s.key != nil {
			want = int32(keyed.Partition(&kgo.Record{Key: s.key}, outParts))
		}
		if string(g.Key) != string(s.key) || g.Timestamp.UnixMilli() != s.timestamp || g.Partition != want ||
			len(g.Headers) != 1 || g.Headers[0].Key != "trace" || string(g.Headers[0].Value) != s.value {
			t.Fatalf("record %s: key %q, timestamp %d, partition %d, headers %v; want key %q, timestamp %d, partition %d, header trace",
				s.value, g.Key, g.Timestamp.UnixMilli(), g.Partition, g.Headers, s.key, s.timestamp, want)
		}
	}
}

// TestKafkaBrokerRestart: the broker is killed (SIGKILL) while a kafka: →
// kafka: job runs, and started again. The job resumes (in the same run, or
// in a rerun if it gave up with an error naming the cluster) and the output
// holds every input exactly once, in order per partition.
func TestKafkaBrokerRestart(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{}) // its own broker: the shared one stays up
	const parts = 4
	out, lines, per, args := kafkaToKafkaJob(t, c, parts, 100)
	run := startCLI(t, testEnv(t), args...)
	// Kill the broker once the job is committing to it: mid-run.
	adm := kadm.NewClient(c.Client(t, kgo.MetadataMinAge(10*time.Millisecond))) // sees the new topic at once
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		ends, _ := adm.ListEndOffsets(context.Background(), out)
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += max(o.Offset, 0) })
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job wrote nothing within a minute\n%s", run.stderr.String())
		}
	}
	started := time.Now()
	select {
	case err := <-run.done:
		t.Fatalf("the job ended before the broker was killed: %v\n%s", err, run.stderr.String())
	default:
	}
	c.KillNode(0)
	time.Sleep(2 * time.Second)
	c.RestartNode(t, 0)
	t.Logf("broker killed, and back after %v", time.Since(started).Round(time.Millisecond))
	var err error
	select {
	case err = <-run.done:
	case <-time.After(3 * time.Minute):
		run.cmd.Process.Kill()
		t.Fatalf("the run hung after the broker came back\n%s", run.stderr.String())
	}
	t.Logf("run across the restart: %v\n%s", err, run.stderr.String())
	for attempt := 0; err != nil && attempt < 3; attempt++ {
		r := runCLI(t, "", testEnv(t), args...)
		if r.code == 0 {
			err = nil
		} else if attempt == 2 {
			t.Fatalf("reruns after the broker restart fail: exit %d\n%s", r.code, r.stderr)
		}
	}
	got, _ := consumeKafka(t, c, out, parts, len(lines))
	for p := range parts {
		checkExactlyOnce(t, 0, fmt.Sprintf("partition %d", p), got[p], per[p], strings.ToUpper)
	}
}

// exitWithin waits at most limit for run to exit and returns its exit
// code. A run still going then gets SIGQUIT (the Go runtime prints every
// goroutine's stack to stderr and exits) and the test fails with that dump:
// it shows where the run hangs.
func exitWithin(t *testing.T, run background, limit time.Duration, what string) int {
	t.Helper()
	select {
	case err := <-run.done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		default:
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(limit):
		run.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-run.done:
		case <-time.After(10 * time.Second):
			run.cmd.Process.Kill()
			<-run.done
		}
		t.Fatalf("%s: still running %s later; its stderr and goroutines:\n%s", what, limit, run.stderr.String())
	}
	return -1
}

// TestKafkaTopicDeletedWhileRunning: a --follow kafka: → kafka: pipeline
// whose input, output or state changelog topic is deleted under it stops
// within a bounded time with a non-zero exit and an error that names the
// topic: it neither hangs waiting for records that cannot come nor exits 0
// as if done.
func TestKafkaTopicDeletedWhileRunning(t *testing.T) {
	c := kafkatest.Shared(t)
	for _, tc := range []struct {
		name   string
		victim func(in, out, pipeline string) string
	}{
		{"input", func(in, _, _ string) string { return in }},
		{"output", func(_, out, _ string) string { return out }},
		{"changelog", func(_, _, pipeline string) string { return pipeline + "-state" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const parts, users = 2, 7
			in := c.Topic(t, parts)
			out := in + "-out"
			name := "deleted-" + tc.name
			w := watchOutput(t, c, out)
			produceKeyed(t, c, in, 0, 1_000, users)
			run := startCLI(t, testEnv(t), "run", "--plugin", plugin(t, "count"), "--input", "kafka:"+in, "--output", "kafka:"+out,
				"--kafka-brokers", strings.Join(c.Addrs(), ","), "--kafka-create-topics", "--kafka-session-timeout", "6s",
				"--follow", "--name", name, "--data-dir", filepath.Join(t.TempDir(), "data"), "--batch-size", "100", "--admin", "")
			defer run.cmd.Process.Kill()
			w.waitFor(t, 1_000, time.Minute, "before the deletion", run)
			victim := tc.victim(in, out, name)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if resp, err := kadm.NewClient(c.Client(t)).DeleteTopic(ctx, victim); err != nil || resp.Err != nil {
				t.Fatalf("delete topic %s: %v %v", victim, err, resp.Err)
			}
			deleted := time.Now()
			if victim != in { // the pipeline only writes when input comes
				produceKeyed(t, c, in, 1_000, 100, users)
			}
			code := exitWithin(t, run, 60*time.Second, "after deleting topic "+victim)
			t.Logf("exit %d %s after the deletion\n%s", code, time.Since(deleted).Round(time.Millisecond), run.stderr.String())
			if code == 0 || !strings.Contains(run.stderr.String(), victim) {
				t.Fatalf("exit %d (want non-zero) with an error naming %s; stderr:\n%s", code, victim, run.stderr.String())
			}
		})
	}
}

// TestKafkaFleetAuthFailure: a kafka: → kafka: pipeline (--follow) whose
// SASL login the brokers refuse exits 1 within a bounded time with an error
// naming the user and the mechanism; with the right password the same
// command runs.
func TestKafkaFleetAuthFailure(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{SASLUsers: map[string]string{"helios": "s3cret"}})
	in := c.Topic(t, 2)
	produceKeyed(t, c, in, 0, 100, 7)
	for _, tc := range []struct {
		name, user, password string
		follow               bool
		code                 int
	}{
		{"right password", "helios", "s3cret", false, 0},
		{"wrong password", "helios", "nope", true, 1},
		{"unknown user", "mallory", "s3cret", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"run", "--plugin", plugin(t, "count"), "--input", "kafka:" + in, "--output", "kafka:" + in + "-out",
				"--kafka-brokers", strings.Join(c.SASLAddrs(), ","), "--kafka-sasl-mechanism", "plain", "--kafka-sasl-user", tc.user,
				"--kafka-create-topics", "--name", "auth", "--data-dir", filepath.Join(t.TempDir(), "data"), "--admin", ""}
			if tc.follow {
				args = append(args, "--follow")
			}
			start := time.Now()
			run := startCLI(t, append(testEnv(t), "HELIOS_KAFKA_SASL_PASSWORD="+tc.password), args...)
			defer run.cmd.Process.Kill()
			code := exitWithin(t, run, 60*time.Second, tc.name)
			stderr := run.stderr.String()
			t.Logf("exit %d after %s\n%s", code, time.Since(start).Round(time.Millisecond), stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if tc.code != 0 && (!strings.Contains(stderr, `"`+tc.user+`"`) || !strings.Contains(strings.ToLower(stderr), "plain")) {
				t.Fatalf("the error does not name user %q and mechanism plain:\n%s", tc.user, stderr)
			}
			if d := time.Since(start); tc.code != 0 && d > 30*time.Second {
				t.Fatalf("took %s to report the refused login", d)
			}
		})
	}
}
