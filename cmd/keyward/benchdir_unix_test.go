//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveAbandonedRunDirs: of the bench data directories, the sweep
// removes the one whose lock nobody holds (its run was killed), and leaves
// the one in use, the one without a lock file and what a link points to.
func TestRemoveAbandonedRunDirs(t *testing.T) {
	root := t.TempDir()
	mk := func(name string) string {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	live, killed, unmarked := mk("run-live"), mk("run-killed"), mk("run-unmarked")
	release, err := markRunDir(live)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	releaseKilled, err := markRunDir(killed)
	if err != nil {
		t.Fatal(err)
	}
	releaseKilled() // as the kernel does for a killed process

	// A symbolic link to a killed run's directory is not followed.
	linked := mk("elsewhere")
	releaseLinked, err := markRunDir(linked)
	if err != nil {
		t.Fatal(err)
	}
	releaseLinked()
	if err := os.WriteFile(filepath.Join(linked, "keyward.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(linked, filepath.Join(root, "run-link")); err != nil {
		t.Fatal(err)
	}

	removeAbandonedRunDirs(filepath.Join(root, "run-*"))
	for dir, want := range map[string]bool{live: true, killed: false, unmarked: true, filepath.Join(linked, "keyward.db"): true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
}
