package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// TestMemberPollKeepsRecordsAsContextEnds: records a poll returns as its
// context ends (a bounded fleet polls with a 100 ms deadline) come back,
// not dropped: the client has moved past them, and a dropped chunk was a
// gap of up to 4 batches that the next positions skipped (a CI run saw
// 1,000 of 100,000 records never processed, both instances exiting 0).
// Every other poll here reports its context ended once it returns.
func TestMemberPollKeepsRecordsAsContextEnds(t *testing.T) {
	c := kafkatest.Shared(t)
	topic := c.Topic(t, 1)
	const n = 3000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.ProduceNumbered(t, ctx, topic, n)
	m, err := Join(ctx, Config{Brokers: c.Addrs()}, MemberOptions{Group: topic, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	next := int64(0)
	for i := 0; next < n && ctx.Err() == nil; i++ {
		pctx := context.Context(ctx)
		if i%2 == 0 {
			pctx = kafkatest.EndedAfterPoll{Context: ctx}
		}
		fetched, err := m.Poll(pctx, 100)
		m.AllowRebalance()
		if err != nil && len(fetched) == 0 && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		for _, f := range fetched {
			for _, r := range f.Records {
				if r.Attrs.IsControl() {
					continue
				}
				if r.Offset != next || string(r.Value) != fmt.Sprint(next) {
					t.Fatalf("poll %d: record at offset %d (%q), want offset %d: a polled chunk was dropped", i, r.Offset, r.Value, next)
				}
				next++
			}
		}
	}
	if next != n {
		t.Fatalf("%d of %d records polled", next, n)
	}
}
