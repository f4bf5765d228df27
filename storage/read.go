package storage

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// GetOffset returns a consumer's committed position; found is false when the
// consumer has never committed.
func (db *DB) GetOffset(group, source string, part uint32) (pos Position, found bool, err error) {
	v, found, err := db.get(offsetKey(group, source, part))
	if err != nil || !found {
		return Position{}, found, err
	}
	pos, err = decodePosition(v)
	return pos, true, err
}

// GetState reads committed operator state.
func (db *DB) GetState(pipeline string, part uint32, key []byte) ([]byte, bool, error) {
	return db.get(append(statePrefix(pipeline, part), key...))
}

// ScanState calls fn for every committed state entry of a pipeline partition.
func (db *DB) ScanState(pipeline string, part uint32, fn func(key, value []byte) error) error {
	return db.ScanStateRange(pipeline, part, nil, nil, fn)
}

// ScanStateRange calls fn, in key order, for every committed state entry of
// a pipeline partition whose key (without the partition's prefix) lies in
// [lower, upper); a nil upper means no upper bound. fn's slices are valid
// only during the call.
func (db *DB) ScanStateRange(pipeline string, part uint32, lower, upper []byte, fn func(key, value []byte) error) error {
	p := statePrefix(pipeline, part)
	hi := prefixEnd(p)
	if upper != nil {
		hi = append(p[:len(p):len(p)], upper...)
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: append(p[:len(p):len(p)], lower...), UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key()[len(p):], it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// LatestSeq returns the highest-numbered record of a sequenced family.
func (db *DB) LatestSeq(kind SeqKind, pipeline string) (id uint64, data []byte, found bool, err error) {
	lo := seqKey(byte(kind), pipeline, 0)
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo[:len(lo)-8])})
	if err != nil {
		return 0, nil, false, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, nil, false, it.Error()
	}
	k := it.Key()
	return binary.BigEndian.Uint64(k[len(k)-8:]), append([]byte(nil), it.Value()...), true, nil
}

// ListSeq calls fn for every record of a sequenced family in id order.
func (db *DB) ListSeq(kind SeqKind, pipeline string, fn func(id uint64, data []byte) error) error {
	lo := seqKey(byte(kind), pipeline, 0)
	return db.listNumbered(lo[:len(lo)-8], fn)
}

// listNumbered calls fn, in order, for every key under prefix that ends in
// a big-endian uint64, with that number and the value.
func (db *DB) listNumbered(prefix []byte, fn func(n uint64, data []byte) error) error {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if err := fn(binary.BigEndian.Uint64(k[len(k)-8:]), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// ListSeqAll calls fn for every record of a sequenced family, of every
// pipeline, in key order.
func (db *DB) ListSeqAll(kind SeqKind, fn func(pipeline string, id uint64, data []byte) error) error {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{byte(kind)}, UpperBound: []byte{byte(kind) + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 10 {
			continue
		}
		if err := fn(string(k[1:len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// GetSeq returns one record of a sequenced family.
func (db *DB) GetSeq(kind SeqKind, pipeline string, id uint64) ([]byte, bool, error) {
	return db.get(seqKey(byte(kind), pipeline, id))
}

// GetBlob returns content-addressed bytes stored with PutBlob.
func (db *DB) GetBlob(hash string) ([]byte, bool, error) {
	return db.get(append([]byte{tagBlob}, hash...))
}

// GetMeta returns a pipeline's metadata.
func (db *DB) GetMeta(pipeline string) ([]byte, bool, error) { return db.get(metaKey(pipeline)) }

// Pipelines lists the names of pipelines with metadata.
func (db *DB) Pipelines() ([]string, error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{tagMeta}, UpperBound: []byte{tagMeta + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for it.First(); it.Valid(); it.Next() {
		out = append(out, string(it.Key()[1:]))
	}
	return out, it.Error()
}
