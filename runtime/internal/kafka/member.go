package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNoGroupSession means the member has lost its group session (its
// coordinator failed over, or did not answer within the session timeout)
// and is rejoining: its partitions are lost meanwhile.
var ErrNoGroupSession = errors.New("kafka: consumer group session lost")

// MemberOptions configure a consumer group member.
type MemberOptions struct {
	Group string
	Topic string
	// InstanceID, when set, makes the membership static (KIP-345): a
	// restart with the same id within the session timeout takes back its
	// partitions without a rebalance.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent member
	// before giving its partitions to others. Default 10s (the broker's
	// group.min.session.timeout.ms, 6s by default, is the floor).
	SessionTimeout time.Duration
	// Assigned is called with partitions added to this member, Revoked
	// with partitions taken away (it must return only once their work is
	// committed: the next owner starts from the committed offsets), Lost
	// with partitions lost without a chance to commit (the session
	// expired). The three are called one at a time, on the client's
	// group goroutine.
	Assigned, Revoked, Lost func(ctx context.Context, parts []int32)
}

// Member is one member of a consumer group reading one topic with
// read_committed isolation: cooperative-sticky assignment, offsets only
// ever committed inside transactions (TxnWriter with GroupOffsets), and
// fetch offsets that wait for a previous owner's open transaction to end
// (KIP-447 stable offsets).
type Member struct {
	cl      *kgo.Client
	adm     *kadm.Client
	opts    MemberOptions
	group   string
	topicID [16]byte
}

// Join connects and joins the group; assignments arrive through the
// callbacks while Poll is called.
func Join(ctx context.Context, cfg Config, o MemberOptions) (*Member, error) {
	if o.Group == "" || o.Topic == "" {
		return nil, errors.New("kafka: a group member needs a group and a topic")
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 10 * time.Second
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // a position can move past a commit marker
		kgo.RequireStableFetchOffsets(),
		kgo.DisableAutoCommit(),
		// A poll and a rebalance callback never overlap: records handed
		// out by a poll belong to the assignment of that poll until
		// AllowRebalance.
		kgo.BlockRebalanceOnPoll(),
		// A resumed partition joins the next fetch to its broker, after
		// the one in flight, which waits this long when there is nothing
		// new (default 5s).
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) { call(ctx, o.Assigned, m[o.Topic]) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) { call(ctx, o.Revoked, m[o.Topic]) }),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) { call(ctx, o.Lost, m[o.Topic]) }),
	}
	if o.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(o.InstanceID))
	}
	cl, err := Connect(ctx, cfg, opts...)
	if err != nil {
		return nil, err
	}
	m := &Member{cl: cl, adm: kadm.NewClient(cl), opts: o, group: o.Group}
	topics, err := m.adm.ListTopics(ctx, o.Topic)
	if err == nil {
		err = topics.Error()
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: topic %s: %w", o.Topic, err)
	}
	m.topicID = topics[o.Topic].ID
	return m, nil
}

func call(ctx context.Context, fn func(context.Context, []int32), parts []int32) {
	if fn != nil && len(parts) > 0 {
		fn(ctx, parts)
	}
}

// Fetched is one poll's result for one partition.
type Fetched struct {
	Partition int32
	Records   []*kgo.Record
	// LastStable is the partition's last stable offset as of the fetch.
	LastStable int64
}

// Poll waits for records of the assigned partitions (at most max) and
// returns them per partition. No rebalance happens from then until
// AllowRebalance, which must follow every Poll.
//
// The records a poll returns come back whatever else happened (ctx ended
// as they arrived, a group session error came with them): the client has
// moved past them, so dropping them would skip them for good. The error is
// ctx's only when nothing came.
func (m *Member) Poll(ctx context.Context, max int) ([]Fetched, error) {
	fs := m.cl.PollRecords(ctx, max)
	if fs.IsClientClosed() {
		return nil, errors.New("kafka: group member closed")
	}
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		var gs *kgo.ErrGroupSession
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case errors.As(err, &gs):
			// The client rejoins on its own (a coordinator failover);
			// the caller decides how long that may take.
			if ferr == nil {
				ferr = fmt.Errorf("%w: %w", ErrNoGroupSession, err)
			}
		case ferr == nil || errors.Is(ferr, ErrNoGroupSession):
			ferr = fmt.Errorf("kafka: fetch %s partition %d: %w", t, p, err)
		}
	})
	var out []Fetched
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Topic == m.opts.Topic && (len(p.Records) > 0 || p.LastStableOffset >= 0) {
			out = append(out, Fetched{Partition: p.Partition, Records: p.Records, LastStable: p.LastStableOffset})
		}
	})
	if ferr == nil && len(out) == 0 {
		ferr = ctx.Err()
	}
	return out, ferr
}

