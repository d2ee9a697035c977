package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dataDirLock names the file in a data directory whose lock a server on
// SQLite holds, so that a second one refuses to start on the same
// database: each server caches what it reads, and two would drift apart.
// A server on PostgreSQL holds it only while it starts, and a master-key
// rotate on PostgreSQL while it replaces master.key (lockFirstStart).
const dataDirLock = "keyward.lock"

// dataDirBusyError is a data directory locked by another process.
type dataDirBusyError struct {
	Dir string
	// Holder is what the holder wrote in the lock file: its command and
	// process ID, if it got that far.
	Holder string
}

func (e *dataDirBusyError) Error() string {
	who := "another keyward process"
	if e.Holder != "" {
		who = e.Holder
	}
	return fmt.Sprintf("the data directory %s is in use by %s", e.Dir, who)
}

// startingWhy says why the lock is held when its holder is a server on
// PostgreSQL starting (lockFirstStart), which holds it only for a moment:
// for the one refused to try again then, not to stop it.
const startingWhy = "a server on PostgreSQL is starting on this directory, and holds its lock only while it starts; try again in a moment"

// starting tells whether the holder is a server on PostgreSQL starting
// (lockFirstStart; see lockWith for the form).
func (e *dataDirBusyError) starting() bool {
	return strings.HasPrefix(e.Holder, startingHolder+" (process ")
}

// rotatingWhy says why the lock is held when its holder is a master-key
// rotate (rotateHolder), which holds it until the rotation ends: for the
// one refused to wait for it, not to stop it.
const rotatingWhy = "a master-key rotation holds its lock until the rotation ends; wait for it to end, then try again"

// rotating tells whether the holder is a master-key rotate (see lockWith
// for the form).
func (e *dataDirBusyError) rotating() bool {
	return strings.HasPrefix(e.Holder, rotateHolder+" (process ")
}

// why says why the holder holds the lock, when it is a process that
// holds it only for a while (a server starting, a master-key rotation),
// and so what the one refused should do: "" for another.
func (e *dataDirBusyError) why() string {
	switch {
	case e.starting():
		return startingWhy
	case e.rotating():
		return rotatingWhy
	}
	return ""
}

// lockForMaintenance takes the lock of an SQLite data directory for a
// command that must not run beside a server on it; with PostgreSQL it
// does nothing. The directory must exist.
func lockForMaintenance(c Config, command string) (release func(), err error) {
	if c.DB != "" {
		return func() {}, nil
	}
	release, err = lockDataDir(c.DataDir, command)
	if busy, ok := errors.AsType[*dataDirBusyError](err); ok {
		if why := busy.why(); why != "" {
			return nil, fmt.Errorf("%w: %s", err, why)
		}
		return nil, fmt.Errorf("%w: stop it before running %s", err, command)
	}
	return release, err
}

