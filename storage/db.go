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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	// WAL or MANIFEST write, e.g. ENOSPC or EIO). Whatever it does, the
	// library never exits the process: the DB is marked failed and every
	// later commit returns ErrFatal; a commit that hit the error returns it;
	// a Pebble background goroutine that hit it stops. The process should
	// close the DB and stop or restart (the CLI exits with status 1).
	// Everything committed before is safe. Default: nil (log only).
	OnFatal func(err error)
	// FS replaces the filesystem, for fault-injection tests. Default: disk.
	FS vfs.FS
	// ReadOnly opens the store without writing anything: it works on a full
	// disk and on a read-only copy of the directory (where it opens without
	// the directory lock, which cannot be taken there).
	ReadOnly bool
	// LockWait keeps retrying for this long while another process holds
	// the directory (a short-lived command such as `topics`). Default 0.
	LockWait time.Duration
}

// The sstable block sizes Open configures for every level.
const (
	blockSize      = 32 << 10
	indexBlockSize = 256 << 10
)

// DB is an open data directory. It is safe for concurrent use.
type DB struct {
	dir   string
	pdb   *pebble.DB
	log   *slog.Logger
	fatal *fatalState

	commitMu sync.Mutex // serialises commits that append to the log

	mu      sync.Mutex
	topics  map[string]uint32 // name -> partitions
	durable map[tp]uint64     // durable high-water marks (next offset)
	epochs  map[string]uint64 // producer epochs known to this process
	changed chan struct{}     // closed and replaced after each commit that appends
	// batchSize is the size of the last batch that appended (NewBatch).
	batchSize atomic.Int64
}

type tp struct {
	topic string
	part  uint32
}

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another process")

// ErrDiskFull means the data directory's device has no space left for
// Pebble to open the store for writing. Nothing committed is lost.
var ErrDiskFull = errors.New("no space left on the data directory's device")

// ErrNoStore means a read-only open found no data directory to read.
var ErrNoStore = errors.New("no helios data directory here yet")

// Open opens (creating if needed) the data directory dir. A directory is
// recognised by its HELIOS marker file; Open refuses, with ErrDamaged, to
// open a marked directory whose Pebble files are missing and to initialise
// over files that are not a helios store (see checkDir).
func Open(dir string, o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MemTableSizeMiB == 0 {
		o.MemTableSizeMiB = 64
	}
	fs := o.FS
	if fs == nil {
		fs = vfs.Default
	}
	db, err := openChecked(dir, o, fs)
	for deadline := time.Now().Add(o.LockWait); errors.Is(err, ErrLocked) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		db, err = openChecked(dir, o, fs)
	}
	return db, err
}

