package main

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/keyward/keyward/internal/filemode"
)

// checkMasterKeyMode warns on log when the master key file path allows
// group or other access: the key opens every signing key and the
// client-secret pepper the store holds sealed. generated says path is the
// <data-dir>/master.key Keyward generates: that one, its own, loses group
// and other access, as keyward.db does, when this process's user owns it
// (checked and changed through one descriptor opened without following
// links, so a file swapped in meanwhile is never changed). An operator's
// file is never changed: the warning names the chmod 600 to run. Nor is
// a generated master.key that is a symbolic link: the file it names is
// checked, and warned of, as an operator's is. It does nothing on
// Windows, which has no Unix file modes.
func checkMasterKeyMode(path string, generated bool, log *slog.Logger) {
	r, err := filemode.Tighten(path, filemode.Options{FollowLinks: !generated, CheckOnly: !generated})
	if err != nil && generated {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			r, err = filemode.Tighten(path, filemode.Options{FollowLinks: true, CheckOnly: true})
		}
	}
	if err != nil || !r.Loose() {
		return // findMasterKey has read it, or said why not
	}
	if r.Tightened {
		log.Warn(fmt.Sprintf("other local users could %s the master key file (the key opens the signing keys and the client-secret pepper the store holds sealed): its mode was tightened, as a generated one's is", filemode.OthersMay(r.Mode)),
			"path", path, "was", fmt.Sprintf("%#o", r.Mode), "now", fmt.Sprintf("%#o", r.Tight()))
		return
	}
	log.Warn(fmt.Sprintf("other local users can %s the master key file, which opens the signing keys and the client-secret pepper the store holds sealed: run chmod 600 %s", filemode.OthersMay(r.Mode), shellArg(path)),
		"path", path, "mode", fmt.Sprintf("%#o", r.Mode))
}
