//go:build windows

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// lockOffset is the byte of the lock file the lock is taken on: far past
// the holder's line at the start, which Windows' mandatory byte-range
// locks would otherwise make unreadable to the next process that tries.
const lockOffset = 1 << 40

// lockDataDir takes an exclusive lock on the SQLite data directory dir for
// this process, as holder (a command name), until release is called or the
// process ends, however it ends: Windows drops a dead process's locks.
// If another process holds it, the error is a *dataDirBusyError.
func lockDataDir(dir, holder string) (release func(), err error) {
	path := filepath.Join(dir, dataDirLock)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	ol := &windows.Overlapped{Offset: lockOffset & 0xffffffff, OffsetHigh: lockOffset >> 32}
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		who, _ := io.ReadAll(io.LimitReader(f, 200))
		f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, &dataDirBusyError{Dir: dir, Holder: strings.TrimSpace(string(who))}
		}
		return nil, fmt.Errorf("lock the data directory %s: %w", dir, err)
	}
	// Who holds it, for the error of the next one that tries.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(fmt.Sprintf("%s (process %d)\n", holder, os.Getpid())), 0)
	}
	return func() { f.Close() }, nil
}
