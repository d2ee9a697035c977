//go:build unix

package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// syncDirectory fsyncs the directory dir, which makes the names created
// in it, and renamed into it, durable. A file system that cannot sync a
// directory says so with EINVAL (fsync(2): "fd is bound to a special file
// which does not support synchronization"; a Windows drive or a Samba
// share under WSL, CIFS before Linux 4.17): nothing more durable can be
// done there, so that is no error, as on Windows. Any other error is.
func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syncFile(d); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// syncFile syncs f (a variable for tests).
var syncFile = (*os.File).Sync

// syncExistingFile makes the file at path, and its name, durable: a file
// another program just wrote (`openssl rand -hex 32 > FILE`) may sit in
// the page cache for seconds, and a crash then take it. Something other
// than a regular file (a pipe, /dev/stdin) has nothing on disk to sync.
// It is opened without blocking: opened again once read, a named pipe
// (mkfifo) has no writer left, and a blocking open waited for ever.
func syncExistingFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	if err := syncFile(f); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return syncDir(filepath.Dir(path))
}
