package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
				before := keyCount(t, m, email)
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
				if n := keyCount(t, m, email); n != before {
					t.Errorf("%d keys, want %d: the key of the file not written stayed", n, before)
				}
				if names := dirNames(t, dir); len(names) != 1 {
					t.Errorf("the directory holds %v, want only out.json", names)
				}
			})
		}
	}
}

// TestOutFileDirectoryMadeMeanwhile: a directory with something in it,
// made at --out once it was checked for, is not replaced by --force
// either. The error says so, not to pass the --force that was given.
func TestOutFileDirectoryMadeMeanwhile(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "dir-racer")
	for _, tt := range []struct {
		name string
		args func(out string) []string
		want string
	}{
		{"keys create", func(out string) []string {
			return []string{"keys", "create", email, "--out", out, "--force", "--credentials", m.AdminKeyFile}
		}, " is a directory (made while the key was created), which --force does not replace; name a new file"},
		{"export", func(out string) []string {
			return []string{"export", "--data-dir", m.Config.DataDir, "--out", out, "--force"}
		}, " is a directory (made while the store was read), which --force does not replace; name a new file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.json")
			defer func(f func(string)) { publishing = f }(publishing)
			publishing = func(path string) {
				if err := os.MkdirAll(filepath.Join(path, "inside"), 0o700); err != nil {
					t.Error(err)
				}
			}
			err := runCLIErr(t, tt.args(out)...)
			if err == nil || !strings.Contains(err.Error(), out+tt.want) || strings.Contains(err.Error(), "pass --force") {
				t.Fatalf("error %v, want one saying %q and not to pass --force", err, out+tt.want)
			}
		})
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

// TestKeysCreateOutNoNewFiles: an --out in a directory that exists but
// takes no new files (/proc) is refused saying so, before a key is
// created; it said "no such file or directory", of a file and directory
// that both exist: the temporary file written beside it could not be
// created.
func TestKeysCreateOutNoNewFiles(t *testing.T) {
	if _, err := os.Stat("/proc/version"); err != nil {
		t.Skip(err)
	}
	for _, force := range []bool{true, false} {
		err := checkWritable("/proc/version", force)
		if want := "cannot create /proc/version: the directory /proc exists but takes no new files"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("force %v: %v, want %q", force, err, want)
		}
	}
}

