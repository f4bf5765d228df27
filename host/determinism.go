package host

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"

	"github.com/heliosdb/helios-wasm/abi"
)

// determinism feeds WASI's clocks and random source so that a replayed batch
// sees exactly what the original saw:
//   - walltime is the event time of the batch's first record;
//   - nanotime is that time in nanoseconds plus 1µs per call within the batch
//     (monotonic within a batch);
//   - random bytes come from a ChaCha8 stream seeded by the batch's first
//     record id, position and size.
//
// Before the first batch (during _initialize and helios_init) the seed is the
// plugin's hash and the time is the Unix epoch.
type determinism struct {
	baseNanos int64
	calls     int64
	rng       *rand.ChaCha8
	seedBuf   [16 + 8 + 4 + 4]byte
	unseeded  bool // seedBuf changed since rng was last seeded
}

func (d *determinism) reset(pluginHash string) {
	d.baseNanos, d.calls, d.unseeded = 0, 0, false
	d.rng = rand.NewChaCha8(sha256.Sum256([]byte(pluginHash)))
}

// seed records the batch's seed material; the stream is reseeded lazily, on
// the first random read of the batch, so that batches which read no random
// bytes (most) pay nothing.
func (d *determinism) seed(recs []abi.Record) {
	buf := &d.seedBuf
	*buf = [len(d.seedBuf)]byte{}
	if len(recs) > 0 {
		r := &recs[0]
		copy(buf[:16], r.ID[:])
		binary.LittleEndian.PutUint64(buf[16:], uint64(r.Offset))
		binary.LittleEndian.PutUint32(buf[24:], r.Partition)
		d.baseNanos = r.Timestamp * 1e6
	} else {
		d.baseNanos = 0
	}
	binary.LittleEndian.PutUint32(buf[28:], uint32(len(recs)))
	d.calls = 0
	d.unseeded = true
}

func (d *determinism) Read(p []byte) (int, error) {
	if d.unseeded {
		d.rng.Seed(sha256.Sum256(d.seedBuf[:]))
		d.unseeded = false
	}
	return d.rng.Read(p)
}

func (d *determinism) walltime() (int64, int32) {
	return d.baseNanos / 1e9, int32(d.baseNanos % 1e9)
}

func (d *determinism) nanotime() int64 {
	d.calls++
	return d.baseNanos + d.calls*1000
}
