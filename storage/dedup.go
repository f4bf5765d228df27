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
// before now, in one synced batch, and returns how many it deleted. An id
// re-recorded with a later expiry keeps its newer entry.
func (db *DB) ExpireDedup(pipeline string, now int64, limit int) (int, error) {
	lo := nameKey(nil, tagDedupIndex, pipeline)
	hi := binary.BigEndian.AppendUint64(append([]byte(nil), lo...), uint64(now))
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid() && n < limit; it.Next() {
		k := it.Key()
		var id [16]byte
		copy(id[:], k[len(k)-16:])
		expiry := int64(binary.BigEndian.Uint64(k[len(k)-24 : len(k)-16]))
		b.Delete(k, nil)
		if cur, found, err := db.GetDedup(pipeline, id); err == nil && found && cur == expiry {
			b.Delete(dedupKey(pipeline, id), nil)
		}
		n++
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	return n, db.guard(func() error { return b.Commit(pebble.Sync) })
}
