// Package filemode takes group and other access away from a file that
// holds secrets (the SQLite database, the generated master key), checking
// and changing it through one descriptor so that a file swapped in
// meanwhile is never changed.
package filemode

import "io/fs"

// Options say how Tighten opens the file and whether it may change it.
type Options struct {
	// FollowLinks opens a path that is a symbolic link as the file it
	// names. Without it such a path is not opened: Tighten returns the
	// open's error (ELOOP on Unix).
	FollowLinks bool
	// CheckOnly reports the file's mode and never changes it.
	CheckOnly bool
}

// Result is what Tighten found and did.
type Result struct {
	// Regular says the file is a regular one. Nothing else is changed,
	// or reported as Loose.
	Regular bool
	// Mode is the file's permission bits as Tighten found them.
	Mode fs.FileMode
	// Owner is the user ID of the file's owner.
	Owner uint32
	// Own says the user this process runs as (its effective user ID)
	// owns the file: only such a file is changed.
	Own bool
	// Tightened says the file's mode is now Tight.
	Tightened bool
	// ChmodErr is why the change Tighten tried failed.
	ChmodErr error
}

// Loose says the file is a regular file group or others may access.
func (r Result) Loose() bool { return r.Regular && r.Mode&0o077 != 0 }

// Tight is Mode without group and other access.
func (r Result) Tight() fs.FileMode { return r.Mode &^ 0o077 }

// OthersMay says in words what mode's group and other bits let them do
// with a file, for a warning: "read", "change", "read or change", or,
// with neither read nor write bits, "execute". It reads no owner bits:
// call it for a mode with some group or other bit set (Result.Loose).
func OthersMay(mode fs.FileMode) string {
	read, change := mode&0o044 != 0, mode&0o022 != 0
	switch {
	case read && change:
		return "read or change"
	case read:
		return "read"
	case change:
		return "change"
	}
	return "execute"
}
