package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
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
	seed := crashSeed(t)
	t.Logf("seed %d (rerun with HELIOS_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	const parts = 4
	topic := c.Topic(t, parts)
	lines := jsonRecords(crashRecords, 13)
	per := produceKafka(t, c, topic, parts, lines)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	mid := crashLoop(t, rng, seed, testEnv(t), "run", "--plugin", plugin(t, "uppercase"), "--input", "kafka:"+topic,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--output", "file:"+out, "--data-dir", filepath.Join(dir, "data"),
		"--batch-size", "250", "--admin", "")
	t.Logf("%d of %d random kills landed mid-run", mid, randomKills)
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

// TestCrashKafkaToKafka: a pipeline from one topic to another under SIGKILL
// at random moments and at every named crash point (after the decision and
// before the Kafka commit, the outbox is produced again on restart): every
// input is in the output topic exactly once, in order per partition
// (key-less records keep their partition), and a finished job outputs
// nothing twice.
func TestCrashKafkaToKafka(t *testing.T) {
	c := kafkatest.Shared(t)
	seed := crashSeed(t)
	t.Logf("seed %d (rerun with HELIOS_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	const parts = 4
	in := c.Topic(t, parts)
	out := in + "-out"
	lines := jsonRecords(crashRecords, 13)
	per := produceKafka(t, c, in, parts, lines)
	dir := t.TempDir()
	args := []string{"run", "--plugin", plugin(t, "uppercase"), "--input", "kafka:" + in, "--output", "kafka:" + out,
		"--kafka-brokers", strings.Join(c.Addrs(), ","), "--kafka-create-topics", "--data-dir", filepath.Join(dir, "data"),
		"--batch-size", "250", "--admin", ""}
	mid := crashLoop(t, rng, seed, testEnv(t), args...)
	t.Logf("%d of %d random kills landed mid-run", mid, randomKills)
	got, _ := consumeKafka(t, c, out, parts, len(lines))
	for p := range parts {
		checkExactlyOnce(t, seed, fmt.Sprintf("partition %d", p), got[p], per[p], strings.ToUpper)
	}
	if r := runCLI(t, "", testEnv(t), args...); r.code != 0 {
		t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
	}
	again, _ := consumeKafka(t, c, out, parts, len(lines))
	for p := range parts {
		if len(again[p]) != len(per[p]) {
			t.Fatalf("after a rerun partition %d holds %d records, want %d", p, len(again[p]), len(per[p]))
		}
	}
}