// AllowRebalance lets a rebalance proceed after Poll.
func (m *Member) AllowRebalance() { m.cl.AllowRebalance() }

// Pause stops fetching part (records not yet polled are fetched again on
// Resume); Resume undoes it.
func (m *Member) Pause(part int32) {
	m.cl.PauseFetchPartitions(map[string][]int32{m.opts.Topic: {part}})
}

// Resume resumes fetching part.
func (m *Member) Resume(part int32) {
	m.cl.ResumeFetchPartitions(map[string][]int32{m.opts.Topic: {part}})
}

// Offsets returns the member's current group generation, for committing
// next in a transaction.
func (m *Member) Offsets(next map[int32]int64) *GroupOffsets {
	member, gen := m.cl.GroupMetadata()
	o := &GroupOffsets{Group: m.group, MemberID: member, Generation: gen, Topic: m.opts.Topic, TopicID: m.topicID, Next: next}
	if m.opts.InstanceID != "" {
		id := m.opts.InstanceID
		o.InstanceID = &id
	}
	return o
}

// CommittedOffset is a partition's committed offset and its metadata.
type CommittedOffset struct {
	At       int64
	Metadata string
}

// Committed returns the group's committed offsets of parts (every
// partition when none is given; one without a commit is absent). With
// stable, it waits while a transaction that commits one of them is still
// open (KIP-447): what it returns is final until this member commits.
func (m *Member) Committed(ctx context.Context, stable bool, parts ...int32) (map[int32]CommittedOffset, error) {
	fctx := ctx
	if stable {
		fctx = kadm.RequireStable(ctx)
	}
	var out map[int32]CommittedOffset
	// A transaction with offsets of these partitions still open (the
	// broker completes one that a restart or a timeout aborted within
	// moments) is waited for; a coordinator down or moving, for a while.
	again := func(err error, retrying time.Duration) bool {
		return errors.Is(err, kerr.UnstableOffsetCommit) || transientWithin(err, retrying)
	}
	err := retry(ctx, again, func() error {
		offs, err := m.adm.FetchOffsetsForTopics(fctx, m.group, m.opts.Topic)
		if err != nil {
			return err
		}
		out = map[int32]CommittedOffset{}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic != m.opts.Topic || len(parts) > 0 && !slices.Contains(parts, o.Partition) {
				return
			}
			switch {
			case o.Err != nil:
				if err == nil || errors.Is(err, kerr.UnstableOffsetCommit) {
					err = o.Err
				}
			case o.At >= 0:
				out[o.Partition] = CommittedOffset{At: o.At, Metadata: o.Metadata}
			}
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: committed offsets of group %s: %w", m.group, err)
	}
	return out, nil
}

// Generation is the member's current group generation.
func (m *Member) Generation() int32 {
	_, gen := m.cl.GroupMetadata()
	return gen
}

// Ends returns each partition of topic's last stable offset (what a
// read_committed reader reads up to now) and its log start offset.
func Ends(ctx context.Context, cl *kgo.Client, topic string) (lastStable, start map[int32]int64, err error) {
	adm := kadm.NewClient(cl)
	if lastStable, err = listed(ctx, adm.ListCommittedOffsets, topic); err != nil {
		return nil, nil, err
	}
	start, err = listed(ctx, adm.ListStartOffsets, topic)
	return lastStable, start, err
}

// listed returns one kadm listing of topic's partitions' offsets.
func listed(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topic string) (map[int32]int64, error) {
	var offs kadm.ListedOffsets
	err := RetryTransient(ctx, func() (err error) {
		if offs, err = list(ctx, topic); err == nil {
			err = offs.Error()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// Close leaves the group, so that the member's partitions move at once
// (a static member is removed explicitly: a crashed one, by contrast,
// keeps its partitions until its session times out or it restarts with
// the same instance id), and closes the connections.
func (m *Member) Close() {
	if id := m.opts.InstanceID; id != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		m.adm.LeaveGroup(ctx, kadm.LeaveGroup(m.group).InstanceIDs(id).Reason("helios-wasm instance stopped"))
		cancel()
	}
	m.cl.Close()
}
