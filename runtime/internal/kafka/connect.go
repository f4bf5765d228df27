package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors of the start-up check. franz-go retries quietly for ever on most of
// these; Connect turns them into one of these, wrapped with what to check.
var (
	ErrUnreachable  = errors.New("kafka: no broker reachable")
	ErrAuth         = errors.New("kafka: authentication failed")
	ErrTopicMissing = errors.New("kafka: topic does not exist")
)

// Connect validates cfg, creates a client (with extra options appended) and
// checks within cfg.ConnectTimeout that a broker answers and, with SASL,
// accepts the login. The client is closed when the check fails.
func Connect(ctx context.Context, cfg Config, extra ...kgo.Opt) (*kgo.Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts, err := cfg.clientOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	// A metadata request (unlike Ping's ApiVersions) needs the SASL login
	// to have succeeded, so an authentication failure shows here.
	if _, err := kadm.NewClient(cl).BrokerMetadata(pctx); err != nil {
		cl.Close()
		return nil, cfg.explain(err, ctx)
	}
	return cl, nil
}

// explain turns a failed start-up check into an error that names the
// brokers and what to check.
func (c *Config) explain(err error, parent context.Context) error {
	brokers := strings.Join(c.Brokers, ",")
	switch {
	case parent.Err() != nil:
		return parent.Err()
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%w: brokers %s refused user %q with SASL mechanism %s (%v); check the user, the password and the mechanism",
			ErrAuth, brokers, c.SASLUser, c.SASLMechanism, err)
	case errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("%w: brokers %s: %v; grant the user the ACLs it needs", ErrAuth, brokers, err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: brokers %s closed the connection (%v); check that TLS and SASL settings match the listener (a TLS or SASL listener drops a client that does not speak it)",
			ErrUnreachable, brokers, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: brokers %s did not answer within %s; check the addresses, that the brokers run, and the network between",
			ErrUnreachable, brokers, c.ConnectTimeout)
	default:
		return fmt.Errorf("%w: brokers %s: %v; check the addresses, that the brokers run, and the network between",
			ErrUnreachable, brokers, err)
	}
}

// TopicOptions say what EnsureTopic does with a topic that does not exist.
type TopicOptions struct {
	// Create creates a missing topic with Partitions partitions (default 1)
	// and the broker's default replication factor.
	Create     bool
	Partitions int32
	// Config is passed to the topic's creation (e.g. cleanup.policy).
	Config map[string]*string
}

// EnsureTopic returns topic's partition count, creating the topic when it
// is missing and opts.Create is set; otherwise a missing topic is
// ErrTopicMissing.
func EnsureTopic(ctx context.Context, cl *kgo.Client, topic string, opts TopicOptions) (int32, error) {
	adm := kadm.NewClient(cl)
	n, err := partitions(ctx, adm, topic)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return n, err
	}
	if !opts.Create {
		return 0, fmt.Errorf("%w: %s; create it, or let helios-wasm create it", ErrTopicMissing, topic)
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 1
	}
	resp, err := adm.CreateTopic(ctx, opts.Partitions, -1, opts.Config, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("kafka: create topic %s: %w", topic, err)
	}
	for { // the new topic's leaders are elected asynchronously
		n, err := freshPartitions(ctx, cl, topic)
		if err == nil || !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.LeaderNotAvailable) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("kafka: topic %s created but not ready: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func partitions(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: metadata of topic %s: %w", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok {
		return 0, kerr.UnknownTopicOrPartition
	}
	if td.Err != nil {
		return 0, td.Err
	}
	for _, p := range td.Partitions {
		if p.Err != nil {
			return 0, p.Err
		}
	}
	return int32(len(td.Partitions)), nil
}

// freshPartitions is partitions without kadm's metadata cache (kept for
// the client's MetadataMinAge, 5 s), which would hide a topic just created
// for that long; a partition without a leader yet is LeaderNotAvailable.
func freshPartitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("kafka: metadata of topic %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, err
		}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, err
			}
			if p.Leader < 0 {
				return 0, kerr.LeaderNotAvailable
			}
		}
		return int32(len(t.Partitions)), nil
	}
	return 0, kerr.UnknownTopicOrPartition
}
