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
	return retry(ctx, transientWithin, f)
}

// transientWithin: err is Transient and retrying has lasted less than
// TransientFor.
func transientWithin(err error, retrying time.Duration) bool {
	return Transient(err) && retrying < TransientFor
}

// retry calls f, with a backoff growing to a second, while it fails with
// an error again accepts (given how long retrying has lasted) and ctx has
// not ended, and returns f's last error.
func retry(ctx context.Context, again func(err error, retrying time.Duration) bool, f func() error) error {
	start := time.Now()
	backoff := 20 * time.Millisecond
	for {
		err := f()
		if err == nil || !again(err, time.Since(start)) {
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