// lockWith takes the lock of the data directory dir for this process, as
// holder (a command name), with lock: the system's exclusive,
// non-blocking lock of the open lock file, saying whether another process
// holds it. The lock lasts until release is called or the process ends,
// however it ends: the system drops a dead process's locks. If another
// process holds it, the error is a *dataDirBusyError.
func lockWith(dir, holder string, lock func(*os.File) (busy bool, err error)) (release func(), err error) {
	path := filepath.Join(dir, dataDirLock)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if busy, err := lock(f); err != nil {
		who, _ := io.ReadAll(io.LimitReader(f, 200))
		f.Close()
		if busy {
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

// sqliteServerHolder is the holder an SQLite server names in the data
// directory's lock file, which it holds until it stops.
const sqliteServerHolder = "keyward serve"

// isSQLiteServer tells whether holder, read from the lock file, is an
// SQLite server (see lockWith for the form).
func isSQLiteServer(holder string) bool {
	return strings.HasPrefix(holder, sqliteServerHolder+" (process ")
}

// startingHolder is the holder a server on PostgreSQL names in the data
// directory's lock file while it starts (lockFirstStart).
const startingHolder = "keyward serve, starting"

// rotateHolder is the holder a master-key rotate names in the data
// directory's lock file: on PostgreSQL it takes the lock as a server
// starting does (lockFirstStart), and the servers starting wait for it.
const rotateHolder = "keyward master-key rotate"

// lockRetry is how long lockFirstStart waits before it tries again a lock
// another process holds.
const lockRetry = 50 * time.Millisecond

// lockWaiting is called when lockFirstStart first finds the lock of dir
// held by another process, before it waits; tests count the servers
// waiting.
var lockWaiting = func(dir string) {}

// lockFirstStart takes the lock of the data directory dir (keyward.lock,
// as an SQLite server holds it) for holder: startingHolder, the start of a
// server on PostgreSQL, which writes master.key and admin-key.json there
// on a first start; or rotateHolder, a master-key rotate on PostgreSQL,
// which replaces master.key. On a data directory shared by servers
// starting at the same moment, one at a time generates the master key and
// bootstraps the store, and the next ones find both made. It waits while
// another process holds the lock, saying so once, until ctx is done. A
// lock the system refuses (a file system without locks, a read-only or
// missing directory) is a *lockRefusedError, logged at debug level only:
// the caller goes on without the lock, as it did before, and warns if it
// writes there unlocked (warnUnlocked); a start that finds what it needs
// there already (a read-only directory, say) writes nothing, and needs
// no lock. So does it go on, with a warning, when a server on an SQLite
// database holds the lock, which it does until it stops: waiting would
// be waiting for ever. release is nil when it goes on without the lock.
func lockFirstStart(ctx context.Context, dir, holder string, log *slog.Logger) (release func(), err error) {
	for waited := false; ; waited = true {
		release, err := lockDataDir(dir, holder)
		busy, ok := errors.AsType[*dataDirBusyError](err)
		if !ok && err != nil {
			log.Debug("no lock of the data directory: what is written there is not kept from other keyward processes starting on it", "dir", dir, "err", err)
			return nil, &lockRefusedError{Dir: dir, Err: err}
		}
		if !ok {
			return release, nil
		}
		if isSQLiteServer(busy.Holder) {
			log.Warn(sqliteHoldsWarning(holder), "dir", dir, "holder", busy.Holder)
			return nil, nil
		}
		if !waited {
			log.Warn("waiting for the data directory: another keyward process holds its lock", "dir", dir, "holder", busy.Holder)
			lockWaiting(dir)
		}
		t := time.NewTimer(lockRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w; gave up waiting for it: %w", busy, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// sqliteHoldsWarning is lockFirstStart's warning, for holder, that it goes
// on without the lock an SQLite server holds.
func sqliteHoldsWarning(holder string) string {
	const held = "an SQLite server holds the data directory's lock for as long as it runs: "
	if holder == rotateHolder {
		return held + "this master-key rotate goes on without it, and replaces master.key there: if the SQLite server uses that master.key too, its database stays sealed with the old key; give the servers on PostgreSQL their own --data-dir"
	}
	return held + "this start goes on without it; servers starting at the same moment on it may race for master.key and admin-key.json: give this one its own --data-dir"
}

// lockRefusedError is a lock of the data directory Dir that the system
// refused (Err): lockFirstStart's caller goes on without it.
type lockRefusedError struct {
	Dir string
	Err error
}

func (e *lockRefusedError) Error() string {
	return fmt.Sprintf("could not lock the data directory %s: %v", e.Dir, e.Err)
}

func (e *lockRefusedError) Unwrap() error { return e.Err }

// warnUnlocked warns, when the system refused the data directory's lock
// for this start (m.dirUnlocked), that file is about to be written there
// without it: once a start, which may write master.key and then
// admin-key.json.
func (m *Main) warnUnlocked(file string) {
	if r := m.dirUnlocked; r != nil {
		m.dirUnlocked = nil
		m.Logger.Warn("could not lock the data directory, and writes "+file+" there unlocked: servers starting at the same moment on it may race for master.key and admin-key.json", "dir", r.Dir, "err", r.Err)
	}
}

// tempLeftovers are the files whose temporary copies, named by
// createTempFor, removeTempLeftovers removes.
var tempLeftovers = []string{"master.key", "admin-key.json"}

// tempLeftoverAge is how old a temporary copy must be for
// removeTempLeftovers to remove it. A younger one may be the file of a
// process writing it now, which the data directory's lock does not keep
// out: recover-admin writing --key-file <data-dir>/admin-key.json takes
// no lock, and master-key rotate on PostgreSQL replaces master.key
// without it where the system refuses it (lockFirstStart); so does a
// process of a release up to 2026-12-06. Removed, their write failed:
// rotate's after the store was re-encrypted under the new key.
const tempLeftoverAge = 10 * time.Minute

// removeTempLeftovers removes from the data directory dir the temporary
// files a keyward process killed while it wrote master.key or
// admin-key.json left there (.master.key.123456, mode 0600): a key
// nothing was sealed with or stored yet, or a second name of the file
// written. Only names of exactly that pattern, last modified
// tempLeftoverAge or more before now, are removed, each logged; younger
// ones are logged and left. The caller holds the data directory's lock,
// so no other server starting is writing them; where the system has no
// file lock (lockdir_other.go), that lock is nothing, and the age alone
// keeps a file another process is writing.
func removeTempLeftovers(dir string, now time.Time, log *slog.Logger) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		log.Warn("could not look for temporary files left in the data directory", "dir", dir, "err", err)
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !isTempLeftover(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		if age := now.Sub(fi.ModTime()); age < tempLeftoverAge {
			log.Info("left a temporary file in the data directory: it is recent, and another keyward process may be writing it; a start once it is older removes it",
				"file", path, "modified", fi.ModTime(), "min_age", tempLeftoverAge)
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("could not remove a temporary file left in the data directory by a keyward process that was stopped while writing it", "file", path, "err", err)
			continue
		}
		log.Warn("removed a temporary file left in the data directory by a keyward process that was stopped while writing it", "file", path)
	}
}

// isTempLeftover tells whether name is one of createTempFor's temporary
// files for a file of tempLeftovers: "." + the file's name + "." + the
// decimal digits of os.CreateTemp's random part.
func isTempLeftover(name string) bool {
	for _, f := range tempLeftovers {
		if r, ok := strings.CutPrefix(name, "."+f+"."); ok && r != "" && len(r) <= 10 && strings.Trim(r, "0123456789") == "" {
			return true
		}
	}
	return false
}
