package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

func dedupKey(pipeline string, id [16]byte) []byte {
	return append(nameKey(nil, tagDedup, pipeline), id[:]...)
}

func dedupIndexKey(pipeline string, expiry int64, id [16]byte) []byte {
	k := binary.BigEndian.AppendUint64(nameKey(nil, tagDedupIndex, pipeline), uint64(expiry))
	return append(k, id[:]...)
}

// PutDedup stages a message id seen by pipeline, kept until expiry (Unix
// nanoseconds).
func (b *Batch) PutDedup(pipeline string, id [16]byte, expiry int64) error {
	b.dedup = true
	if err := b.b.Set(dedupKey(pipeline, id), binary.BigEndian.AppendUint64(nil, uint64(expiry)), nil); err != nil {
		return err
	}
	return b.b.Set(dedupIndexKey(pipeline, expiry, id), nil, nil)
}

// GetDedup returns the committed expiry of a message id.
func (db *DB) GetDedup(pipeline string, id [16]byte) (expiry int64, found bool, err error) {
	v, found, err := db.get(dedupKey(pipeline, id))
	if err != nil || !found {
		return 0, found, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("storage: corrupt dedup entry")
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// ExpireDedup deletes up to limit message ids of pipeline that expired
// before now, in one batch, and returns how many it deleted. An id
// re-recorded with a later expiry keeps its newer entry: the check and the
// commit hold commitMu, which commits of message ids take too, so a
// re-recording cannot land between them.
func (db *DB) ExpireDedup(pipeline string, now int64, limit int) (int, error) {
	lo := nameKey(nil, tagDedupIndex, pipeline)
	hi := binary.BigEndian.AppendUint64(append([]byte(nil), lo...), uint64(now))
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	var expired [][]byte // index keys
	for it.First(); it.Valid() && len(expired) < limit; it.Next() {
		expired = append(expired, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil || len(expired) == 0 {
		return 0, err
	}
	db.commitMu.Lock()
	defer db.commitMu.Unlock()
	b := db.pdb.NewBatch()
	defer b.Close()
	for _, k := range expired {
		id := [16]byte(k[len(k)-16:])
		expiry := int64(binary.BigEndian.Uint64(k[len(k)-24 : len(k)-16]))
		cur, found, err := db.GetDedup(pipeline, id)
		if err != nil {
			return 0, err // the index entry stays: the id expires on a later pass
		}
		b.Delete(k, nil)
		if found && cur == expiry {
			b.Delete(dedupKey(pipeline, id), nil)
		}
	}
	// Not synced: a deletion lost in a crash is made again by a later
	// pass, and the lock is held for less.
	return len(expired), db.guard(func() error { return b.Commit(pebble.NoSync) })
}
