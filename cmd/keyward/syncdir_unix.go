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
// Where path is a symbolic link, the directory of the file it leads to is
// synced as well as its own. It is opened without blocking: opened again
// once read, a named pipe (mkfifo) has no writer left, and a blocking
// open waited for ever.
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
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	// A symbolic link (to a secrets directory, say) names the file in
	// another directory, whose entry is the one to make durable too: the
	// link's own kept, a crash could leave it naming nothing.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(real); dir != filepath.Dir(path) {
		return syncDir(dir)
	}
	return nil
}
