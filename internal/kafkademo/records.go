package kafkademo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// key is the key of input i: inputs cycle through keys u0..u(keys-1).
func key(i, keys int) string { return fmt.Sprintf("u%d", i%keys) }

// produce writes inputs from..from+n-1 to topic, keyed (Kafka's default
// partitioner puts all of a key's records in one partition), and waits
// until the broker has them all.
func produce(ctx context.Context, brokers []string, topic string, from, n, keys int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	var mu sync.Mutex
	var first error
	for i := from; i < from+n; i++ {
		cl.Produce(ctx, &kgo.Record{Key: []byte(key(i, keys)), Value: fmt.Appendf(nil, `{"n":%d}`, i)}, func(_ *kgo.Record, err error) {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("produce to %s: %w", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return fmt.Errorf("produce to %s: %w", topic, first)
	}
	return nil
}

// createTopic creates topic with the given partitions (replication 1: the
// demo's broker is one node).
func createTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// readCommitted reads topic from the start with read_committed isolation
// (only committed transactions' records) until it has want records or ctx
// ends, then settle longer: any record beyond want shows up by then. Fetch
// errors are retried; the records read so far are returned either way.
func readCommitted(ctx context.Context, brokers []string, topic string, want int, settle time.Duration) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < want && ctx.Err() == nil {
		recs = append(recs, cl.PollFetches(ctx).Records()...)
	}
	sctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	for sctx.Err() == nil {
		recs = append(recs, cl.PollFetches(sctx).Records()...)
	}
	return recs, nil
}

// watcher counts a topic's committed records in the background, for the
// demo's progress lines.
type watcher struct {
	n      atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
}

func watch(brokers []string, topic string) (*watcher, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond)) // the topic appears when the first instance creates it
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cl.Close()
		for ctx.Err() == nil {
			w.n.Add(int64(cl.PollFetches(ctx).NumRecords()))
		}
	}()
	return w, nil
}

func (w *watcher) count() int { return int(w.n.Load()) }

func (w *watcher) close() { w.cancel(); <-w.done }
