//go:build !unix

package filemode

// Tighten does nothing here and reports nothing to do: Windows has no
// Unix file modes, and its files inherit the access control list of their
// directory.
func Tighten(string, Options) (Result, error) { return Result{}, nil }
