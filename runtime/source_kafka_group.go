package runtime

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
)

// groupCommitter reports a kafka: input's committed offsets to its consumer
// group from one background goroutine, coalescing commits that come faster
// than once a second. The report is advisory (progress and lag in Kafka's
// tools): a failed report is retried with the next one, and the last
// offsets are reported again at Close.
type groupCommitter struct {
	mu      sync.Mutex
	group   string
	pending map[uint32]Position
	wake    chan struct{}
	done    chan struct{}
	stop    context.CancelFunc
	cl      *kgo.Client
}

const groupCommitEvery = time.Second

func (g *groupCommitter) update(s *kafkaSource, pipeline string, positions map[uint32]Position) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wake == nil { // first commit: start the reporter
		g.group = s.cfg.Group
		if g.group == "" {
			g.group = pipeline
		}
		g.pending = map[uint32]Position{}
		g.wake, g.done = make(chan struct{}, 1), make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		g.stop = cancel
		go g.run(ctx, s)
	}
	for part, pos := range positions {
		g.pending[part] = pos
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *groupCommitter) run(ctx context.Context, s *kafkaSource) {
	defer close(g.done)
	for {
		select {
		case <-ctx.Done():
			// The last committed offsets, once more, briefly: exit (a pod's
			// grace period) must not wait on unreachable brokers.
			final, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			g.flush(final, s)
			cancel()
			return
		case <-g.wake:
		}
		g.flush(ctx, s)
		select {
		case <-ctx.Done():
		case <-time.After(groupCommitEvery):
		}
	}
}

func (g *groupCommitter) flush(ctx context.Context, s *kafkaSource) {
	g.mu.Lock()
	pending := g.pending
	g.pending = map[uint32]Position{}
	g.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	if g.cl == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cl, err := kafka.Connect(cctx, s.cfg)
		cancel()
		if err != nil {
			g.requeue(pending)
			return
		}
		g.cl = cl
	}
	offsets := kadm.Offsets{}
	for part, pos := range pending {
		offsets.AddOffset(s.topic, int32(part), pos.Offset, -1)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(g.cl).CommitOffsets(cctx, g.group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		g.requeue(pending)
	}
}

// requeue keeps offsets whose report failed, unless newer ones arrived.
func (g *groupCommitter) requeue(failed map[uint32]Position) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for part, pos := range failed {
		if _, newer := g.pending[part]; !newer {
			g.pending[part] = pos
		}
	}
}

func (g *groupCommitter) close() error {
	g.mu.Lock()
	stop, done := g.stop, g.done
	g.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	<-done
	if g.cl != nil {
		g.cl.Close()
		g.cl = nil
	}
	return nil
}
