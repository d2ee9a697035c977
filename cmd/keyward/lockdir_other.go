//go:build !unix && !windows

package main

// lockDataDir does nothing here: the system has no file lock. Only one
// server per SQLite data directory, no maintenance command beside it, and
// one start at a time of servers on PostgreSQL sharing a data directory
// are the operator's to ensure. The callers go on as if they held the
// lock: a start's removeTempLeftovers runs unlocked, and only the age of
// a temporary file (tempLeftoverAge) keeps it from removing one another
// process is writing, which it writes and renames in far less time.
func lockDataDir(string, string) (func(), error) { return func() {}, nil }