// TestWriteNewFileAtomicWithoutLinks: on a file system that refuses hard
// links (FAT, some network and FUSE ones), writeNewFileAtomic renames
// without replacing where the system can (Linux, macOS, Windows), and
// otherwise fails,
// saying why, rather than rename over a file made meanwhile.
func TestWriteNewFileAtomicWithoutLinks(t *testing.T) {
	defer func(l func(string, string) error, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
	linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
	t.Run("rename without replacing", func(t *testing.T) {
		switch runtime.GOOS {
		case "linux", "darwin", "windows":
		default:
			t.Skip("no rename that does not replace on " + runtime.GOOS)
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
		if b := mustReadFile(t, path); string(b) != "new\n" {
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
		// Only export and keys create have a --force to suggest.
		if err := writeOutFile(context.Background(), path, []byte("new\n"), false); err == nil || !strings.HasSuffix(err.Error(), "; write it elsewhere, or pass --force to replace any file there") {
			t.Errorf("writeOutFile: %v, want it to suggest --force", err)
		}
		if err := writeNewFile(path, writeBytes([]byte("new\n"))); err == nil || !strings.HasSuffix(err.Error(), "; write it elsewhere") {
			t.Errorf("writeNewFile: %v, want it to suggest writing elsewhere alone", err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("the directory holds %v, want nothing", names)
		}
	})
}

// TestWriteNewFileAtomicFullDisk: a link and a rename that fail for
// another reason than the file system's (a full disk, here) fail with
// that error, naming the file: not with one saying the file system
// refuses hard links, to be written elsewhere or with --force.
func TestWriteNewFileAtomicFullDisk(t *testing.T) {
	defer func(l func(string, string) error, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
	linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.ENOSPC} }
	renameNew = func(o, n string) error { return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.ENOSPC} }
	dir := t.TempDir()
	path := filepath.Join(dir, "new.json")
	err := writeOutFile(context.Background(), path, []byte("new\n"), false)
	if want := "create " + path + ": " + syscall.ENOSPC.Error(); err == nil || err.Error() != want || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%v, want %q", err, want)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("the directory holds %v, want nothing", names)
	}
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

// TestNewFileNeverPartial: recover-admin --key-file, audit prune --export
// and dpop keygen --out write into a temporary file and link it into
// place once it is complete and synced, as export --out does: while the
// file is written its name does not exist, so a crash or a full disk part
// way never leaves half a key file or half an export under it. A write
// that fails leaves neither the name nor the temporary file, and changes
// nothing else (no key stored, nothing pruned: the next prune writes the
// same events again). A file made at the name meanwhile is left as it is
// and the command refuses, as it refuses one there before. They created
// the name first and wrote into it.
func TestNewFileNeverPartial(t *testing.T) {
	m := startServer(t)
	dir := m.Config.DataDir
	setupAccount(t, m, "partial") // audit events to prune
	adminEmail := "admin@keyward." + m.Config.AccountDomain
	firstSeq := func(t *testing.T) int64 {
		t.Helper()
		var c struct {
			FirstSeq int64 `json:"first_seq"`
		}
		if err := json.Unmarshal([]byte(runCLI(t, "audit", "verify", "--data-dir", dir, "-o", "json")), &c); err != nil {
			t.Fatal(err)
		}
		return c.FirstSeq
	}
	for _, tt := range []struct {
		name   string
		args   func(out string) []string
		exists string // the refusal of a file that exists
		// unchanged checks that the failed command changed nothing but
		// the file; it is called before the command, and what it returns
		// after.
		unchanged func(t *testing.T) func(t *testing.T, out string)
	}{
		{"recover-admin --key-file", func(out string) []string {
			return []string{"recover-admin", "--data-dir", dir, "--issuer", m.Issuer, "--key-file", out}
		}, "already exists; name a new file", func(t *testing.T) func(*testing.T, string) {
			before := keyCount(t, m, adminEmail)
			return func(t *testing.T, _ string) {
				if n := keyCount(t, m, adminEmail); n != before {
					t.Errorf("the administrator account has %d keys, want %d: the key of the file not written was stored", n, before)
				}
			}
		}},
		{"audit prune --export", func(out string) []string {
			return []string{"audit", "prune", "--data-dir", dir, "--before", "0s", "--export", out, "--yes"}
		}, "already exists; name a new file (nothing was pruned)", func(t *testing.T) func(*testing.T, string) {
			before := firstSeq(t)
			return func(t *testing.T, _ string) {
				if first := firstSeq(t); first != before {
					t.Errorf("the log starts at event %d after the failed prune, want %d: events went", first, before)
				}
			}
		}},
		{"dpop keygen --out", func(out string) []string {
			return []string{"dpop", "keygen", "--out", out}
		}, "exists: keygen never overwrites a key", func(*testing.T) func(*testing.T, string) {
			return func(*testing.T, string) {}
		}},
	} {
		t.Run(tt.name+" write fails part way", func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "out")
			diskFull := errors.New("write: no space left on device")
			var during []string
			unhooked := writingFile
			defer func() { writingFile = unhooked }()
			writingFile = func(path string, w io.Writer) io.Writer {
				return &fullDisk{w: w, room: 16, fail: func() error {
					during = dirNames(t, outDir)
					return diskFull
				}}
			}
			after := tt.unchanged(t)
			err := runCLIErr(t, tt.args(out)...)
			if !errors.Is(err, diskFull) {
				t.Fatalf("%v, want the write error", err)
			}
			if during == nil {
				t.Fatal("the write did not fail part way")
			}
			if slices.Contains(during, "out") {
				t.Errorf("while it was written the directory held %v: the half-written file was at its name", during)
			}
			if names := dirNames(t, outDir); len(names) != 0 {
				t.Errorf("after the failed write the directory holds %v, want nothing", names)
			}
			after(t, out)
			if tt.name == "audit prune --export" {
				// The next prune is not in the way, and exports the
				// events from the first.
				want := firstSeq(t)
				writingFile = unhooked
				runCLI(t, tt.args(out)...)
				var first struct {
					Seq int64 `json:"seq"`
				}
				b := mustReadFile(t, out)
				line, _, _ := strings.Cut(string(b), "\n")
				if err := json.Unmarshal([]byte(line), &first); err != nil || first.Seq != want {
					t.Fatalf("the next export starts with %q (%v), want event %d", line, err, want)
				}
			}
		})
		t.Run(tt.name+" made meanwhile", func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "out")
			const theirs = "made meanwhile\n"
			defer func(f func(string)) { publishing = f }(publishing)
			publishing = func(path string) {
				if err := os.WriteFile(path, []byte(theirs), 0o600); err != nil {
					t.Error(err)
				}
			}
			after := tt.unchanged(t)
			err := runCLIErr(t, tt.args(out)...)
			if want := out + " " + tt.exists; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v, want an error saying %q", err, want)
			}
			if b, err := os.ReadFile(out); err != nil || string(b) != theirs {
				t.Errorf("the file made meanwhile holds %.40q (%v), want it left as it was", b, err)
			}
			if names := dirNames(t, outDir); len(names) != 1 {
				t.Errorf("the directory holds %v, want only out", names)
			}
			after(t, out)
		})
	}
}