// openChecked checks dir, then opens it.
func openChecked(dir string, o Options, fs vfs.FS) (*DB, error) {
	_, marked, create, err := checkDir(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	if create && o.ReadOnly {
		return nil, fmt.Errorf("storage: open %s: %w (nothing has been written to it)", dir, ErrNoStore)
	}
	if !marked && !create {
		// Unmarked Pebble files: look (read-only, writing nothing) before
		// adopting them.
		ro := o
		ro.ReadOnly = true
		db, err := open(dir, ro, fs, false)
		if err != nil {
			return nil, err
		}
		err = db.checkAdoptable()
		db.Close()
		if err != nil {
			return nil, err
		}
	}
	db, err := open(dir, o, fs, create)
	if err != nil {
		return nil, err
	}
	if !marked && !o.ReadOnly {
		// A new directory, or one written before the marker existed.
		if !create {
			o.Logger.Info("storage: adopting a data directory written before the HELIOS marker", "dir", db.dir)
		}
		if err := writeMarker(fs, dir); err != nil {
			db.Close()
			return nil, fmt.Errorf("storage: open %s: writing the %s marker: %w", dir, markerName, err)
		}
	}
	if err := db.load(); err != nil {
		db.Close()
		return nil, damaged(dir, err)
	}
	return db, nil
}

// open opens Pebble in dir and checks that the tables its MANIFEST lists
// are there.
func open(dir string, o Options, fs vfs.FS, create bool) (*DB, error) {
	fatal := &fatalState{log: o.Logger, onFatal: o.OnFatal}
	pdb, err := openPebble(dir, o, newGuardFS(fs, o.ReadOnly), fatal, create)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(dir)
	db := &DB{dir: abs, pdb: pdb, log: o.Logger, fatal: fatal, topics: map[string]uint32{}, durable: map[tp]uint64{}, epochs: map[string]uint64{}, changed: make(chan struct{})}
	if err := db.checkTables(fs, dir); err != nil {
		pdb.Close()
		return nil, err
	}
	return db, nil
}

// openPebble opens the Pebble store in dir, failing fast when the device
// is full.
func openPebble(dir string, o Options, guard *guardFS, fatal *fatalState, create bool) (*pebble.DB, error) {
	var opening atomic.Bool
	diskFull := make(chan error, 1)
	lis := &pebble.EventListener{
		BackgroundError: func(err error) {
			if opening.Load() && errors.Is(err, syscall.ENOSPC) {
				select {
				case diskFull <- err:
				default:
				}
				return
			}
			o.Logger.Error("pebble: background error", "error", err.Error())
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			o.Logger.Error("storage: the data directory is damaged (a corrupt file); "+recovery(dir), "file", info.Path, "error", fmt.Sprint(info.Details))
		},
	}
	po := &pebble.Options{
		Logger:                      pebbleLogger{o.Logger, fatal},
		EventListener:               lis,
		MemTableSize:                uint64(o.MemTableSizeMiB) << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
		FormatMajorVersion:          pebble.FormatNewest,
		ReadOnly:                    o.ReadOnly,
		ErrorIfNotExists:            !create,
		FS:                          guard,
	}
	// Log partitions are read in sequence: 32 KiB blocks (Pebble's default
	// is 4) take an eighth of the block reads, each a syscall, a
	// decompression and a cache insertion (RATIONALE, "What does the
	// end-to-end profile show?"). CockroachDB runs Pebble with the same.
	for i := range po.Levels {
		po.Levels[i].BlockSize, po.Levels[i].IndexBlockSize = blockSize, indexBlockSize
	}
	open := func() (*pebble.DB, error) {
		opening.Store(true)
		defer opening.Store(false)
		type result struct {
			db  *pebble.DB
			err error
		}
		done := make(chan result, 1)
		go func() {
			db, err := pebble.Open(dir, po)
			done <- result{db, err}
		}()
		select {
		case r := <-done:
			return r.db, r.err
		case err := <-diskFull:
			// pebble.Open retries the failing flush forever: park that
			// instance (it holds the directory lock until the process
			// exits) and report.
			guard.halt()
			return nil, err
		}
	}
	pdb, err := open()
	switch {
	case err == nil:
		return pdb, nil
	case isLocked(err):
		return nil, lockedError(dir)
	case errors.Is(err, syscall.ENOSPC):
		return nil, fmt.Errorf("storage: open %s: %w (%v): free space on the device and retry; everything committed is safe, and a read-only open still works", dir, ErrDiskFull, err)
	case errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("storage: open %s for writing: %w (a read-only open works on it)", dir, err)
	}
	if err = damaged(dir, err); !errors.Is(err, ErrDamaged) {
		err = fmt.Errorf("storage: open %s: %w", dir, err)
	}
	return nil, err
}

// damaged marks errors that mean the store itself is broken (corrupt or
// missing files) with ErrDamaged and the way to recover; others are
// returned as they are.
func damaged(dir string, err error) error {
	if err == nil || errors.Is(err, ErrDamaged) {
		return err
	}
	if pebble.IsCorruptionError(err) || errors.Is(err, pebble.ErrDBDoesNotExist) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: %s: %w: %v; %s", dir, ErrDamaged, err.Error(), recovery(dir))
	}
	return err
}

