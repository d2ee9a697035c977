//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockDataDir takes an exclusive lock on the SQLite data directory dir for
// this process, as holder (a command name), until release is called or the
// process ends, however it ends: the kernel drops a dead process's locks.
// If another process holds it, the error is a *dataDirBusyError.
func lockDataDir(dir, holder string) (release func(), err error) {
	path := filepath.Join(dir, dataDirLock)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		who, _ := io.ReadAll(io.LimitReader(f, 200))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
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
