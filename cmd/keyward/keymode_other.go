//go:build !unix

package main

import "log/slog"

// checkMasterKeyMode does nothing here: Windows has no Unix file modes.
func checkMasterKeyMode(string, bool, *slog.Logger) {}
