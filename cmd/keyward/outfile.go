package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// removeWrittenFile removes path if it is still the file a command wrote
// there, which written describes (its FileInfo, taken from the file as it
// was written): another file there now (another server's or command's,
// put in place since), even one with the same content, is left in place,
// as is any file when written is nil. It compares the files, not their
// content, which it would have to read first; between its look at path
// and the removal, a file renamed over path would still be removed, a
// window no system call closes. err is a failure to look at or remove
// path (removed with removeFile, which tests make fail).
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
	return writtenRemoved, removeFile(path)
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

// createTempFor creates the temporary file, next to path, that
// writeTempThen puts at path: renamed over it (writeFileAtomic) or linked
// to it (writeNewFileAtomic, writeNewFile). Its errors name path, not the
// temporary file, and a path that is a directory is refused.
func createTempFor(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory; name a file", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		// A file system that takes no new files (/proc, /sys) says
		// ENOENT, as if the directory were missing.
		dir := filepath.Dir(path)
		if fi, serr := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && serr == nil && fi.IsDir() {
			return nil, fmt.Errorf("cannot create %s: the directory %s exists but takes no new files (it answered %q, as virtual file systems such as /proc and /sys do), and the file is written as a new one renamed into place: name a file on another file system", path, dir, err.Error())
		}
		return nil, fmt.Errorf("cannot create %s: %w", path, err)
	}
	return f, nil
}

// writeFileAtomic writes data to a temporary file, fsyncs it and renames it
// over path, so a crash leaves the old file or the new one, never half,
// and then syncs the directory, so that once it returns nil the new one
// survives a crash (fsync(2): syncing a file does not make its name
// durable). Its callers rely on that (a generated master key, which
// the store is then sealed under, is in that file alone), so a directory
// that cannot be synced is an error, as for writeNewFile: a
// *dirSyncError, and only that error comes once the new file is in place,
// left for the caller to keep or remove; after any other, path is as it
// was. Its errors name path, not the temporary file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeTempThen(path, mode, writeBytes(data), renameFile)
}

// writeNewFileAtomic writes data to path as writeFileAtomic does, but
// never over a file: one there, even created since the caller checked,
// is left as it is, and the error is a *fs.PathError of fs.ErrExist
// naming path. The synced temporary file is hard-linked to path, which
// link(2) refuses with EEXIST, and its own name then removed; path never
// holds part of the data, even after a crash.
func writeNewFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeTempThen(path, mode, writeBytes(data), publishNew)
}

// writeOutFile writes an output file, such as --out of export: with
// replace over the file path if there is one, else as a new file. Once
// ctx is done (SIGINT, SIGTERM) it stops, before the file is put at path,
// and removes its temporary file: the error is then ctx's. A process
// killed outright (SIGKILL) leaves that file, .NAME.<digits> next to path
// (mode 0600), for the user to remove; the next write picks another name.
func writeOutFile(ctx context.Context, path string, data []byte, replace bool) error {
	publish := publishNew
	if replace {
		publish = renameFile
	}
	err := writeTempThen(path, 0o600, writeBytesContext(ctx, data), func(tmp, path string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return publish(tmp, path)
	})
	if _, ok := errors.AsType[*noLinkError](err); ok {
		// After the failure, before the note of a temporary file left.
		cause, _ := splitTempLeft(err)
		return sayInstead(fmt.Errorf("%w, or pass --force to replace any file there", cause), err)
	}
	return err
}

// outChunk is how much writeBytesContext writes between its looks at
// its context.
const outChunk = 1 << 20

// writeBytesContext is a writeTempThen write function that writes data,
// outChunk at a time, and stops with ctx's error once ctx is done.
func writeBytesContext(ctx context.Context, data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		for len(data) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(len(data), outChunk)
			if _, err := w.Write(data[:n]); err != nil {
				return err
			}
			data = data[n:]
		}
		return nil
	}
}

// writeBytes is a writeTempThen write function that writes data.
func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// writeTempThen creates a temporary file next to path with mode, has
// write fill it (buffered), syncs it, has publish put it at path, then
// syncs the directory. The temporary file is removed on any failure, and
// path is not touched before publish. Its errors name path, not the
// temporary file, which is gone by the time the user reads them, or
// named by a *tempLeftError if it could not be removed. Once published
// by a link (publishNew), the temporary file is a second name of the
// file at path; if that name cannot be removed, the write succeeded all
// the same, and the error is a *tempLeftError of no error: every caller
// whose publish links (publishNew) takes it with writtenTempLeft, to warn
// of that file, not fail. A publish by rename never leaves the name.
func writeTempThen(path string, mode os.FileMode, write func(io.Writer) error, publish func(tmp, path string) error) (err error) {
	f, err := createTempFor(path)
	if err != nil {
		return err
	}
	left := true // its name is there: not published, or linked and left (publish's *tempLeftError of no error)
	defer func() {
		// Once published, its name is gone, whatever a removal would
		// say (EROFS on a file system remounted read-only). Else a
		// failure to remove it is said with the error, so that no
		// message says nothing is left, or, once the file is in place
		// and its name left (linked to path, a second name of it), as a
		// *tempLeftError of no error: the write succeeded.
		if !left {
			return
		}
		if rerr := removeFile(f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = &tempLeftError{f.Name(), pathCause(rerr), err}
		}
	}()
	defer func() { err = namePath(err, f.Name(), path) }()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	bw := bufio.NewWriter(f)
	if err := write(writingFile(path, bw)); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	publishing(path)
	perr := publish(f.Name(), path)
	if perr != nil && !tempLeftOnly(perr) {
		return perr
	}
	left = perr != nil
	if err := syncDir(filepath.Dir(path)); err != nil {
		return &dirSyncError{path, fi, err}
	}
	return nil
}

