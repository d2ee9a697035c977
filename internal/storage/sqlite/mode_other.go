//go:build !unix

package sqlite

import "log/slog"

// tightenModes does nothing here: Windows has no Unix file modes, and its
// files inherit the access control list of their directory.
func tightenModes(string, *slog.Logger) {}