// fullDisk writes up to room bytes to w, then fails with fail's
// error.
type fullDisk struct {
	w    io.Writer
	room int
	fail func() error
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) <= f.room {
		f.room -= len(p)
		return f.w.Write(p)
	}
	n, err := f.w.Write(p[:f.room])
	f.room -= n
	if err != nil {
		return n, err
	}
	return n, f.fail()
}

// TestWriteErrorsNamePath: a file written through a temporary file next
// to it (writeFileAtomic, writeNewFileAtomic, writeNewFile) fails naming
// the file the user gave, not the temporary one, which is gone by then:
// "write /backups/.audit.jsonl.2718281828: no space left on device" sent
// the user looking for a file that never was. Here the writes fail as the
// system fails them, on the temporary file itself (opened again read
// only), and the rename over a directory put at the name meanwhile.
func TestWriteErrorsNamePath(t *testing.T) {
	writers := []struct {
		name  string
		write func(path string) error
	}{
		{"writeFileAtomic", func(path string) error { return writeFileAtomic(path, []byte("data\n"), 0o600) }},
		{"writeNewFileAtomic", func(path string) error { return writeNewFileAtomic(path, []byte("data\n"), 0o600) }},
		{"writeNewFile", func(path string) error {
			return writeNewFile(path, func(w io.Writer) error { _, err := io.WriteString(w, "data\n"); return err })
		}},
	}
	for _, w := range writers {
		t.Run(w.name+" write", func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out")
			var tmp string
			defer func(f func(string, io.Writer) io.Writer) { writingFile = f }(writingFile)
			writingFile = func(_ string, _ io.Writer) io.Writer {
				names := dirNames(t, dir)
				if len(names) != 1 {
					t.Fatalf("the directory holds %v while the file is written, want the temporary file", names)
				}
				tmp = filepath.Join(dir, names[0])
				ro, err := os.Open(tmp)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ro.Close() })
				return ro // a write to it fails, naming it
			}
			err := w.write(path)
			if err == nil {
				t.Fatal("the write did not fail")
			}
			if strings.Contains(err.Error(), tmp) || !strings.Contains(err.Error(), path) {
				t.Errorf("%q: want it to name %s, not the temporary file %s", err, path, tmp)
			}
		})
	}
	t.Run("writeFileAtomic rename", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out")
		defer func(f func(string)) { publishing = f }(publishing)
		publishing = func(path string) {
			if err := os.MkdirAll(filepath.Join(path, "in"), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		err := writeFileAtomic(path, []byte("data\n"), 0o600)
		if err == nil {
			t.Fatal("the rename over a directory did not fail")
		}
		if strings.Contains(err.Error(), filepath.Join(dir, ".out.")) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: want it to name %s, not the temporary file", err, path)
		}
	})
}

