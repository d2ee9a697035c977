//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
)

// runDirLock names the file whose lock marks a bench data directory in use.
const runDirLock = "bench.lock"

// markRunDir marks dir in use by this process until release is called or
// the process ends, however it ends: the kernel drops a dead process's locks.
func markRunDir(dir string) (release func(), err error) {
	// Locked under another name first: a sweep that finds runDirLock finds
	// it locked.
	tmp := filepath.Join(dir, runDirLock+".new")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, runDirLock)); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// removeAbandonedRunDirs removes the bench data directories matching
// pattern whose lock no process holds: what killed runs left. Directories
// without the lock file (being created, or from an older keyward) are left.
func removeAbandonedRunDirs(pattern string) {
	dirs, _ := filepath.Glob(pattern)
	for _, dir := range dirs {
		// Only directories of this user's, not links: the sweep removes
		// nothing else.
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, runDirLock))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			removeRunDir(dir)
		}
		f.Close()
	}
}

// removeRunDir removes a bench data directory, its lock file last: if
// anything else cannot be removed, the directory stays marked, and a later
// sweep tries again.
func removeRunDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != runDirLock {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) <= 1 {
		os.Remove(filepath.Join(dir, runDirLock))
		os.Remove(dir)
	}
}
