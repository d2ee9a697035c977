//go:build !linux && !darwin && !windows

package main

import "errors"

// renameNoReplace is not available here: the BSDs, illumos and the
// rest have no rename that refuses to replace newpath (Linux has
// renameat2, macOS renamex_np and Windows MoveFileEx).
func renameNoReplace(oldpath, newpath string) error {
	return errors.ErrUnsupported
}
