//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveAbandonedRunDirs: of the bench data directories, the sweep
// removes the one whose lock nobody holds (its run was killed), and leaves
// the one in use and the one without a lock file.
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

	removeAbandonedRunDirs(filepath.Join(root, "run-*"))
	for dir, want := range map[string]bool{live: true, killed: false, unmarked: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
}
