package kafka

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestRetryTransient: transient failures (a refused connection, a
// retriable broker error) are retried until the call succeeds; any other
// error, or an ended context, returns at once with the call's error.
func TestRetryTransient(t *testing.T) {
	refused := fmt.Errorf("unable to dial: %w", syscall.ECONNREFUSED)
	fatal := errors.New("not authorized")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		errs      []error // what the calls return, in order; nil after
		wantCalls int
		want      error
	}{
		{"succeeds", context.Background(), nil, 1, nil},
		{"broker down, then up", context.Background(), []error{refused, kerr.OffsetNotAvailable}, 3, nil},
		{"not transient", context.Background(), []error{fatal, refused}, 1, fatal},
		{"fenced is not transient", context.Background(), []error{ErrFenced}, 1, ErrFenced},
		{"context ended", ended, []error{refused, refused}, 1, refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := RetryTransient(tc.ctx, func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("%d calls, %v; want %d calls, %v", calls, err, tc.wantCalls, tc.want)
			}
		})
	}
}
