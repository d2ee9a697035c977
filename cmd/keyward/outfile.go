package main

import (
	"errors"
	"io/fs"
	"os"
)

// removeWrittenFile removes path if it is still the file a command wrote
// there, which written describes (its FileInfo, taken from the file as it
// was written): another file there now (another server's or command's,
// put in place since), even one with the same content, is left in place,
// as is any file when written is nil. It compares the files, not their
// content, which it would have to read first; between its look at path
// and the removal, a file renamed over path would still be removed, a
// window no system call closes. err is a failure to look at or remove
// path.
func removeWrittenFile(path string, written os.FileInfo) (writtenFile, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return writtenGone, nil
	case err != nil:
		return writtenRemoved, err
	case written == nil || !os.SameFile(fi, written):
		return writtenReplaced, nil
	}
	return writtenRemoved, os.Remove(path)
}

// writtenBy is the file that err, a writeTempThen error, left in place
// (a *dirSyncError's), or nil: writeTempThen leaves no file with its
// other errors.
func writtenBy(err error) os.FileInfo {
	if dse, ok := errors.AsType[*dirSyncError](err); ok {
		return dse.file
	}
	return nil
}
