package kafkatest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

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
	cons := c.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
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