// namePath rewords err, of writing path through the temporary file tmp,
// to name path where the system named tmp: the file's own errors (write,
// sync, close: *fs.PathError) and the rename's (*os.LinkError, naming
// both).
func namePath(err error, tmp, path string) error {
	if le, ok := err.(*os.LinkError); ok && le.Old == tmp {
		return fmt.Errorf("cannot write %s: %w", path, le.Err)
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Path == tmp {
		pe.Path = path // made for this file alone
	}
	return err
}

// writingFile wraps the writer of the file being written for path by
// writeTempThen; tests make it fail part way, or look at the directory
// meanwhile.
var writingFile = func(path string, w io.Writer) io.Writer { return w }

// removeFile is os.Remove, which writeTempThen and publishNew remove
// their temporary file with (a variable for tests).
var removeFile = os.Remove

// tempLeftError is writeTempThen's error err when its temporary file,
// tmp, could not be removed either. With err nil (writeTempThen's, and
// publishNew's) the write succeeded: the file is in place, and tmp is a
// second name of it, holding what it holds (a private key, say), for
// the caller to warn of (writtenTempLeft), not to fail with.
type tempLeftError struct {
	tmp    string
	remove error
	err    error
}

func (e *tempLeftError) Error() string {
	if e.err == nil {
		return "the file was written, but " + e.Left()
	}
	return e.err.Error() + "; " + e.Left()
}

// Left says that the temporary file is left, and why.
func (e *tempLeftError) Left() string {
	if e.err == nil {
		return fmt.Sprintf("its temporary file %s, a second name of it, is left, which could not be removed (%v): remove it", e.tmp, e.remove)
	}
	return fmt.Sprintf("its temporary file %s is left, which could not be removed (%v): remove it", e.tmp, e.remove)
}

func (e *tempLeftError) Unwrap() error { return e.err }

// splitTempLeft is err, a writeTempThen error, without the note of a
// temporary file left that a *tempLeftError adds, and that note ("" if
// err is none): for a message that says what became of the file after
// err, so that it names the leftover there, where it would otherwise
// say that nothing is left.
func splitTempLeft(err error) (cause error, left string) {
	if lt, ok := err.(*tempLeftError); ok {
		return lt.err, lt.Left()
	}
	return err, ""
}

// sayInstead is msg, a failure said in place of err, a write's, with
// err's note of its temporary file left, if any (a *tempLeftError): a
// message of the caller's own about the file, such as that one was made
// at path meanwhile, must not drop the name of that leftover, which
// holds what was to be written (a key).
func sayInstead(msg, err error) error {
	if lt, ok := err.(*tempLeftError); ok && lt.err != nil {
		return &tempLeftError{lt.tmp, lt.remove, msg}
	}
	return msg
}

// tempLeftOnly tells whether err is a *tempLeftError of no error: the
// file was written, and only its temporary name is left.
func tempLeftOnly(err error) bool {
	lt, ok := err.(*tempLeftError)
	return ok && lt.err == nil
}

// tempLeftCause is err, of publishNew, as a failure, and, for a
// *tempLeftError of no error (the file in place, its temporary name
// left), why that name could not be removed, nil if none: writtenTempLeft
// for a caller that logs the cause apart.
func tempLeftCause(err error) (failure, remove error) {
	if lt, ok := err.(*tempLeftError); ok && lt.err == nil {
		return nil, lt.remove
	}
	return err, nil
}

// writtenTempLeft is err, of a write (writeTempThen and the functions
// on it, publishNew), as a failure, and the note of a temporary file
// left by a write that succeeded (splitTempLeft's, "" if none): nil for
// a *tempLeftError of no error. The caller warns of that file, which
// holds what the file written holds, naming it, and goes on as after
// any write that succeeded.
func writtenTempLeft(err error) (failure error, left string) {
	if tempLeftOnly(err) {
		return splitTempLeft(err)
	}
	return err, ""
}

// warnTempLeft writes to w, for a command, the warning of the
// temporary file left by a write of path that succeeded (left,
// writtenTempLeft's note), if any.
func warnTempLeft(w io.Writer, path, left string) {
	if left != "" {
		fmt.Fprintf(w, "warning: %s was written, but %s\n", path, left)
	}
}

// publishing is called by writeTempThen (writeFileAtomic,
// writeNewFileAtomic, writeNewFile) just before the file is put in place;
// tests create a file there meanwhile.
var publishing = func(path string) {}

// renameFile is os.Rename (a variable for tests).
var renameFile = os.Rename

// linkFile is os.Link, and renameNew renameNoReplace (variables for
// tests).
var (
	linkFile  = os.Link
	renameNew = renameNoReplace
)

// publishNew gives the file tmp the name path, which must not exist, and
// removes the name tmp. If that name cannot be removed (removeFile), the
// file is in place all the same: the error is then a *tempLeftError of
// no error (writtenTempLeft). A file system without hard links (FAT, some
// network and FUSE ones) refuses link(2) with another error than EEXIST:
// there, a rename that does not replace is tried instead (Linux's
// renameat2 RENAME_NOREPLACE, macOS's renamex_np RENAME_EXCL, Windows'
// MoveFileEx), which some of them support; one that
// supports neither is an error, since a plain rename would replace a file
// created at path meanwhile.
func publishNew(tmp, path string) error {
	lerr := linkFile(tmp, path)
	if lerr == nil {
		if err := removeFile(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return &tempLeftError{tmp, pathCause(err), nil}
		}
		return nil
	}
	if errors.Is(lerr, fs.ErrExist) {
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	rerr := renameNew(tmp, path)
	if rerr == nil {
		return nil
	}
	if errors.Is(rerr, fs.ErrExist) {
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	if !renameUnsupported(rerr) {
		// The rename is supported and failed (a full disk, an I/O error),
		// as the link likely did for the same reason: that is the error.
		return &fs.PathError{Op: "create", Path: path, Err: linkCause(rerr)}
	}
	return &noLinkError{path, linkCause(lerr), linkCause(rerr)}
}

// renameUnsupported tells whether err, renameNew's, means a rename that
// does not replace is not available: not on this system (ENOSYS, or
// not Linux, macOS or Windows), or not on this file system (EINVAL,
// EOPNOTSUPP, ENOTSUP, ERROR_NOT_SUPPORTED, and the EPERM of some FUSE
// and SMB file systems: the temporary file it renames was just created
// in the same directory, so that no permission is missing).
func renameUnsupported(err error) bool {
	return errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EPERM)
}

// noLinkError is publishNew's error where the file system supports
// neither a hard link nor a rename that does not replace.
type noLinkError struct {
	path         string
	link, rename error
}

func (e *noLinkError) Error() string {
	return fmt.Sprintf("cannot create %s without the risk of replacing a file made there meanwhile: its file system refuses both a hard link (%v) and a rename that does not replace (%v); write it elsewhere",
		e.path, e.link, e.rename)
}

// pathCause is the cause of a *fs.PathError, without the file's name
// (a temporary file's, named by the message it goes into).
func pathCause(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// linkCause is the cause of an *os.LinkError, without the temporary
// file's name.
func linkCause(err error) error {
	if le, ok := errors.AsType[*os.LinkError](err); ok {
		return le.Err
	}
	return err
}

// dirSyncError is the error of a file written in place whose directory
// could not be synced: the file is there now, but a crash may still take
// its name (and bring back the file it replaced, if any).
type dirSyncError struct {
	path string
	file os.FileInfo // the file written, as it was before it was put in place
	err  error
}

func (e *dirSyncError) Error() string {
	return "sync the directory of " + e.path + ": " + e.err.Error()
}

func (e *dirSyncError) Unwrap() error { return e.err }

// recordWritten is publish, a writeTempThen publish function, that also
// sets *written to the file it puts at path, as it was before, for
// removeWrittenFile; *written is left as it is if publish fails (a
// *tempLeftError of no error, the file in place, is no failure).
func recordWritten(written *os.FileInfo, publish func(tmp, path string) error) func(tmp, path string) error {
	return func(tmp, path string) error {
		fi, err := statOpen(tmp)
		if err != nil {
			return err
		}
		if err = publish(tmp, path); err != nil && !tempLeftOnly(err) {
			return err
		}
		*written = fi
		return err // nil, or a *tempLeftError of no error
	}
}

// statOpen is the FileInfo of the file at path, read from the open file,
// not by its name: on Windows, a FileInfo of os.Stat or os.Lstat holds
// only the name until os.SameFile asks for the file's identity, and
// reads it then, by that name; once the temporary file it named was put
// in place, the name is gone, and os.SameFile reported every file at
// path as another, so removeWrittenFile never removed its own.
func statOpen(path string) (os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}
