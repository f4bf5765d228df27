package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
)

// ErrFatal means Pebble hit an unrecoverable error (a failed WAL or
// MANIFEST write): this DB accepts no more commits. Everything committed
// before is safe; close the DB and restart to recover.
var ErrFatal = errors.New("storage failed: no more commits in this process (everything committed is safe; restart to resume)")

// fatalState turns Pebble's Logger.Fatalf, whose default exits the process,
// into a failed DB: library code never exits the process.
type fatalState struct {
	log     *slog.Logger
	onFatal func(error)
	err     atomic.Pointer[error]
}

// fatalPanic carries a fatal error from Fatalf up to guard.
type fatalPanic struct{ err error }

// raise records the fatal error and stops the goroutine that hit it: a
// commit (inside guard) returns the error; a Pebble background goroutine
// exits (runtime.Goexit), leaving the process running.
func (f *fatalState) raise(msg string) {
	err := fmt.Errorf("%w: pebble: %s", ErrFatal, msg)
	if f.err.CompareAndSwap(nil, &err) {
		f.log.Error("storage: fatal error; everything committed is safe, close and restart to resume", "error", msg)
		if f.onFatal != nil {
			f.onFatal(err)
		}
	}
	if inGuard() {
		panic(fatalPanic{err})
	}
	runtime.Goexit()
}

// failed returns the recorded fatal error, or nil.
func (f *fatalState) failed() error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// guard runs fn (a write to Pebble), returning a fatal error Pebble raised
// inside it as an error.
func (db *DB) guard(fn func() error) (err error) {
	if err := db.fatal.failed(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			fp, ok := r.(fatalPanic)
			if !ok {
				panic(r)
			}
			err = fp.err
		}
	}()
	return fn()
}

// inGuard reports whether (*DB).guard is on the calling goroutine's stack.
func inGuard() bool {
	pcs := make([]uintptr, 128)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		fr, more := frames.Next()
		if strings.HasSuffix(fr.Function, "storage.(*DB).guard") {
			return true
		}
		if !more {
			return false
		}
	}
}
