package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/internal/filemode"
)

// tightenModes takes group and other access away from the database file
// at path and its -wal and -shm files, which hold secrets' hashes, sealed
// signing keys and the audit log. Keyward creates them for their owner
// alone, but a database made by a release from before that is 0644.
// Only a file this process's user owns is changed; each change, and each
// file left open to others, is logged at warn, saying from its mode
// whether they can read it, change it, or both (filemode.OthersMay). It
// runs before SQLite opens the database, which then gives new -wal and
// -shm files the database's mode.
//
// A path that is a symbolic link is followed, as SQLite follows it: its
// -wal and -shm files are beside the file it names, not beside the link.
// Each file is then opened without following links (SQLite does not
// follow one to a -wal or -shm file either) and checked and changed
// through that one descriptor, so a file swapped in between is never
// changed. It does nothing on Windows, which has no Unix file modes: its
// files inherit the access control list of their directory.
func tightenModes(path string, log *slog.Logger) {
	path = linkTarget(path)
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		tightenMode(name, log)
	}
}

// linkTarget follows path while it is a symbolic link, and returns the
// path of what it names at last.
func linkTarget(path string) string {
	for range 40 { // SQLite's and Linux's limit on links followed
		target, err := os.Readlink(path)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return path
}

func tightenMode(name string, log *slog.Logger) {
	r, err := filemode.Tighten(name, filemode.Options{})
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		log.Warn("cannot check whether other local users can access the database file", "file", name, "err", err)
		return
	}
	if !r.Loose() {
		return
	}
	mode, tight, may := r.Mode, r.Tight(), filemode.OthersMay(r.Mode)
	switch {
	case !r.Own:
		log.Warn(fmt.Sprintf("other local users can %s the database file, which holds secrets' hashes, sealed signing keys and the audit log, and another user owns it, so its mode was left as it is: have its owner run chmod %#o on it", may, tight),
			"file", name, "mode", fmt.Sprintf("%#o", mode), "owner_uid", r.Owner)
	case r.ChmodErr != nil:
		log.Warn(fmt.Sprintf("other local users can %s the database file, which holds secrets' hashes, sealed signing keys and the audit log, and its mode could not be changed: run chmod %#o on it", may, tight),
			"file", name, "mode", fmt.Sprintf("%#o", mode), "err", r.ChmodErr)
	default:
		log.Warn(fmt.Sprintf("other local users could %s the database file (it holds secrets' hashes, sealed signing keys and the audit log): its mode was tightened, as a new database's is", may),
			"file", name, "was", fmt.Sprintf("%#o", mode), "now", fmt.Sprintf("%#o", tight))
	}
}
