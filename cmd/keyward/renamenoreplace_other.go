//go:build !linux

package main

import "errors"

// renameNoReplace is not available here: there is no portable rename
// that refuses to replace newpath.
func renameNoReplace(oldpath, newpath string) error {
	return errors.ErrUnsupported
}