// TestRecoverAdminKeyNotStored: recover-admin writes the key file, then
// stores its key; a store that fails then (here its context is canceled
// as the file is put in place, as an interrupt does) leaves no key file of a key that opens
// nothing, and the error says what became of the file: removed, or, if
// it is another file by then (even a copy of it), left as it is. It was
// removed silently, whatever it held, and then whenever it held the
// same.
func TestRecoverAdminKeyNotStored(t *testing.T) {
	m := startServer(t)
	for _, tt := range []struct {
		name          string
		replace, copy bool
		says          string
	}{
		{"removed", false, false, "the key was not stored, and its key file %s was removed again"},
		{"replaced meanwhile", true, false, "the key was not stored; %s holds another file now, and was left as it is"},
		{"replaced by a copy meanwhile", false, true, "the key was not stored; %s holds another file now, and was left as it is"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "admin.json")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			defer func(f func(string) error) { syncDir = f }(syncDir)
			sync := syncDir
			syncDir = func(dir string) error {
				err := sync(dir)
				if dir == filepath.Dir(out) {
					if tt.replace {
						mustWriteFile(t, out+".theirs", []byte("theirs\n"))
						if err := os.Rename(out+".theirs", out); err != nil {
							t.Error(err)
						}
					}
					if tt.copy {
						replaceWithCopy(t, out)
					}
					cancel() // the key is not stored
				}
				return err
			}
			err := runCLIErrContext(ctx, "recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", out)
			// Cancelled as an interrupt cancels it, said so.
			want := "recover-admin interrupted: " + fmt.Sprintf(tt.says, out)
			if err == nil || err.Error() != want {
				t.Fatalf("%v, want %q", err, want)
			}
			b, rerr := os.ReadFile(out)
			switch {
			case tt.replace:
				if string(b) != "theirs\n" {
					t.Errorf("%s holds %q (%v), want the file made meanwhile", out, b, rerr)
				}
			case tt.copy:
				if rerr != nil {
					t.Errorf("the copy made meanwhile was removed: %v", rerr)
				}
			case !errors.Is(rerr, fs.ErrNotExist):
				t.Errorf("the key file of a key not stored is left: %v", rerr)
			}
		})
	}
}

// replaceWithCopy puts a copy of the file path in its place, as another
// file: what another writer putting the same there would leave.
func replaceWithCopy(t *testing.T, path string) {
	t.Helper()
	mustWriteFile(t, path+".copy", mustReadFile(t, path))
	if err := os.Rename(path+".copy", path); err != nil {
		t.Fatal(err)
	}
}

