package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
)

// TestRecoverAdminInterrupted: recover-admin interrupted (its context
// cancelled, as SIGINT and SIGTERM do) says so and what became of the key,
// without the store's error chain; it said "create the administrator key:
// postgres: prepare auditHead: context canceled; the key was not stored,
// …".
func TestRecoverAdminInterrupted(t *testing.T) {
	m := startServer(t)
	t.Run("before anything", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		key := filepath.Join(t.TempDir(), "admin-key.json")
		err := runCLIErrContext(ctx, "recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", key)
		if want := "recover-admin interrupted: nothing was changed"; err == nil || err.Error() != want {
			t.Fatalf("recover-admin interrupted: %v, want %q", err, want)
		}
	})
	t.Run("key file written", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		key := filepath.Join(t.TempDir(), "admin-key.json")
		defer func(w func(string, io.Writer) io.Writer) { writingFile = w }(writingFile)
		writingFile = func(p string, w io.Writer) io.Writer {
			if p == key {
				cancel() // as the key file is written, before the key is stored
			}
			return w
		}
		err := runCLIErrContext(ctx, "recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", key)
		if want := "recover-admin interrupted: the key was not stored, and its key file " + key + " was removed again"; err == nil || err.Error() != want {
			t.Fatalf("recover-admin interrupted: %v, want %q", err, want)
		}
		if names := dirNames(t, filepath.Dir(key)); len(names) != 0 {
			t.Errorf("the interrupted recover-admin left %v, want nothing", names)
		}
	})
}
