package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestOutFileMadeMeanwhile: `keys create --out` and `export --out`
// without --force check that the file does not exist, and write it once
// they have the key or the export. A file made at that name in between
// (here by the publishing hook, just before the file is put in place) is
// left as it is and the command fails; the key created for it is deleted
// again. A rename put the new file over it. With --force it is replaced.
func TestOutFileMadeMeanwhile(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "racer")
	admin := []string{"--credentials", m.AdminKeyFile}
	keyCount := func() int {
		var resp struct {
			Keys []json.RawMessage `json:"keys"`
		}
		json.Unmarshal([]byte(runCLI(t, append([]string{"keys", "list", email, "-o", "json"}, admin...)...)), &resp)
		return len(resp.Keys)
	}
	const theirs = "made meanwhile\n"
	for _, tt := range []struct {
		name string
		args func(out string) []string
		want string
	}{
		{"keys create", func(out string) []string {
			return append([]string{"keys", "create", email, "--out", out}, admin...)
		}, "already exists (made while the key was created); name a new file, or pass --force to overwrite it"},
		{"export", func(out string) []string {
			return []string{"export", "--data-dir", m.Config.DataDir, "--out", out}
		}, "already exists (made while the store was read)"},
	} {
		for _, force := range []bool{false, true} {
			name := tt.name
			if force {
				name += " --force"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				out := filepath.Join(dir, "out.json")
				defer func(f func(string)) { publishing = f }(publishing)
				publishing = func(path string) {
					if err := os.WriteFile(path, []byte(theirs), 0o600); err != nil {
						t.Error(err)
					}
				}
				before := keyCount()
				args := tt.args(out)
				if force {
					args = append(args, "--force")
				}
				err := runCLIErr(t, args...)
				b, rerr := os.ReadFile(out)
				if rerr != nil {
					t.Fatal(rerr)
				}
				if force {
					if err != nil || string(b) == theirs {
						t.Fatalf("with --force: %v, and the file holds %q; want it replaced", err, b)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %v, want one saying %q", err, tt.want)
				}
				if string(b) != theirs {
					t.Errorf("the file made meanwhile was replaced: it holds %.40q…", b)
				}
				if n := keyCount(); n != before {
					t.Errorf("%d keys, want %d: the key of the file not written stayed", n, before)
				}
				if names := dirNames(t, dir); len(names) != 1 {
					t.Errorf("the directory holds %v, want only out.json", names)
				}
			})
		}
	}
}

// TestKeysCreateOutDanglingLink: a symbolic link at --out whose target
// does not exist is in the way, as the link cannot be made there: it is
// refused before a key is created. It passed the check (os.Stat), and the
// key was created, then deleted again for a file "made while the key was
// created".
func TestKeysCreateOutDanglingLink(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "linked")
	dir := t.TempDir()
	out := filepath.Join(dir, "key.json")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), out); err != nil {
		t.Skip(err)
	}
	var created bool
	defer func(f func(string)) { publishing = f }(publishing)
	publishing = func(string) { created = true }
	err := runCLIErr(t, "keys", "create", email, "--out", out, "--credentials", m.AdminKeyFile)
	if want := out + " exists; pass --force to overwrite it"; err == nil || err.Error() != want || created {
		t.Fatalf("error %v (a key created: %v), want %q before a key is created", err, created, want)
	}
}

// TestWriteNewFileAtomicWithoutLinks: on a file system that refuses hard
// links (FAT, some network and FUSE ones), writeNewFileAtomic renames
// without replacing where the system can (Linux), and otherwise fails,
// saying why, rather than rename over a file made meanwhile.
func TestWriteNewFileAtomicWithoutLinks(t *testing.T) {
	defer func(l func(string, string) error, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
	linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
	t.Run("rename without replacing", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("renameat2 is Linux's")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "new.json")
		if err := writeNewFileAtomic(path, []byte("new\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "new\n" {
			t.Fatalf("%s holds %q (%v)", path, b, err)
		}
		err := writeNewFileAtomic(path, []byte("again\n"), 0o600)
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("over an existing file: %v, want fs.ErrExist", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "new\n" {
			t.Fatalf("the existing file was replaced: %q", b)
		}
		if names := dirNames(t, dir); len(names) != 1 {
			t.Errorf("the directory holds %v, want only new.json", names)
		}
	})
	t.Run("neither", func(t *testing.T) {
		renameNew = func(o, n string) error { return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.EINVAL} }
		dir := t.TempDir()
		path := filepath.Join(dir, "new.json")
		err := writeNewFileAtomic(path, []byte("new\n"), 0o600)
		want := "cannot create " + path + " without the risk of replacing a file made there meanwhile: its file system refuses both a hard link (operation not permitted) and a rename that does not replace (invalid argument)"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v, want an error saying %q", err, want)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("the directory holds %v, want nothing", names)
		}
	})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