// TestWriteNewFileUnsyncedRemoved: writeNewFile removes the file it put
// in place if its directory cannot be synced, and its error says so.
func TestWriteNewFileUnsyncedRemoved(t *testing.T) {
	defer func(f func(string) error) { syncDir = f }(syncDir)
	syncDir = func(string) error { return errors.New("input/output error") }
	path := filepath.Join(t.TempDir(), "new.pem")
	err := writeNewFile(path, writeBytes([]byte("new\n")))
	want := "sync the directory of " + path + ": input/output error; " + path + ", written but not made durable, was removed"
	if err == nil || err.Error() != want {
		t.Fatalf("%v, want %q", err, want)
	}
	if _, ok := errors.AsType[*dirSyncError](err); !ok {
		t.Errorf("%v is no *dirSyncError", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the unsynced file is left: %v", err)
	}
}

// TestWrittenFileKnownOnceInPlace: the file that recordWritten (master.key
// and admin-key.json of a first start) and writeNewFileAs (recover-admin's
// key file) report as written is still that file for removeWrittenFile
// once it is at path, its temporary name gone or given to another file,
// and is removed. On Windows the FileInfo was taken by the temporary
// name, which os.SameFile reads the file's identity by only when asked:
// that name named no file then, or another, and the file written was
// always left as another's.
func TestWrittenFileKnownOnceInPlace(t *testing.T) {
	writers := []struct {
		name  string
		write func(path string) (os.FileInfo, error)
	}{
		{"new file", func(path string) (fi os.FileInfo, err error) {
			return fi, writeTempThen(path, 0o600, writeBytes([]byte("k\n")), recordWritten(&fi, publishNew))
		}},
		{"renamed", func(path string) (fi os.FileInfo, err error) {
			return fi, writeTempThen(path, 0o600, writeBytes([]byte("k\n")), recordWritten(&fi, renameFile))
		}},
		{"writeNewFileAs", func(path string) (os.FileInfo, error) {
			return writeNewFileAs(path, writeBytes([]byte("k\n")))
		}},
	}
	for _, w := range writers {
		for _, reuse := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/temporary name reused=%v", w.name, reuse), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "admin-key.json")
				var tmp string
				defer func(f func(string)) { publishing = f }(publishing)
				publishing = func(string) {
					ents, _ := os.ReadDir(filepath.Dir(path))
					for _, e := range ents {
						tmp = filepath.Join(filepath.Dir(path), e.Name())
					}
				}
				defer func(f func(string) error) { syncDir = f }(syncDir)
				syncDir = func(string) error {
					// The file is in place: its temporary name is gone, or
					// another file has it.
					if _, err := os.Lstat(tmp); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("the temporary file %s: %v, want it gone", tmp, err)
					}
					if reuse {
						if err := os.WriteFile(tmp, []byte("other\n"), 0o600); err != nil {
							t.Fatal(err)
						}
					}
					return nil
				}
				written, err := w.write(path)
				if err != nil {
					t.Fatal(err)
				}
				if left, err := removeWrittenFile(path, written); err != nil || left != writtenRemoved {
					t.Errorf("removeWrittenFile = %v, %v; want the file written removed (%v)", left, err, writtenRemoved)
				}
			})
		}
	}
}

// TestCheckWritableProbe: checkWritable's second name for its temporary
// file, which tries the hard link (or rename that does not replace) that
// writeOutFile will use, refuses no --out that writeOutFile writes, and
// removes no file but its own. It was the temporary file's name with
// .new: over the 255-byte limit for an --out of some 240 bytes that
// could be written ("file name too long"), and a file at that name,
// made meanwhile, was removed.
func TestCheckWritableProbe(t *testing.T) {
	for _, tt := range []struct {
		name string
		base string // --out's name in its directory
		made bool   // a file is made at the probe's name as it is linked
	}{
		// "." + 243 bytes + "." + 10 digits is 255; the probe's ".new"
		// made it 259 (with 7 or more random digits, nearly always).
		{"long name", strings.Repeat("k", 238) + ".json", false},
		{"file made at the probe's name", "key.json", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, tt.base)
			var theirs string
			link := linkFile
			defer func() { linkFile = link }()
			if tt.made {
				linkFile = func(o, n string) error {
					theirs = n
					mustWriteFile(t, n, []byte("theirs\n"))
					return link(o, n)
				}
			}
			err := checkWritable(out, false)
			linkFile = link
			if err != nil {
				t.Fatalf("checkWritable(%s): %v", tt.base, err)
			}
			if tt.made {
				if b, err := os.ReadFile(theirs); string(b) != "theirs\n" {
					t.Errorf("the file made at %s holds %q (%v), want it left", theirs, b, err)
				}
				os.Remove(theirs)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("the directory holds %v, want nothing", names)
			}
			if err := writeOutFile(context.Background(), out, []byte("k\n"), false); err != nil {
				t.Fatalf("writeOutFile(%s): %v", tt.base, err)
			}
		})
	}
}
