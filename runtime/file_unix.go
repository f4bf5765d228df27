//go:build unix

package runtime

import (
	"errors"
	"os"
	"syscall"
)

// lockExclusive takes an advisory exclusive lock on f without waiting;
// busy reports that another holder has it.
func lockExclusive(f *os.File) (busy bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

// devIno returns the device and inode number of a file, ok false where the
// platform has none.
func devIno(st os.FileInfo) (dev, ino uint64, ok bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(sys.Dev), uint64(sys.Ino), true
}

// linkCount returns how many names (hard links) a file has.
func linkCount(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Nlink)
	}
	return 1
}
