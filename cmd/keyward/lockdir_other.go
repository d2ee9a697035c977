//go:build !unix && !windows

package main

// lockDataDir does nothing here: only one server per SQLite data directory
// is the operator's to ensure.
func lockDataDir(string, string) (func(), error) { return func() {}, nil }
