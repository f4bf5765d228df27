package kafkatest

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceNumbered writes n records valued "0", "1", ... to partition 0 of
// topic (a one-partition topic: record i at offset i).
func (c *Cluster) ProduceNumbered(t testing.TB, ctx context.Context, topic string, n int) {
	t.Helper()
	cl := c.Client(t, kgo.DefaultProduceTopic(topic))
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// EndedAfterPoll is a context that is not done while a poll waits (unless
// its parent is), but reports itself ended when asked afterwards: a
// deadline that passes just as the poll returns.
type EndedAfterPoll struct{ context.Context }

func (EndedAfterPoll) Err() error { return context.DeadlineExceeded }
