package runtime

import (
	"sync"

	"github.com/heliosdb/helios-wasm/storage"
)

// stateStore is the operator's keyed state, per pipeline partition, in the
// data directory. Writes are buffered per batch (a WriteSet), visible to
// later batches of the same partition before they commit, and committed
// atomically with the batch's outputs and offsets (effects.state).
type stateStore struct {
	db       *storage.DB
	pipeline string

	mu      sync.Mutex
	pending map[uint32][]*writeSet // per partition, oldest first
}

// newStateStore creates the state store of pipeline.
func newStateStore(db *storage.DB, pipeline string) *stateStore {
	return &stateStore{db: db, pipeline: pipeline, pending: map[uint32][]*writeSet{}}
}

// writeSet holds the state changes of one operator call.
type writeSet struct {
	store   *stateStore
	part    uint32
	keys    []string           // in first-write order, for deterministic commits
	vals    map[string]*[]byte // nil pointer: deleted
	earlier []*writeSet        // accepted calls of the same batch, not yet enqueued
}

// NewWriteSet starts a batch's write set for partition part. It implements
// host.StateStore.
func (s *stateStore) NewWriteSet(part uint32) *writeSet {
	return &writeSet{store: s, part: part, vals: map[string]*[]byte{}}
}

// NewWriteSetAfter starts the write set of a later call of a batch
// (bisection, confirmation, retries): it reads the writes of the batch's
// accepted calls, earlier (oldest first), before those of earlier batches.
func (s *stateStore) NewWriteSetAfter(part uint32, earlier []*writeSet) *writeSet {
	w := s.NewWriteSet(part)
	w.earlier = earlier[:len(earlier):len(earlier)]
	return w
}

// Len is the number of keys written.
func (w *writeSet) Len() int { return len(w.keys) }

// Get reads key: this call's writes, then those of the batch's earlier
// accepted calls and of uncommitted earlier batches of the partition (newest
// first), then committed state.
func (w *writeSet) Get(key []byte) ([]byte, bool, error) {
	for i := len(w.earlier); i >= 0; i-- {
		vals := w.vals
		if i < len(w.earlier) {
			vals = w.earlier[i].vals
		}
		if v, ok := vals[string(key)]; ok {
			if v == nil {
				return nil, false, nil
			}
			return *v, true, nil
		}
	}
	s := w.store
	s.mu.Lock()
	pend := s.pending[w.part]
	for i := len(pend) - 1; i >= 0; i-- {
		if v, ok := pend[i].vals[string(key)]; ok {
			s.mu.Unlock()
			if v == nil {
				return nil, false, nil
			}
			return *v, true, nil
		}
	}
	s.mu.Unlock()
	return s.db.GetState(s.pipeline, w.part, key)
}

// Put buffers a write; value is copied.
func (w *writeSet) Put(key, value []byte) error {
	v := append(make([]byte, 0, len(value)), value...)
	w.set(string(key), &v)
	return nil
}

// Delete buffers a deletion.
func (w *writeSet) Delete(key []byte) error {
	w.set(string(key), nil)
	return nil
}

func (w *writeSet) set(k string, v *[]byte) {
	if _, ok := w.vals[k]; !ok {
		w.keys = append(w.keys, k)
	}
	w.vals[k] = v
}

// Enqueue makes a processed batch's writes visible to the partition's later
// batches until it commits. Call it in batch order.
func (s *stateStore) Enqueue(w *writeSet) {
	if w.Len() == 0 {
		return
	}
	s.mu.Lock()
	s.pending[w.part] = append(s.pending[w.part], w)
	s.mu.Unlock()
}

// write adds the write sets' changes to b, in order.
func (s *stateStore) write(b *storage.Batch, sets []*writeSet) error {
	for _, w := range sets {
		for _, k := range w.keys {
			var err error
			if v := w.vals[k]; v == nil {
				err = b.DeleteState(s.pipeline, w.part, []byte(k))
			} else {
				err = b.PutState(s.pipeline, w.part, []byte(k), *v)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// committed takes committed write sets out of the overlay.
func (s *stateStore) committed(sets []*writeSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range sets {
		pend := s.pending[w.part]
		for i, p := range pend {
			if p == w {
				s.pending[w.part] = append(pend[:i:i], pend[i+1:]...)
				break
			}
		}
	}
}
