//go:build unix

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSyncDirectoryUnsupported: a file system that cannot sync a
// directory answers fsync EINVAL (a Windows drive or a Samba share under
// WSL, CIFS before Linux 4.17). Since writeFileAtomic fails when the
// directory is not synced, `keys create --out`, `export --out` and a first
// start's master key then failed there every time (and keys create deleted
// the key it had just written); nothing more durable can be done there, so
// EINVAL is no error. Other errors still are.
func TestSyncDirectoryUnsupported(t *testing.T) {
	for _, tt := range []struct {
		name    string
		syncErr error
		wantErr string
	}{
		{"synced", nil, ""},
		{"not supported by the file system", &os.PathError{Op: "sync", Path: "d", Err: syscall.EINVAL}, ""},
		{"I/O error", &os.PathError{Op: "sync", Path: "d", Err: syscall.EIO}, "input/output error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func(f func(*os.File) error) { syncFile = f }(syncFile)
			syncFile = func(*os.File) error { return tt.syncErr }
			path := filepath.Join(t.TempDir(), "key.json")
			err := writeFileAtomic(path, []byte("{}\n"), 0o600)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("writeFileAtomic = %v, want error %q", err, tt.wantErr)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != "{}\n" {
				t.Errorf("the file holds %q (%v)", b, err)
			}
			err = syncDirectory(filepath.Dir(path))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && !errors.Is(err, tt.syncErr) {
				t.Errorf("syncDirectory = %v", err)
			}
		})
	}
}
