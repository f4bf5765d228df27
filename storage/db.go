// Package storage is helios-wasm's embedded store on Pebble: a partitioned
// log (topics, partitions, offsets), consumer positions, operator state,
// transaction decision records, checkpoints and pipeline metadata, all in one
// data directory, written with synced atomic batches.
//
// Readers of the log never see past the durable high-water mark: a commit's
// entries become readable only after its batch is synced (Pebble makes a
// batch visible to its own iterators before the WAL fsync returns).
package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configures Open. The zero value is the production default.
type Options struct {
	// Logger receives Pebble's messages. Default: slog.Default().
	Logger *slog.Logger
	// MemTableSizeMiB is Pebble's memtable size. Default 64: with Pebble's
	// 4 MiB default, sustained synced writes stall for seconds.
	MemTableSizeMiB int
	// OnFatal is called when Pebble hits an unrecoverable error (a failed
	// WAL write, e.g. ENOSPC). Everything committed is safe; the process must
	// stop and restart to recover. Default: log and exit with status 1.
	OnFatal func(msg string)
	// FS replaces the filesystem, for fault-injection tests. Default: disk.
	FS vfs.FS
	// ReadOnly opens the store without write access.
	ReadOnly bool
	// LockWait keeps retrying for this long while another process holds
	// the directory (a short-lived command such as `topics`). Default 0.
	LockWait time.Duration
}

// DB is an open data directory. It is safe for concurrent use.
type DB struct {
	dir string
	pdb *pebble.DB
	log *slog.Logger

	commitMu sync.Mutex // serialises commits that append to the log

	mu      sync.Mutex
	topics  map[string]uint32 // name -> partitions
	durable map[tp]uint64     // durable high-water marks (next offset)
	epochs  map[string]uint64 // producer epochs known to this process
	changed chan struct{}     // closed and replaced after each commit that appends
}

type tp struct {
	topic string
	part  uint32
}

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another process")

// Open opens (creating if needed) the data directory dir.
func Open(dir string, o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MemTableSizeMiB == 0 {
		o.MemTableSizeMiB = 64
	}
	if o.OnFatal == nil {
		o.OnFatal = func(msg string) {
			o.Logger.Error("storage: fatal error; everything committed is safe, restart to resume", "error", msg)
			os.Exit(1)
		}
	}
	po := &pebble.Options{
		Logger:                      pebbleLogger{o.Logger, o.OnFatal},
		MemTableSize:                uint64(o.MemTableSizeMiB) << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		FormatMajorVersion:          pebble.FormatNewest,
		ReadOnly:                    o.ReadOnly,
	}
	if o.FS != nil {
		po.FS = o.FS
	}
	pdb, err := pebble.Open(dir, po)
	for deadline := time.Now().Add(o.LockWait); err != nil && isLocked(err) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		pdb, err = pebble.Open(dir, po)
	}
	if err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("storage: open %s: %w (stop the other helios-wasm process, or point --data-dir elsewhere)", dir, ErrLocked)
		}
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	abs, _ := filepath.Abs(dir)
	db := &DB{dir: abs, pdb: pdb, log: o.Logger, topics: map[string]uint32{}, durable: map[tp]uint64{}, epochs: map[string]uint64{}, changed: make(chan struct{})}
	if err := db.load(); err != nil {
		pdb.Close()
		return nil, err
	}
	return db, nil
}

// isLocked recognises a held directory lock: another process's flock fails
// with EWOULDBLOCK; this process's own, Pebble reports as "lock held".
func isLocked(err error) bool {
	return errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) || strings.Contains(err.Error(), "lock held")
}

// Dir is the absolute path of the data directory.
func (db *DB) Dir() string { return db.dir }

// Close flushes nothing (every commit is already synced) and releases the
// directory.
func (db *DB) Close() error { return db.pdb.Close() }

// load reads topic metadata and durable high-water marks.
func (db *DB) load() error {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{tagTopic}, UpperBound: []byte{tagTopic + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		meta, err := decodeTopicMeta(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("storage: topic %q: %w", it.Key()[1:], err)
		}
		db.topics[string(it.Key()[1:])] = meta
	}
	if err := it.Close(); err != nil {
		return err
	}
	for topic, parts := range db.topics {
		for p := uint32(0); p < parts; p++ {
			v, found, err := db.get(highWaterKey(topic, p))
			if err != nil {
				return err
			}
			if found {
				db.durable[tp{topic, p}] = decodeU64(v)
			}
		}
	}
	return nil
}

func (db *DB) get(key []byte) ([]byte, bool, error) {
	v, closer, err := db.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

type pebbleLogger struct {
	l       *slog.Logger
	onFatal func(string)
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) { p.onFatal(fmt.Sprintf(format, args...)) }