// checkTables makes a loud error of sstables that the MANIFEST lists but the
// directory lacks (Pebble would only notice when reading them).
func (db *DB) checkTables(fs vfs.FS, dir string) error {
	levels, err := db.pdb.SSTables()
	if err != nil {
		return damaged(db.dir, err)
	}
	c, err := listDir(fs, dir)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range c.pebble {
		have[n] = true
	}
	var missing []string
	for _, level := range levels {
		for _, t := range level {
			if name := fmt.Sprintf("%06d.sst", t.BackingSSTNum); !have[name] {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("storage: open: %w: %s: %d table file(s) listed in the MANIFEST are missing (%s): their committed data is gone; %s",
			ErrDamaged, db.dir, len(missing), strings.Join(first(missing, 5), ", "), recovery(db.dir))
	}
	return nil
}

// checkAdoptable accepts an unmarked store (written before the marker
// existed) only if every key in it is one of helios's.
func (db *DB) checkAdoptable() error {
	it, err := db.pdb.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.SeekGE([]byte{it.Key()[0] + 1}) {
		if !knownTag(it.Key()[0]) {
			return fmt.Errorf("storage: open: %w: %s holds a Pebble store that is not helios's (key %q) and no %s marker; not using it: choose another directory",
				ErrDamaged, db.dir, it.Key(), markerName)
		}
		if it.Key()[0] == 0xff {
			break
		}
	}
	if err := it.Error(); err != nil {
		return damaged(db.dir, err)
	}
	return nil
}

func lockedError(dir string) error {
	return fmt.Errorf("storage: open %s: %w (stop the other process using it, or use another data directory)", dir, ErrLocked)
}

// isLocked recognises a held directory lock: another process's flock fails
// with EWOULDBLOCK; this process's own, Pebble reports as "lock held".
func isLocked(err error) bool {
	return errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) || strings.Contains(err.Error(), "lock held")
}

// Dir is the absolute path of the data directory.
func (db *DB) Dir() string { return db.dir }

// Settle flushes the memtable, compacts every key into the last level
// and waits until Pebble has been without a running compaction for 100 ms,
// or ctx ends: the directory is as after a long idle while (benchmarks
// time their runs from a settled directory, not from one still compacting
// what their setup wrote).
func (db *DB) Settle(ctx context.Context) error {
	if err := db.pdb.Flush(); err != nil {
		return err
	}
	if err := db.pdb.Compact(ctx, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return err
	}
	var last int64 = -1
	for {
		m := db.pdb.Metrics()
		if m.Compact.NumInProgress == 0 && m.Compact.Count == last {
			return nil
		}
		last = m.Compact.Count
		if m.Compact.NumInProgress > 0 {
			last = -1
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close flushes nothing (every commit is already synced) and releases the
// directory.
func (db *DB) Close() error {
	ferr := db.fatal.failed()
	if ferr == nil {
		return db.pdb.Close()
	}
	// After a fatal error a Pebble goroutine may have stopped half-way
	// (fatalState.raise), and closing can wait for it forever: give up
	// after a while. The process's exit releases the files.
	done := make(chan error, 1)
	go func() { done <- db.pdb.Close() }()
	select {
	case err := <-done:
		return errors.Join(ferr, err)
	case <-time.After(closeAfterFatal):
		return fmt.Errorf("%w; closing the store did not finish within %v: exit the process to release its files", ferr, closeAfterFatal)
	}
}

// closeAfterFatal bounds Close after a fatal error.
const closeAfterFatal = 5 * time.Second

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
		return nil, false, damaged(db.dir, err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

type pebbleLogger struct {
	l     *slog.Logger
	fatal *fatalState
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) { p.fatal.raise(fmt.Sprintf(format, args...)) }
