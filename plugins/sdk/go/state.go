package helios

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/heliosdb/helios-wasm/abi"
)

// State writes live in two layers in the guest: a record's writes, kept
// until the record succeeds (a failed record leaves no trace), then the
// batch's, the last write per key, handed to the host once at the end of
// the batch. Reads look in both before asking the host, so a stateful
// operator crosses into the host once per distinct key and batch instead of
// twice per record; the host commits the result with the batch either way.

// inBatch is true while the operator runs; state access is refused outside.
var inBatch bool

// ErrStateUnavailable is returned by state calls made outside the operator.
var ErrStateUnavailable = errors.New("helios: state is only available while processing a batch")

func statusError(op string, st int32) error {
	switch st {
	case abi.StatusNotAllowed:
		return ErrStateUnavailable
	case abi.StatusTooLarge:
		return fmt.Errorf("helios: %s: key or value too large (limits: key %d, value %d bytes)", op, abi.MaxStateKeyLen, abi.MaxStateValueLen)
	case abi.StatusBadArgument:
		return fmt.Errorf("helios: %s: host rejected a buffer", op)
	default: // StatusInternal: the host will retry
		return Retryable(fmt.Errorf("helios: %s: host status %d", op, st))
	}
}

var getBuf = make([]byte, 256)

// StateGet returns the operator state stored under key. The slice is valid
// until the next state call; copy it to keep it. Reads see this record's
// and this batch's writes.
func StateGet(key []byte) (value []byte, found bool, err error) {
	if !inBatch {
		return nil, false, ErrStateUnavailable
	}
	if v, deleted, ok := pending.get(key); ok {
		return v, !deleted, nil
	}
	if v, deleted, ok := batch.get(key); ok {
		return v, !deleted, nil
	}
	for {
		n := hostStateGet(ptrOf(key), uint32(len(key)), ptrOf(getBuf), uint32(len(getBuf)))
		switch {
		case n == abi.StatusNotFound:
			return nil, false, nil
		case n < 0:
			return nil, false, statusError("state get", n)
		case int(n) <= len(getBuf):
			return getBuf[:n], true, nil
		}
		getBuf = make([]byte, n)
	}
}

// StatePut stores value under key. The write is kept with the record and
// reaches the host only if the record succeeds; it then commits atomically
// with the batch's outputs and source offsets.
func StatePut(key, value []byte) error {
	if !inBatch {
		return ErrStateUnavailable
	}
	if len(key) > abi.MaxStateKeyLen || len(value) > abi.MaxStateValueLen {
		return statusError("state put", abi.StatusTooLarge)
	}
	pending.put(key, value, false)
	return nil
}

// StateDelete removes key from the operator state (like StatePut, only if
// the record succeeds).
func StateDelete(key []byte) error {
	if !inBatch {
		return ErrStateUnavailable
	}
	if len(key) > abi.MaxStateKeyLen {
		return statusError("state delete", abi.StatusTooLarge)
	}
	pending.put(key, nil, true)
	return nil
}

// recordWrites buffers one record's state writes until the record succeeds,
// in one reused arena so that steady-state processing makes no garbage.
type recordWrites struct {
	arena []byte
	ents  []pendingWrite
}

type pendingWrite struct {
	key, val [2]int // offset, length in arena
	deleted  bool
}

var pending recordWrites

func (w *recordWrites) reset() {
	w.arena, w.ents = w.arena[:0], w.ents[:0]
}

func (w *recordWrites) bytes(r [2]int) []byte { return w.arena[r[0] : r[0]+r[1] : r[0]+r[1]] }

func (w *recordWrites) put(key, value []byte, deleted bool) {
	e := pendingWrite{key: [2]int{len(w.arena), len(key)}, deleted: deleted}
	w.arena = append(w.arena, key...)
	e.val = [2]int{len(w.arena), len(value)}
	w.arena = append(w.arena, value...)
	w.ents = append(w.ents, e)
}

// get returns the record's latest write to key.
func (w *recordWrites) get(key []byte) (value []byte, deleted, ok bool) {
	for i := len(w.ents) - 1; i >= 0; i-- {
		if e := w.ents[i]; string(w.bytes(e.key)) == string(key) {
			return w.bytes(e.val), e.deleted, true
		}
	}
	return nil, false, false
}

// batchWrites holds the last write per key of the batch's succeeded
// records, in the order keys were first written.
type batchWrites struct {
	index map[string]int
	ents  []batchWrite
}

type batchWrite struct {
	key     string
	val     []byte // reused when the key is written again
	deleted bool
}

var batch = batchWrites{index: map[string]int{}}

func (b *batchWrites) reset() {
	clear(b.index)
	b.ents = b.ents[:0]
}

func (b *batchWrites) get(key []byte) (value []byte, deleted, ok bool) {
	i, ok := b.index[string(key)]
	if !ok {
		return nil, false, false
	}
	return b.ents[i].val, b.ents[i].deleted, true
}

// merge takes over a succeeded record's writes.
func (b *batchWrites) merge(w *recordWrites) {
	for _, e := range w.ents {
		k := w.bytes(e.key)
		i, ok := b.index[string(k)]
		if !ok {
			i = len(b.ents)
			b.index[string(k)] = i
			if i < cap(b.ents) {
				b.ents = b.ents[:i+1]
				b.ents[i].key = string(k)
			} else {
				b.ents = append(b.ents, batchWrite{key: string(k)})
			}
		}
		b.ents[i].val = append(b.ents[i].val[:0], w.bytes(e.val)...)
		b.ents[i].deleted = e.deleted
	}
	w.reset()
}

// flush hands the batch's writes to the host.
func (b *batchWrites) flush() error {
	for _, e := range b.ents {
		k := unsafe.Pointer(unsafe.StringData(e.key)) // the host only reads it: no copy
		var st int32
		if e.deleted {
			st = hostStateDelete(k, uint32(len(e.key)))
		} else {
			st = hostStatePut(k, uint32(len(e.key)), ptrOf(e.val), uint32(len(e.val)))
		}
		if st != abi.StatusOK {
			return statusError("state write", st)
		}
	}
	b.reset()
	return nil
}
