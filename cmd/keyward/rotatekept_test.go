package main

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
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
