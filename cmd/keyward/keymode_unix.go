//go:build unix

package main

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"
)

// checkMasterKeyMode warns on log when the master key file path allows
// group or other access: the key opens every signing key and the
// client-secret pepper the store holds sealed. generated says path is the
// <data-dir>/master.key Keyward generates: that one, its own, loses group
// and other access, as keyward.db does, when this process's user owns it
// (checked and changed through one descriptor opened without following
// links, so a file swapped in meanwhile is never changed). An operator's
// file is never changed: the warning names the chmod 600 to run.
func checkMasterKeyMode(path string, generated bool, log *slog.Logger) {
	flag := os.O_RDONLY | syscall.O_NONBLOCK
	if generated {
		flag |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return // findMasterKey has read it, or said why not
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	mode := fi.Mode().Perm()
	if mode&0o077 == 0 {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); generated && ok && st.Uid == uint32(os.Geteuid()) {
		tight := mode &^ 0o077
		if err := f.Chmod(tight); err == nil {
			log.Warn("the master key file was readable by other local users (the key opens the signing keys and the client-secret pepper the store holds sealed): its mode was tightened, as a generated one's is",
				"path", path, "was", fmt.Sprintf("%#o", mode), "now", fmt.Sprintf("%#o", tight))
			return
		}
	}
	log.Warn(fmt.Sprintf("other local users can read the master key file, which opens the signing keys and the client-secret pepper the store holds sealed: run chmod 600 %s", shellArg(path)),
		"path", path, "mode", fmt.Sprintf("%#o", mode))
}
