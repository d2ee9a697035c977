//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"syscall"
)

// tightenModes takes group and other access away from the database file
// at path and its -wal and -shm files, which hold secrets' hashes, sealed
// signing keys and the audit log. Keyward creates them for their owner
// alone, but a database made by a release from before that is 0644.
// Only a file this process's user owns is changed; each change, and each
// file left readable by others, is logged at warn. It runs before SQLite
// opens the database, which then gives new -wal and -shm files the
// database's mode.
func tightenModes(path string, log *slog.Logger) {
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			log.Warn("cannot check whether other local users can read the database file", "file", name, "err", err)
			continue
		}
		mode := fi.Mode().Perm()
		if mode&0o077 == 0 || !fi.Mode().IsRegular() {
			continue
		}
		tight := mode &^ 0o077
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != uint32(os.Geteuid()) {
			log.Warn(fmt.Sprintf("other local users can read the database file, which holds secrets' hashes, sealed signing keys and the audit log, and another user owns it, so its mode was left as it is: have its owner run chmod %#o on it", tight),
				"file", name, "mode", fmt.Sprintf("%#o", mode), "owner_uid", st.Uid)
			continue
		}
		if err := os.Chmod(name, tight); err != nil {
			log.Warn(fmt.Sprintf("other local users can read the database file, which holds secrets' hashes, sealed signing keys and the audit log, and its mode could not be changed: run chmod %#o on it", tight),
				"file", name, "mode", fmt.Sprintf("%#o", mode), "err", err)
			continue
		}
		log.Warn("the database file was readable by other local users (it holds secrets' hashes, sealed signing keys and the audit log): its mode was tightened, as a new database's is",
			"file", name, "was", fmt.Sprintf("%#o", mode), "now", fmt.Sprintf("%#o", tight))
	}
}
