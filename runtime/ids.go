package runtime

import (
	"encoding/binary"
	"hash/fnv"
)

// Message ids are UUIDs (version 8, RFC 9562 "custom") derived
// deterministically, so that a replayed record or output gets the same id.

func setUUIDBits(id *[16]byte) {
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
}

// sourceHash identifies a source in its records' ids.
func sourceHash(identity string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(identity))
	return h.Sum64()
}

// positionID is the id of the record at offset of a source without ids of
// its own (a file, stdin): the source hash, then the offset.
func positionID(src uint64, offset int64) (id [16]byte) {
	binary.BigEndian.PutUint64(id[0:8], src)
	binary.BigEndian.PutUint64(id[8:16], uint64(offset))
	// Keep the low offset bits intact: fold the bits the version and variant
	// overwrite into the hash half.
	id[0] ^= id[6] & 0xf0
	id[1] ^= id[8] & 0xc0
	setUUIDBits(&id)
	return id
}

// outputID is the id of the index-th output of the input with id in.
func outputID(in [16]byte, index uint32) (id [16]byte) {
	a := binary.BigEndian.Uint64(in[0:8])
	b := binary.BigEndian.Uint64(in[8:16])
	a = mix64(a ^ uint64(index)*0x9e3779b97f4a7c15)
	b = mix64(b ^ a ^ uint64(index))
	binary.BigEndian.PutUint64(id[0:8], a)
	binary.BigEndian.PutUint64(id[8:16], b)
	setUUIDBits(&id)
	return id
}

// mix64 is the SplitMix64 finaliser: a bijection with good avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
