package kafkatest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestReadCommittedHidesAborted checks the broker the tests run gives what
// exactly-once builds on: a committed transaction is read once, an aborted
// one never, under read_committed.
func TestReadCommittedHidesAborted(t *testing.T) {
	c := Shared(t)
	topic := c.Topic(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod := c.Client(t, kgo.TransactionalID("kafkatest-"+topic), kgo.DefaultProduceTopic(topic))
	for i, commit := range []bool{true, false, true} {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 50 {
			prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(j)), Value: fmt.Appendf(nil, "%d-%d", i, j)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	// A group consumer: __consumer_offsets is created now too.
	cons := c.Client(t, kgo.ConsumerGroup("kafkatest-"+topic), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for len(seen) < 100 && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	// Drain a little longer: an aborted record would show up now.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	cons.PollFetches(short).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	cancelShort()
	if len(seen) != 100 {
		t.Fatalf("read_committed saw %d distinct records, want 100", len(seen))
	}
	for v, n := range seen {
		if n != 1 || v[0] == '1' {
			t.Fatalf("record %s seen %d times (transaction 1 was aborted)", v, n)
		}
	}
}

// TestSASLPlain checks the SASL listener accepts its users and refuses
// others.
func TestSASLPlain(t *testing.T) {
	c := Start(t, Options{SASLUsers: map[string]string{"helios": "s3cret"}})
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{{"right password", "helios", "s3cret", true}, {"wrong password", "helios", "nope", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.SASLAddrs()...), kgo.SASL(plain.Auth{User: tc.user, Pass: tc.pass}.AsMechanism()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = cl.Ping(ctx)
			if (err == nil) != tc.ok {
				t.Fatalf("ping: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestThreeNodes: a 3-node cluster replicates every topic, the internal
// ones too, on all 3 nodes with min.insync.replicas 2. With the leader of
// a partition killed, transactions still commit (acks=all, 2 replicas in
// sync) and read back exactly once; the node, restarted, catches up and is
// back in every partition's in-sync replicas.
func TestThreeNodes(t *testing.T) {
	c := Start(t, Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := c.Topic(t, 3)
	adm := kadm.NewClient(c.Client(t, kgo.MetadataMinAge(10*time.Millisecond)))
	cfgs, err := adm.DescribeBrokerConfigs(ctx, 1, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 3 {
		t.Fatalf("configs of %d brokers, want 3", len(cfgs))
	}
	for _, bc := range cfgs {
		got := map[string]string{}
		for _, kv := range bc.Configs {
			got[kv.Key] = kv.MaybeValue()
		}
		for _, key := range []string{"min.insync.replicas", "transaction.state.log.min.isr", "default.replication.factor"} {
			if want := map[bool]string{true: "3", false: "2"}[key == "default.replication.factor"]; bc.Err != nil || got[key] != want {
				t.Errorf("broker %s: %s = %q (%v), want %s", bc.Name, key, got[key], bc.Err, want)
			}
		}
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	victim := md.Topics[topic].Partitions[0].Leader
	c.KillNode(int(victim) - 1)
	t.Logf("killed broker %d, the leader of %s partition 0", victim, topic)

	// Transactions (__transaction_state is created now, with one node
	// down) commit on the two left.
	prod := c.Client(t, kgo.TransactionalID("kafkatest-"+topic), kgo.DefaultProduceTopic(topic))
	for i := range 3 {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 30 {
			prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(j)), Value: fmt.Appendf(nil, "%d-%d", i, j)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	// A group consumer: __consumer_offsets is created now too.
	cons := c.Client(t, kgo.ConsumerGroup("kafkatest-"+topic), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for len(seen) < 90 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s read %d times", v, n)
		}
	}
	if len(seen) != 90 {
		t.Fatalf("read %d distinct records with broker %d down, want 90", len(seen), victim)
	}

	c.RestartNode(t, int(victim)-1)
	internal := []string{topic, "__consumer_offsets", "__transaction_state"}
	for {
		md, err := adm.Metadata(ctx, internal...)
		short := ""
		for _, name := range internal {
			td := md.Topics[name]
			if err != nil || td.Err != nil || len(td.Partitions) == 0 {
				short = fmt.Sprintf("%s: %v %v", name, err, td.Err)
				break
			}
			for _, p := range td.Partitions {
				if len(p.Replicas) != 3 {
					t.Fatalf("%s partition %d: replicas %v, want 3", name, p.Partition, p.Replicas)
				}
				if len(p.ISR) != 3 && short == "" {
					short = fmt.Sprintf("%s partition %d: in sync %v", name, p.Partition, p.ISR)
				}
			}
		}
		if short == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("broker %d restarted but not back in sync: %s", victim, short)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
