//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMasterKeyRotateSymlink: a generated <data-dir>/master.key that is a
// symbolic link (to a secret mount, say) is refused by master-key rotate
// before anything changes, naming the file the link points to and the
// rotation to run on it instead. The new key was renamed over the link,
// leaving a plain master.key in the data directory and the old key in the
// link's target, and the old key was kept by reading through the link.
func TestMasterKeyRotateSymlink(t *testing.T) {
	t.Setenv("KEYWARD_MASTER_KEY", "")
	t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	link := filepath.Join(dir, "master.key")
	secrets := t.TempDir()
	target := filepath.Join(secrets, "master.key")
	if err := os.Rename(link, target); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	old := mustReadFile(t, target)
	resolved, err := filepath.EvalSymlinks(target)
	if err != nil {
		t.Fatal(err)
	}
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))

	err = runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	for _, want := range []string{
		link + " is a symbolic link to " + resolved,
		"nothing was changed",
		"--master-key-file " + resolved + " --new-master-key-file " + newKeyFile,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rotate: %v, want an error saying %q", err, want)
		}
	}
	if got, err := os.Readlink(link); err != nil || got != target {
		t.Errorf("%s links to %q (%v), want it left linking to %s", link, got, err, target)
	}
	if got := mustReadFile(t, target); !bytes.Equal(got, old) {
		t.Errorf("%s holds %q, want the old key %q", target, got, old)
	}
	for _, d := range []string{dir, secrets} {
		for _, n := range dirNames(t, d) {
			if strings.HasPrefix(n, "master.key.old-") || strings.HasPrefix(n, ".master.key.") {
				t.Errorf("%s left in %s", n, d)
			}
		}
	}

	// What it says to do: rotate the file the link names, then point the
	// link at the new key's file. A server on the data directory starts.
	out := runCLI(t, "master-key", "rotate", "--data-dir", dir, "--master-key-file", resolved, "--new-master-key-file", newKeyFile)
	if !strings.Contains(out, "re-encrypted") {
		t.Fatalf("rotate with --master-key-file: %q", out)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(newKeyFile, link); err != nil {
		t.Fatal(err)
	}
	m, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	defer stop()
	getJSON(t, m.URL()+"/.well-known/jwks.json", new(any))
}
