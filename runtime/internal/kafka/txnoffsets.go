package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrRebalanced means the consumer group has moved on without this member
// (a rebalance completed, or its session expired): the transaction that
// carried its offsets is aborted, and the partitions are someone else's.
var ErrRebalanced = errors.New("kafka: this instance is no longer a member of the consumer group's current generation")

// commitOffsets adds o to the open transaction: AddOffsetsToTxn (which the
// broker accepts under every transaction protocol version), then
// TxnOffsetCommit with the member's generation.
func (w *TxnWriter) commitOffsets(ctx context.Context, o *GroupOffsets) error {
	if len(o.Next) == 0 {
		return nil
	}
	id, epoch, err := w.cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	err = retryConcurrent(ctx, func() error {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = w.txnID, id, epoch, o.Group
		resp, err := add.RequestWith(ctx, w.cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	})
	if err != nil {
		return fmt.Errorf("adding group %s's offsets to the transaction: %w", o.Group, err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = w.txnID, o.Group, id, epoch
	req.Generation, req.MemberID, req.InstanceID = o.Generation, o.MemberID, o.InstanceID
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic, t.TopicID = o.Topic, o.TopicID // by name up to v5, by id from v6
	for part, next := range o.Next {
		p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = part, next, -1
		if md, ok := o.Metadata[part]; ok {
			p.Metadata = &md
		}
		t.Partitions = append(t.Partitions, p)
	}
	req.Topics = append(req.Topics, t)
	return retryConcurrent(ctx, func() error {
		resp, err := req.RequestWith(ctx, w.cl)
		if err != nil {
			return err
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					switch {
					case errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.UnknownMemberID),
						errors.Is(err, kerr.FencedInstanceID), errors.Is(err, kerr.RebalanceInProgress),
						errors.Is(err, kerr.StaleMemberEpoch), errors.Is(err, kerr.GroupIDNotFound):
						return fmt.Errorf("%w: group %s generation %d member %s: %w", ErrRebalanced, o.Group, o.Generation, o.MemberID, err)
					}
					return fmt.Errorf("committing group %s's offset of %s partition %d: %w", o.Group, o.Topic, rp.Partition, err)
				}
			}
		}
		return nil
	})
}

// retryConcurrent retries fn while the broker answers that an earlier
// transaction of this writer is still completing.
func retryConcurrent(ctx context.Context, fn func() error) error {
	backoff := 10 * time.Millisecond
	for {
		err := fn()
		if !errors.Is(err, kerr.ConcurrentTransactions) && !errors.Is(err, kerr.CoordinatorLoadInProgress) &&
			!errors.Is(err, kerr.NotCoordinator) && !errors.Is(err, kerr.CoordinatorNotAvailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}
