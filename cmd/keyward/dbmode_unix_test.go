//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A command that opens an SQLite database other local users can read
// tightens it and says so on its standard error.
func TestCommandTightensDatabaseMode(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		var stderr strings.Builder
		cmd := newRootCommand()
		cmd.SetArgs(args)
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(&stderr)
		if err := execute(context.Background(), cmd); err != nil {
			t.Fatalf("keyward %s: %v", strings.Join(args, " "), err)
		}
		return stderr.String()
	}
	run("migrate", "--data-dir", dir)
	db := filepath.Join(dir, "keyward.db")
	if err := os.Chmod(db, 0o644); err != nil { // as a release before 0600 left it
		t.Fatal(err)
	}
	stderr := run("migrate", "--data-dir", dir)
	if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "its mode was tightened") || !strings.Contains(stderr, db) {
		t.Errorf("keyward migrate said %q on standard error, want a warning that the mode of %s was tightened", stderr, db)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("after keyward migrate: %v (%v), want mode 0600", fi.Mode(), err)
	}
}
