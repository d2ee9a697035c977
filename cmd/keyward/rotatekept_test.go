package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMasterKeyRotateNothingChangedKeepsNoCopy: a rotation of the generated
// master.key that fails with "nothing was changed" (interrupted before the
// store committed, or the new key not to be written in place of
// master.key) leaves no master.key.old-<UTC time> in the data directory:
// the copy of the current key it wrote first is removed again. It was
// left, one more each time the rotation was tried again, though the
// rotation said nothing was changed.
func TestMasterKeyRotateNothingChangedKeepsNoCopy(t *testing.T) {
	newKey := strings.Repeat("a5", 32) + "\n"
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, dir, path, newKeyFile string) error
		want string
	}{
		{"interrupted before the commit", func(t *testing.T, dir, _, newKeyFile string) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			defer func(f func()) { rotateLocked = f }(rotateLocked)
			rotateLocked = cancel
			return runCLIErrContext(ctx, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
		}, "master-key rotate interrupted: nothing was changed"},
		{"master.key not writable", func(t *testing.T, dir, path, newKeyFile string) error {
			defer func(w func(string, io.Writer) io.Writer) { writingFile = w }(writingFile)
			writingFile = func(p string, w io.Writer) io.Writer {
				if p == path {
					return failingWriter{syscall.EROFS}
				}
				return w
			}
			return runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
		}, "nothing was changed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
			stop()
			path := filepath.Join(dir, "master.key")
			newKeyFile := filepath.Join(t.TempDir(), "new.key")
			mustWriteFile(t, newKeyFile, []byte(newKey))
			err := tt.run(t, dir, path, newKeyFile)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("rotate: %v, want %q", err, tt.want)
			}
			if names := dirNames(t, dir); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "master.key.old-") }) {
				t.Errorf("rotate said nothing was changed, and left %v in the data directory", names)
			}
		})
	}
}

// TestMasterKeyRotateKeptNamesTaken: a rotation of the generated
// master.key that finds master.key.old-<UTC time> and every suffixed name
// it may take (-2 … -maxKeptSuffix) already there fails, nothing changed,
// and writes over none of them. It broke out of its search on a taken
// name and renamed the old key over that earlier rotation's kept key.
func TestMasterKeyRotateKeptNamesTaken(t *testing.T) {
	defer func(n int) { maxKeptSuffix = n }(maxKeptSuffix)
	maxKeptSuffix = 3
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	path := filepath.Join(dir, "master.key")
	current := mustReadFile(t, path)
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
	// Every name of this second and the next, so that a rotation
	// crossing into the next second finds them all taken too.
	earlier := []byte("an earlier rotation's old key\n")
	var taken []string
	now := time.Now()
	for d := range 2 {
		stamp := path + ".old-" + now.Add(time.Duration(d)*time.Second).UTC().Format("20060102T150405Z")
		taken = append(taken, stamp)
		for i := 2; i <= maxKeptSuffix; i++ {
			taken = append(taken, fmt.Sprintf("%s-%d", stamp, i))
		}
	}
	for _, name := range taken {
		mustWriteFile(t, name, earlier)
	}
	err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	for _, want := range []string{"and 2 names like it are taken", "nothing was changed", "move the kept keys elsewhere"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("rotate: %v, want it to say %q", err, want)
		}
	}
	for _, name := range taken {
		if got := mustReadFile(t, name); !bytes.Equal(got, earlier) {
			t.Errorf("%s = %q, want the earlier rotation's key kept", name, got)
		}
	}
	if got := mustReadFile(t, path); !bytes.Equal(got, current) {
		t.Errorf("master.key = %q, want it unchanged %q", got, current)
	}
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, "master.key.old-") && !slices.Contains(taken, filepath.Join(dir, n)) {
			t.Errorf("rotate left %s in the data directory", n)
		}
	}
}
