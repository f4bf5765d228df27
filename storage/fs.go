package storage

import (
	"errors"
	"io"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// guardFS is the filesystem Open hands to Pebble.
//
//   - Read-only opens of a directory on a read-only filesystem (or a copy
//     without write permission) proceed without the directory lock, which
//     cannot be created there; nothing can write such a directory anyway.
//   - When Open gives up on a Pebble instance that keeps failing (its flush
//     retries ENOSPC forever, inside pebble.Open), halt parks every later
//     write of that instance instead of letting it spin and log.
type guardFS struct {
	vfs.FS
	readOnly bool
	halted   atomic.Bool
	parked   chan struct{} // never closed: halted writes wait here
}

func newGuardFS(fs vfs.FS, readOnly bool) *guardFS {
	return &guardFS{FS: fs, readOnly: readOnly, parked: make(chan struct{})}
}

func (g *guardFS) halt() { g.halted.Store(true) }

func (g *guardFS) check() {
	if g.halted.Load() {
		<-g.parked
	}
}

type noLock struct{}

func (noLock) Close() error { return nil }

func (g *guardFS) Lock(name string) (io.Closer, error) {
	c, err := g.FS.Lock(name)
	if err != nil && g.readOnly && (errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) {
		return noLock{}, nil
	}
	return c, err
}

func (g *guardFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	g.check()
	f, err := g.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return guardFile{f, g}, nil
}

func (g *guardFS) ReuseForWrite(old, new string, c vfs.DiskWriteCategory) (vfs.File, error) {
	g.check()
	f, err := g.FS.ReuseForWrite(old, new, c)
	if err != nil {
		return nil, err
	}
	return guardFile{f, g}, nil
}

func (g *guardFS) Remove(name string) error { g.check(); return g.FS.Remove(name) }

func (g *guardFS) Rename(old, new string) error { g.check(); return g.FS.Rename(old, new) }

// Unwrap lets Pebble see the filesystem underneath (vfs.Root).
func (g *guardFS) Unwrap() vfs.FS { return g.FS }

type guardFile struct {
	vfs.File
	g *guardFS
}

func (f guardFile) Write(p []byte) (int, error) { f.g.check(); return f.File.Write(p) }

func (f guardFile) WriteAt(p []byte, off int64) (int, error) {
	f.g.check()
	return f.File.WriteAt(p, off)
}

func (f guardFile) Sync() error { f.g.check(); return f.File.Sync() }

func (f guardFile) SyncData() error { f.g.check(); return f.File.SyncData() }

func (f guardFile) SyncTo(length int64) (bool, error) { f.g.check(); return f.File.SyncTo(length) }
