package localkafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CreateTopic creates topic name with the given number of partitions
// (replicated on up to 3 nodes) and waits, until ctx ends, for every
// partition to have a leader.
func (c *Cluster) CreateTopic(ctx context.Context, name string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rf := int16(min(len(c.nodes), 3))
	resp, err := adm.CreateTopic(ctx, partitions, rf, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("localkafka: create topic %s: %w", name, err)
	}
	for { // leaders are elected asynchronously
		md, err := adm.Metadata(ctx, name)
		if err == nil {
			if td, ok := md.Topics[name]; ok && td.Err == nil && len(td.Partitions) == int(partitions) && leadersReady(td) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localkafka: topic %s has no leaders yet: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func leadersReady(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Leader < 0 || p.Err != nil {
			return false
		}
	}
	return true
}
