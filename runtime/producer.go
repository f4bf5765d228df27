package runtime

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/heliosdb/helios-wasm/storage"
)

// idempotentProducer numbers what a pipeline appends to the embedded log,
// per partition, under an epoch that is bumped (durably) every time a
// producer with this id is created. The log refuses appends from an older
// epoch, so a zombie instance (paused, then resumed after a newer one
// started) cannot write, and refuses sequence gaps or repeats.
type idempotentProducer struct {
	db    *storage.DB
	id    string
	epoch uint64

	mu   sync.Mutex
	next map[tp]uint64
	sent atomic.Uint64
}

type tp struct {
	topic string
	part  uint32
}

// newIdempotentProducer starts producer id with a new epoch.
func newIdempotentProducer(db *storage.DB, id string) (*idempotentProducer, error) {
	epoch, err := db.BumpEpoch(id)
	if err != nil {
		return nil, err
	}
	return &idempotentProducer{db: db, id: id, epoch: epoch, next: map[tp]uint64{}}, nil
}

// ID is the producer's id.
func (p *idempotentProducer) ID() string { return p.id }

// Epoch is this instance's epoch.
func (p *idempotentProducer) Epoch() uint64 { return p.epoch }

// Reserve reserves the next n sequence numbers for topic/part and returns
// the first.
func (p *idempotentProducer) Reserve(topic string, part uint32, n uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := tp{topic, part}
	s := p.next[k]
	p.next[k] = s + n
	p.sent.Add(n)
	return s
}

// Rewind makes seq the next sequence of topic/part again (its transaction
// aborted).
func (p *idempotentProducer) Rewind(topic string, part uint32, seq uint64) {
	p.mu.Lock()
	p.next[tp{topic, part}] = seq
	p.mu.Unlock()
}

// Sent is how many sequence numbers were handed out.
func (p *idempotentProducer) Sent() uint64 { return p.sent.Load() }

func (p *idempotentProducer) String() string { return fmt.Sprintf("%s@%d", p.id, p.epoch) }
