package main

import (
	"errors"
	"fmt"
)

// dataDirLock names the file in an SQLite data directory whose lock a
// server holds, so that a second one refuses to start on the same
// database: each server caches what it reads, and two would drift apart.
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

// lockForMaintenance takes the lock of an SQLite data directory for a
// command that must not run beside a server on it; with PostgreSQL it
// does nothing. The directory must exist.
func lockForMaintenance(c Config, command string) (release func(), err error) {
	if c.DB != "" {
		return func() {}, nil
	}
	release, err = lockDataDir(c.DataDir, command)
	if _, ok := errors.AsType[*dataDirBusyError](err); ok {
		return nil, fmt.Errorf("%w: stop it before running %s", err, command)
	}
	return release, err
}
