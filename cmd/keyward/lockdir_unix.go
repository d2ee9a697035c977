//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// lockDataDir takes the lock of the data directory dir (dataDirLock) for
// this process, as holder: flock(2) on its lock file (see lockWith).
func lockDataDir(dir, holder string) (release func(), err error) {
	return lockWith(dir, holder, func(f *os.File) (bool, error) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		return errors.Is(err, syscall.EWOULDBLOCK), err
	})
}
