//go:build unix

package filemode_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/keyward/keyward/internal/filemode"
)

// Tighten takes group and other access away from a regular file this
// process's user owns, and only from such a file, and only through a
// symbolic link when told to follow one; it reports what it found.
func TestTighten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  os.FileMode // the file's mode before
		kind  string      // "file" (default), "link" to a file, "fifo", "dir", "missing"
		owner int         // chown the file to this user first (as root); 0: keep
		opts  filemode.Options
		want  os.FileMode // the file's mode after
		loose bool        // Result.Loose
		tight bool        // Result.Tightened
		err   error       // errors.Is the error Tighten returns
	}{
		{name: "0644", mode: 0o644, want: 0o600, loose: true, tight: true},
		{name: "group read-write", mode: 0o660, want: 0o600, loose: true, tight: true},
		{name: "others only", mode: 0o604, want: 0o600, loose: true, tight: true},
		{name: "owner execute kept", mode: 0o755, want: 0o700, loose: true, tight: true},
		{name: "the owner's alone", mode: 0o600, want: 0o600},
		{name: "check only", mode: 0o644, opts: filemode.Options{CheckOnly: true}, want: 0o644, loose: true},
		{name: "another user's", mode: 0o644, owner: 65534, want: 0o644, loose: true},
		{name: "link not followed", mode: 0o644, kind: "link", want: 0o644, err: syscall.ELOOP},
		{name: "link followed", mode: 0o644, kind: "link", opts: filemode.Options{FollowLinks: true}, want: 0o600, loose: true, tight: true},
		{name: "link followed, check only", mode: 0o644, kind: "link", opts: filemode.Options{FollowLinks: true, CheckOnly: true}, want: 0o644, loose: true},
		{name: "fifo without a writer", mode: 0o644, kind: "fifo", want: 0o644},
		{name: "directory", mode: 0o755, kind: "dir", want: 0o755},
		{name: "missing", kind: "missing", err: fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner != 0 && os.Geteuid() != 0 {
				t.Skip("giving a file to another user needs root")
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "secret")
			path := file
			var err error
			switch tc.kind {
			case "", "link":
				err = os.WriteFile(file, []byte("x"), 0o600)
			case "fifo":
				err = syscall.Mkfifo(file, 0o600)
			case "dir":
				err = os.Mkdir(file, 0o700)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.kind == "link" {
				path = filepath.Join(dir, "link")
				if err := os.Symlink(file, path); err != nil {
					t.Fatal(err)
				}
			}
			if tc.kind != "missing" {
				if err := os.Chmod(file, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			if tc.owner != 0 {
				if err := os.Chown(file, tc.owner, tc.owner); err != nil {
					t.Fatal(err)
				}
			}

			r, err := filemode.Tighten(path, tc.opts)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Tighten: %v, want %v", err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("Tighten: %v", err)
			}
			if r.Loose() != tc.loose || r.Tightened != tc.tight || r.ChmodErr != nil {
				t.Errorf("Tighten: %+v (Loose %t), want Loose %t, Tightened %t, no ChmodErr", r, r.Loose(), tc.loose, tc.tight)
			}
			if tc.err == nil {
				if r.Mode != tc.mode {
					t.Errorf("Result.Mode %#o, want the mode found, %#o", r.Mode, tc.mode)
				}
				if want := tc.owner == 0; r.Own != want {
					t.Errorf("Result.Own %t, want %t", r.Own, want)
				}
				if tc.owner != 0 && r.Owner != uint32(tc.owner) {
					t.Errorf("Result.Owner %d, want %d", r.Owner, tc.owner)
				}
			}
			if tc.kind == "missing" {
				return
			}
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tc.want {
				t.Errorf("mode after: %#o, want %#o", got, tc.want)
			}
		})
	}
}
