//go:build !unix

package main

import "os"

// markRunDir does nothing here: there is no lock a dead process drops.
func markRunDir(string) (func(), error) { return func() {}, nil }

// removeAbandonedRunDirs does nothing here: see markRunDir.
func removeAbandonedRunDirs(string) {}

// removeRunDir removes a bench data directory.
func removeRunDir(dir string) { os.RemoveAll(dir) }
