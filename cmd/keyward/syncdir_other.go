//go:build !unix

package main

// syncDirectory does nothing here: on Windows os.Open opens a directory
// read-only, and FlushFileBuffers refuses a handle opened so.
func syncDirectory(string) error { return nil }

// syncExistingFile does nothing here: FlushFileBuffers refuses a handle
// opened read-only, and the file need not be writable.
func syncExistingFile(string) error { return nil }
