//go:build windows

package main

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is the byte of the lock file the lock is taken on: far past
// the holder's line at the start, which Windows' mandatory byte-range
// locks would otherwise make unreadable to the next process that tries.
const lockOffset = 1 << 40

// lockDataDir takes the lock of the data directory dir (dataDirLock) for
// this process, as holder: LockFileEx on a byte of its lock file (see
// lockWith).
func lockDataDir(dir, holder string) (release func(), err error) {
	return lockWith(dir, holder, func(f *os.File) (bool, error) {
		ol := &windows.Overlapped{Offset: lockOffset & 0xffffffff, OffsetHigh: lockOffset >> 32}
		err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
		return errors.Is(err, windows.ERROR_LOCK_VIOLATION), err
	})
}
