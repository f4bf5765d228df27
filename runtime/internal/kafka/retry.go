package kafka

import (
	"context"
	"time"
)

// TransientFor is how long a request is retried while the cluster is
// unreachable or moving (a broker down, a leader elected, a coordinator
// moved): long enough for a replicated cluster to move a dead broker's
// work, short enough that a cluster that is gone is reported.
const TransientFor = time.Minute

// RetryTransient calls f until it succeeds, fails with an error that is
// not Transient, TransientFor has passed or ctx ends, and returns f's last
// error.
func RetryTransient(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(TransientFor)
	backoff := 50 * time.Millisecond
	for {
		err := f()
		if err == nil || !Transient(err) || !time.Now().Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
