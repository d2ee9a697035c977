package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// failRemoveIn makes removeFile fail (EIO) for every name in dir that
// begins with prefix, until the test ends.
func failRemoveIn(t *testing.T, dir, prefix string) {
	t.Helper()
	r := removeFile
	t.Cleanup(func() { removeFile = r })
	removeFile = func(name string) error {
		if filepath.Dir(name) == dir && strings.HasPrefix(filepath.Base(name), prefix) {
			return &fs.PathError{Op: "remove", Path: name, Err: syscall.EIO}
		}
		return r(name)
	}
}

// leftTemp is the one name in dir besides the files named, the
// temporary file a write left there.
func leftTemp(t *testing.T, dir string, files ...string) string {
	t.Helper()
	var left []string
	for _, n := range dirNames(t, dir) {
		if !slices.Contains(files, n) {
			left = append(left, n)
		}
	}
	if len(left) != 1 {
		t.Fatalf("the directory holds %v, want %v and one temporary file", dirNames(t, dir), files)
	}
	return filepath.Join(dir, left[0])
}

// tempLeftNote is the note of the temporary file tmp left by a write
// that succeeded.
func tempLeftNote(tmp string) string {
	return "its temporary file " + tmp + ", a second name of it, is left, which could not be removed (input/output error): remove it"
}

// TestWriteNewTempLeft: a new file linked into place whose temporary
// name cannot be removed is written: the write reports no failure
// (writtenTempLeft), the file holds the data, and the note names the
// temporary file, a second name of it, to remove. publishNew ignored
// that failure, and the second name, mode 0600, stayed unsaid.
func TestWriteNewTempLeft(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(path string, data []byte) error
	}{
		{"writeNewFileAtomic", func(path string, data []byte) error { return writeNewFileAtomic(path, data, 0o600) }},
		{"writeNewFile", func(path string, data []byte) error { return writeNewFile(path, writeBytes(data)) }},
		{"writeOutFile", func(path string, data []byte) error {
			return writeOutFile(context.Background(), path, data, false)
		}},
		{"publishNew", func(path string, data []byte) error {
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			return publishNew(tmp, path)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key.json")
			failRemoveIn(t, dir, ".key.json.")
			if tt.name == "publishNew" {
				failRemoveIn(t, dir, "key.json.tmp")
			}
			err := tt.write(path, []byte("secret\n"))
			failure, left := writtenTempLeft(err)
			if failure != nil {
				t.Fatalf("write: %v, want it written", err)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != "secret\n" {
				t.Fatalf("%s holds %q (%v), want the data", path, b, err)
			}
			tmp := leftTemp(t, dir, "key.json")
			if want := tempLeftNote(tmp); left != want {
				t.Errorf("note %q, want %q", left, want)
			}
			if err == nil || !strings.Contains(err.Error(), tmp) {
				t.Errorf("error %v, want it to name %s", err, tmp)
			}
		})
	}
}

// TestCommandsTempLeft: a command's output file written whose temporary
// file cannot be removed is no failure: the command succeeds, the file
// holds what it wrote, and a warning on standard error names the
// temporary file to remove. keys create --out keeps its key (it was
// deleted when that was an error, while --out held its private key).
func TestCommandsTempLeft(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "leftover")
	admin := []string{"--credentials", m.AdminKeyFile}
	for _, tt := range []struct {
		name string
		args func(out string) []string
		// check checks what the command did beside the file, called
		// before it and what it returns after.
		check func(t *testing.T) func(t *testing.T, out string)
	}{
		{"keys create --out", func(out string) []string {
			return append([]string{"keys", "create", email, "--out", out}, admin...)
		}, func(t *testing.T) func(*testing.T, string) {
			before := keyCount(t, m, email)
			return func(t *testing.T, _ string) {
				if n := keyCount(t, m, email); n != before+1 {
					t.Errorf("%d keys after keys create, want %d: the key written to --out was deleted", n, before+1)
				}
			}
		}},
		{"export --out", func(out string) []string {
			return []string{"export", "--data-dir", m.Config.DataDir, "--out", out}
		}, nil},
		{"dpop keygen --out", func(out string) []string {
			return []string{"dpop", "keygen", "--out", out}
		}, nil},
		{"recover-admin --key-file", func(out string) []string {
			return []string{"recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", out}
		}, func(t *testing.T) func(*testing.T, string) {
			return func(t *testing.T, out string) {
				// Stored, since the command succeeded; and not removed.
				if b, err := os.ReadFile(out); err != nil || keyFileOf(b) == "" {
					t.Errorf("%s holds %q (%v), want a key file", out, b, err)
				}
			}
		}},
		{"audit prune --export", func(out string) []string {
			return []string{"audit", "prune", "--data-dir", m.Config.DataDir, "--before", "0s", "--export", out, "--yes"}
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			after := func(*testing.T, string) {}
			if tt.check != nil {
				after = tt.check(t)
			}
			failRemoveIn(t, dir, ".out.")
			cmd := newRootCommand()
			cmd.SetArgs(tt.args(out))
			var stderr bytes.Buffer
			cmd.SetOut(io.Discard)
			cmd.SetErr(&stderr)
			if err := execute(context.Background(), cmd); err != nil {
				t.Fatalf("%v (stderr %q), want the file written", err, stderr.String())
			}
			if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
				t.Fatalf("%s: %v, want the file written", out, err)
			}
			tmp := leftTemp(t, dir, "out")
			if want := "warning: " + out + " was written, but " + tempLeftNote(tmp) + "\n"; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
			after(t, out)
		})
	}
}

// TestFirstStartTempLeft: a first start whose master.key and
// admin-key.json are written, but whose temporary files cannot be
// removed, starts, and logs a warning naming each to remove.
func TestFirstStartTempLeft(t *testing.T) {
	dir := t.TempDir()
	failRemoveIn(t, dir, ".master.key.")
	failRemoveIn(t, dir, ".admin-key.json.")
	var logs bytes.Buffer
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	err := m.Open(context.Background())
	m.Close()
	if err != nil {
		t.Fatalf("start: %v, want it started", err)
	}
	for _, f := range []string{"master.key", "admin-key.json"} {
		path := filepath.Join(dir, f)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var tmp string
		for _, n := range dirNames(t, dir) {
			if strings.HasPrefix(n, "."+f+".") {
				tmp = filepath.Join(dir, n)
			}
		}
		if tmp == "" {
			t.Fatalf("no temporary file of %s left in %v: the test's removeFile did not keep it", f, dirNames(t, dir))
		}
		if want := path + " was written, but " + tempLeftNote(tmp); !strings.Contains(logs.String(), want) {
			t.Errorf("logs %s\nwant a warning %q", logs.String(), want)
		}
	}
}

// TestKeepAsideTempLeft: an administrator key file kept under another
// name (keepAside) whose name aside cannot be removed is kept all the
// same, and a warning says so and names both. It said that the kept file
// "was written, but its temporary file" was left, as of a file written
// anew.
func TestKeepAsideTempLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-key.json")
	aside := filepath.Join(dir, ".admin-key.json.prev.1")
	kf := `{"client_id":"other@keyward.example","private_key_id":"k1"}` + "\n"
	if err := os.WriteFile(aside, []byte(kf), 0o600); err != nil {
		t.Fatal(err)
	}
	failRemoveIn(t, dir, ".admin-key.json.prev.")
	var logs bytes.Buffer
	keepAside(path, aside, "", slog.New(slog.NewTextHandler(&logs, nil)))
	var kept string
	for _, n := range dirNames(t, dir) {
		if strings.HasSuffix(n, ".old") {
			kept = filepath.Join(dir, n)
		}
	}
	if b, err := os.ReadFile(kept); kept == "" || err != nil || string(b) != kf {
		t.Fatalf("the directory holds %v, want the key file kept as admin-key.json.<time>.old", dirNames(t, dir))
	}
	got := logs.String()
	if !strings.Contains(got, "kept under another name is there, but the name it was moved aside to") || !strings.Contains(got, "aside="+aside) ||
		!strings.Contains(got, "input/output error") {
		t.Errorf("logs %s\nwant a warning that the file was kept, naming %s to remove", got, aside)
	}
	if !strings.Contains(got, "key_file="+kept) {
		t.Errorf("logs %s\nwant the key file named kept under %s", got, kept)
	}
	if strings.Contains(got, "was written") {
		t.Errorf("logs %s\nwant no word of a file written", got)
	}
}

// TestRestoreAsideTempLeft: an administrator key file put back
// (restoreAside) whose name aside cannot be removed is put back all the
// same, and the warning says so and names the file aside to remove. It
// said that admin-key.json "was written, but its temporary file" was
// left, as of a file written anew.
func TestRestoreAsideTempLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-key.json")
	aside := filepath.Join(dir, ".admin-key.json.prev.1")
	kf := `{"client_id":"other@keyward.example","private_key_id":"k1"}` + "\n"
	if err := os.WriteFile(aside, []byte(kf), 0o600); err != nil {
		t.Fatal(err)
	}
	failRemoveIn(t, dir, ".admin-key.json.prev.")
	var logs bytes.Buffer
	restoreAside(path, aside, slog.New(slog.NewTextHandler(&logs, nil)))
	if b, err := os.ReadFile(path); err != nil || string(b) != kf {
		t.Fatalf("%s holds %q (%v), want the file put back", path, b, err)
	}
	got := logs.String()
	if !strings.Contains(got, "was put back, but the name it was moved aside to") || !strings.Contains(got, "aside="+aside) ||
		!strings.Contains(got, "input/output error") {
		t.Errorf("logs %s\nwant a warning that the file was put back, naming %s to remove", got, aside)
	}
	if strings.Contains(got, "was written") || strings.Contains(got, "could not be put back") {
		t.Errorf("logs %s\nwant no word of a file written, or not put back", got)
	}
}

// TestKeepAsideSyncsDir: an administrator key file kept under another
// name (keepAside) has its directory synced, so that a crash does not
// lose the new name, and a sync that fails is logged. keepAside synced
// nothing.
func TestKeepAsideSyncsDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin-key.json")
	aside := filepath.Join(dir, ".admin-key.json.prev.1")
	if err := os.WriteFile(aside, []byte(`{"client_id":"other@keyward.example","private_key_id":"k1"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var synced []string
	defer func(f func(string) error) { syncDir = f }(syncDir)
	syncDir = func(d string) error {
		synced = append(synced, d)
		return errors.New("input/output error")
	}
	var logs bytes.Buffer
	keepAside(path, aside, "", slog.New(slog.NewTextHandler(&logs, nil)))
	if !slices.Equal(synced, []string{dir}) {
		t.Errorf("synced %q, want %q", synced, dir)
	}
	if got := logs.String(); !strings.Contains(got, "could not be synced") || !strings.Contains(got, "input/output error") {
		t.Errorf("logs %s\nwant the failed sync", got)
	}
}

// TestRenamedTempNotLeft: a file renamed into place leaves no temporary
// name, whatever a removal of that name, gone, says (unlink(2) on a file
// system remounted read-only says EROFS before it looks for the name):
// the write succeeded, with no note of a second name, and master-key
// rotate says it replaced master.key. The removal's error made a
// *tempLeftError of no error of it: writeFileAtomic failed, export
// --force warned of a file that was not there, and rotate said
// master.key still held the old key, which it had replaced.
func TestRenamedTempNotLeft(t *testing.T) {
	for _, tt := range []struct {
		name  string
		write func(path string) error
	}{
		{"writeFileAtomic", func(path string) error { return writeFileAtomic(path, []byte("new\n"), 0o600) }},
		{"writeOutFile --force", func(path string) error {
			return writeOutFile(context.Background(), path, []byte("new\n"), true)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key.json")
			mustWriteFile(t, path, []byte("old\n"))
			failRemoveIn(t, dir, ".key.json.")
			if err := tt.write(path); err != nil {
				t.Fatalf("write: %v, want it written", err)
			}
			if b := mustReadFile(t, path); string(b) != "new\n" {
				t.Errorf("%s holds %q, want %q", path, b, "new\n")
			}
			if names := dirNames(t, dir); len(names) != 1 {
				t.Errorf("the directory holds %v, want key.json alone", names)
			}
		})
	}
	t.Run("master-key rotate", func(t *testing.T) {
		dir := t.TempDir()
		_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
		stop()
		newKeyFile := filepath.Join(t.TempDir(), "new.key")
		newKey := strings.Repeat("a5", 32) + "\n"
		mustWriteFile(t, newKeyFile, []byte(newKey))
		failRemoveIn(t, dir, ".master.key.")
		path := filepath.Join(dir, "master.key")
		out := runCLI(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
		if want := "replaced " + path + " with the new key\nkept the old key as "; !strings.Contains(out, want) || strings.Contains(out, "temporary file") {
			t.Errorf("rotate said %q, want it to say %q and name no temporary file", out, want)
		}
		if b := mustReadFile(t, path); string(b) != newKey {
			t.Errorf("%s holds %q, want the new key", path, b)
		}
	})
}

// TestWriteNewTempLeftSynced: a new file whose temporary name is left
// has its directory synced after the link all the same, so that its
// name survives a crash; and a directory that cannot be synced is a
// failure there too (the file removed again), never a success with a
// warning.
func TestWriteNewTempLeftSynced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	failRemoveIn(t, dir, ".key.json.")
	defer func(s func(string) error) { syncDir = s }(syncDir)
	var synced []string
	syncDir = func(d string) error {
		if _, err := os.Stat(path); err == nil {
			synced = append(synced, d)
		}
		return nil
	}
	if err, _ := writtenTempLeft(writeNewFile(path, writeBytes([]byte("secret\n")))); err != nil {
		t.Fatalf("write: %v, want it written", err)
	}
	if !slices.Contains(synced, dir) {
		t.Errorf("directories synced once the file was in place: %v, want %s", synced, dir)
	}

	dir = t.TempDir()
	path = filepath.Join(dir, "key.json")
	failRemoveIn(t, dir, ".key.json.")
	syncDir = func(string) error { return syscall.EIO }
	err := writeNewFile(path, writeBytes([]byte("secret\n")))
	if failure, _ := writtenTempLeft(err); failure == nil {
		t.Fatalf("write with its directory not synced: %v, want a failure", err)
	}
	if _, ok := errors.AsType[*dirSyncError](err); !ok {
		t.Errorf("error %v, want a *dirSyncError", err)
	}
	if _, serr := os.Lstat(path); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("%s: %v, want it removed again", path, serr)
	}
	tmp := leftTemp(t, dir)
	if !strings.Contains(err.Error(), tmp) {
		t.Errorf("error %v, want it to name %s", err, tmp)
	}
}

// TestTempLeftJSONOutput: with -o json, a command whose --out file left
// its temporary name prints its JSON alone on standard output, and the
// warning on standard error.
func TestTempLeftJSONOutput(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "leftjson")
	for _, tt := range []struct {
		name string
		args func(out string) []string
	}{
		{"keys create", func(out string) []string {
			return []string{"keys", "create", email, "--out", out, "-o", "json", "--credentials", m.AdminKeyFile}
		}},
		{"dpop keygen", func(out string) []string { return []string{"dpop", "keygen", "--out", out, "-o", "json"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			failRemoveIn(t, dir, ".out.")
			cmd := newRootCommand()
			cmd.SetArgs(tt.args(out))
			var stdout, stderr bytes.Buffer
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			if err := execute(context.Background(), cmd); err != nil {
				t.Fatalf("%v (stderr %q)", err, stderr.String())
			}
			var v map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || v["file"] != out {
				t.Errorf("stdout %q (%v), want a JSON object naming %s alone", stdout.String(), err, out)
			}
			if !strings.HasPrefix(stderr.String(), "warning: "+out+" was written, but its temporary file ") {
				t.Errorf("stderr %q, want the warning", stderr.String())
			}
		})
	}
}

// failSyncOf makes syncDir fail (EIO) for dir, until the test ends.
func failSyncOf(t *testing.T, dir string) {
	s := syncDir
	t.Cleanup(func() { syncDir = s })
	syncDir = func(d string) error {
		if d == dir {
			return syscall.EIO
		}
		return s(d)
	}
}

// writeNewFileCommands are writeNewFile's callers: each names the
// command and gives its arguments to write the file out.
func writeNewFileCommands(t *testing.T) []struct {
	name string
	args func(out string) []string
} {
	return []struct {
		name string
		args func(out string) []string
	}{
		{"dpop keygen --out", func(out string) []string { return []string{"dpop", "keygen", "--out", out} }},
		{"recover-admin --key-file", func(out string) []string {
			m := startServer(t)
			return []string{"recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", out}
		}},
	}
}

// TestTempLeftUnsyncedNamed: a key written whose directory could not be
// synced is removed again, and the failure says so; its temporary name,
// if it could not be removed, still holds the key, and the error names
// it too (keys create --out: a private key; a first start's master.key).
// Both said the file was removed, and left that second name unsaid.
// writeNewFile's callers (dpop keygen, recover-admin) named it, but
// before what became of the file, not after it.
func TestTempLeftUnsyncedNamed(t *testing.T) {
	t.Run("keys create --out", func(t *testing.T) {
		m := startServer(t)
		_, email := setupAccount(t, m, "unsynced")
		before := keyCount(t, m, email)
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		failRemoveIn(t, dir, ".out.")
		failSyncOf(t, dir)
		err := runCLIErr(t, "keys", "create", email, "--out", out, "--credentials", m.AdminKeyFile)
		tmp := leftTemp(t, dir)
		if err == nil || !strings.Contains(err.Error(), out+", written but not made durable, was removed, but its temporary file "+tmp+" is left") {
			t.Errorf("keys create: %v, want it to name %s, left", err, tmp)
		}
		if n := keyCount(t, m, email); n != before {
			t.Errorf("%d keys, want %d: the key deleted again", n, before)
		}
	})
	// writeNewFile's: the note ends the message, after what became of
	// the file, as above. It came between the cause and that.
	for _, tt := range writeNewFileCommands(t) {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			args := tt.args(out)
			failRemoveIn(t, dir, ".out.")
			failSyncOf(t, dir)
			err := runCLIErr(t, args...)
			tmp := leftTemp(t, dir)
			want := "sync the directory of " + out + ": input/output error; " + out + ", written but not made durable, was removed, but its temporary file " + tmp + " is left, which could not be removed (input/output error): remove it"
			if err == nil || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("%v, want it to end %q", err, want)
			}
		})
	}
	t.Run("first start", func(t *testing.T) {
		dir := t.TempDir()
		failRemoveIn(t, dir, ".master.key.")
		failSyncOf(t, dir)
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err := m.Open(context.Background())
		m.Close()
		var tmp string
		for _, n := range dirNames(t, dir) {
			if strings.HasPrefix(n, ".master.key.") {
				tmp = filepath.Join(dir, n)
			}
		}
		if tmp == "" {
			t.Fatalf("no temporary file of master.key left in %v", dirNames(t, dir))
		}
		path := filepath.Join(dir, "master.key")
		if err == nil || !strings.Contains(err.Error(), path+" was removed again, but its temporary file "+tmp+" is left") {
			t.Errorf("start: %v, want it to name %s, left", err, tmp)
		}
	})
}

// TestUnsyncedNotRemovedWithTempLeft: a file written whose directory
// could not be synced, which could not be removed, and whose temporary
// file could not be removed either, is named with that file in one
// sentence with one instruction (keys create --out, dpop keygen,
// recover-admin). It said to delete the one, "but" the other was left:
// remove it.
func TestUnsyncedNotRemovedWithTempLeft(t *testing.T) {
	t.Run("keys create --out", func(t *testing.T) {
		m := startServer(t)
		_, email := setupAccount(t, m, "unsynced")
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		failRemoveIn(t, dir, ".out.")
		failRemoveIn(t, dir, "out")
		failSyncOf(t, dir)
		err := runCLIErr(t, "keys", "create", email, "--out", out, "--credentials", m.AdminKeyFile)
		tmp := leftTemp(t, dir, "out")
		want := "; " + out + " may hold its private key and could not be removed (remove " + out + ": input/output error), nor could its temporary file " + tmp + ", which holds it too (input/output error): delete both"
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("keys create: %v, want it to end %q", err, want)
		}
	})
	for _, tt := range writeNewFileCommands(t) {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			args := tt.args(out)
			failRemoveIn(t, dir, ".out.")
			failRemoveIn(t, dir, "out")
			failSyncOf(t, dir)
			err := runCLIErr(t, args...)
			tmp := leftTemp(t, dir, "out")
			want := "sync the directory of " + out + ": input/output error; " + out + ", written but not made durable, could not be removed (remove " + out + ": input/output error), nor could its temporary file " + tmp + ", a second name of it (input/output error): delete both"
			if err == nil || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("%v, want it to end %q", err, want)
			}
		})
	}
}

// TestRenamedUnsyncedTempNotLeft: a file renamed into place whose
// directory could not be synced fails, and the error names no
// temporary file left, whatever a removal of that name, gone, says:
// master-key rotate named one, which was master.key now.
func TestRenamedUnsyncedTempNotLeft(t *testing.T) {
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
	failRemoveIn(t, dir, ".master.key.")
	defer func(s func(string) error) { syncDir = s }(syncDir)
	// Its first sync, of the old key kept beside it, goes well.
	synced := 0
	syncDir = func(d string) error {
		if d != dir {
			return nil
		}
		if synced++; synced > 1 {
			return syscall.EIO
		}
		return nil
	}
	err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	if err == nil || !strings.Contains(err.Error(), " holds the new one, but may hold the old one again after a crash (") || strings.Contains(err.Error(), "temporary file") {
		t.Errorf("rotate: %v, want it to say master.key holds the new key, and name no temporary file", err)
	}
	if names := dirNames(t, dir); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, ".master.key.") }) {
		t.Errorf("the directory holds %v, want no temporary file", names)
	}
}

// TestTempLeftExistsNamed: a new file refused because one was made at
// its path meanwhile, whose temporary file (holding the key) could not
// be removed either, names that file in the refusal: keys create --out,
// dpop keygen, recover-admin and a first start's master.key said only
// that the file exists, and keys create that no key file was left;
// audit prune --export, holding the events exported, too. export --out,
// which named it, still does.
func TestTempLeftExistsNamed(t *testing.T) {
	madeMeanwhile := func(t *testing.T, path string) {
		p := publishing
		t.Cleanup(func() { publishing = p })
		publishing = func(at string) {
			if at == path {
				mustWriteFile(t, path, []byte("another\n"))
			}
			p(at)
		}
	}
	m := startServer(t)
	_, email := setupAccount(t, m, "exists")
	for _, tt := range []struct {
		name string
		args func(out string) []string
	}{
		{"keys create --out", func(out string) []string {
			return []string{"keys", "create", email, "--out", out, "--credentials", m.AdminKeyFile}
		}},
		{"dpop keygen --out", func(out string) []string { return []string{"dpop", "keygen", "--out", out} }},
		{"export --out", func(out string) []string { return []string{"export", "--data-dir", m.Config.DataDir, "--out", out} }},
		{"audit prune --export", func(out string) []string {
			return []string{"audit", "prune", "--data-dir", m.Config.DataDir, "--before", "0s", "--export", out, "--yes"}
		}},
		{"recover-admin --key-file", func(out string) []string {
			return []string{"recover-admin", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", out}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			failRemoveIn(t, dir, ".out.")
			madeMeanwhile(t, out)
			err := runCLIErr(t, tt.args(out)...)
			tmp := leftTemp(t, dir, "out")
			if err == nil || !strings.Contains(err.Error(), "its temporary file "+tmp+" is left") {
				t.Errorf("%v, want it to name %s, left", err, tmp)
			}
			if b := mustReadFile(t, out); string(b) != "another\n" {
				t.Errorf("%s holds %q, want the file made meanwhile", out, b)
			}
		})
	}
	t.Run("first start", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "master.key")
		failRemoveIn(t, dir, ".master.key.")
		madeMeanwhile(t, path)
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err := m.Open(context.Background())
		m.Close()
		var tmp string
		for _, n := range dirNames(t, dir) {
			if strings.HasPrefix(n, ".master.key.") {
				tmp = filepath.Join(dir, n)
			}
		}
		if tmp == "" {
			t.Fatalf("no temporary file of master.key left in %v", dirNames(t, dir))
		}
		if err == nil || !strings.Contains(err.Error(), "was created meanwhile") || !strings.Contains(err.Error(), "its temporary file "+tmp+" is left") {
			t.Errorf("start: %v, want it to name %s, left", err, tmp)
		}
	})
}

// TestRotateRefusedTempLeft: a master-key rotate whose re-encryption
// fails (here the current key does not open the store) changes nothing,
// and its error names the new master.key's temporary file, written
// before the store changes, if that could not be removed: it holds the
// new key.
func TestRotateRefusedTempLeft(t *testing.T) {
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	path := filepath.Join(dir, "master.key")
	mustWriteFile(t, path, []byte(strings.Repeat("c3", 32)+"\n")) // not the store's
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
	failRemoveIn(t, dir, ".master.key.")
	err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	tmp := ""
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, ".master.key.") {
			tmp = filepath.Join(dir, n)
		}
	}
	if tmp == "" {
		t.Fatalf("no temporary file of master.key left in %v", dirNames(t, dir))
	}
	const prefix = "the current master key does not open this store, nothing was changed: "
	suffix := "; its temporary file " + tmp + " is left, which could not be removed (input/output error): remove it"
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), suffix) {
		t.Fatalf("rotate: %v, want %q … %q", err, prefix, suffix)
	}
}

// TestNoLinkTempLeft: writeOutFile on a file system that supports
// neither a hard link nor a rename that does not replace, whose temporary
// file cannot be removed either, suggests --force and then names that
// file, last, as the other failures do. The note came before the
// suggestion, which then read as a way to remove the leftover.
func TestNoLinkTempLeft(t *testing.T) {
	defer func(l, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
	linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
	renameNew = func(o, n string) error { return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.EINVAL} }
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	failRemoveIn(t, dir, ".key.json.")
	err := writeOutFile(context.Background(), path, []byte("secret\n"), false)
	tmp := leftTemp(t, dir)
	want := "cannot create " + path + " without the risk of replacing a file made there meanwhile: its file system refuses both a hard link (operation not permitted) and a rename that does not replace (invalid argument); write it elsewhere, or pass --force to replace any file there; its temporary file " + tmp + " is left, which could not be removed (input/output error): remove it"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if _, ok := errors.AsType[*noLinkError](err); !ok {
		t.Errorf("error %v, want a *noLinkError in it", err)
	}
	// A caller's own message in its place keeps the note (sayInstead).
	if _, left := splitTempLeft(err); !strings.Contains(left, tmp) {
		t.Errorf("splitTempLeft's note %q, want it to name %s", left, tmp)
	}
}

// TestKeysCreateNoLinkTempLeft: keys create --out whose file system,
// once checked, refuses both a hard link and a rename that does not
// replace, and whose temporary file cannot be removed, deletes the key
// and names that file with what became of the key file, after the
// --force suggestion. The note was inside the cause, before it, and the
// message then said no key file was left, without a "but".
func TestKeysCreateNoLinkTempLeft(t *testing.T) {
	m := startServer(t)
	_, email := setupAccount(t, m, "nolink")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	failRemoveIn(t, dir, ".out.")
	defer func(w func(string, []byte, bool) error) { writeKeyOut = w }(writeKeyOut)
	writeKeyOut = func(path string, data []byte, replace bool) error {
		// After checkWritable, which would refuse at once.
		defer func(l, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
		linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
		renameNew = func(o, n string) error { return &os.LinkError{Op: "rename", Old: o, New: n, Err: syscall.EINVAL} }
		return writeOutFile(context.Background(), path, data, replace)
	}
	before := keyCount(t, m, email)
	cmd := newRootCommand()
	cmd.SetArgs([]string{"keys", "create", email, "--out", out, "--credentials", m.AdminKeyFile})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := execute(context.Background(), cmd)
	tmp := leftTemp(t, dir)
	want := "; write it elsewhere, or pass --force to replace any file there; no key file of it was left at " + out + ", but its temporary file " + tmp + " is left, which could not be removed (input/output error): remove it"
	if err == nil || !strings.HasSuffix(err.Error(), want) || strings.Count(err.Error(), tmp) != 1 {
		t.Fatalf("keys create: %v, want an error ending %q", err, want)
	}
	if n := keyCount(t, m, email); n != before {
		t.Errorf("%d keys after keys create, want %d: the key was not deleted", n, before)
	}
}

// TestFirstStartRetryTempLeft: a first start whose write of the master
// key or the administrator key file is tried again (on a file system
// without hard links nor a rename that does not replace, or past a stale
// key file), and whose temporary files cannot be removed, logs each
// temporary file left with a key in it. The second try's outcome was all
// that was said, and the first try's file was left unsaid.
func TestFirstStartRetryTempLeft(t *testing.T) {
	for _, tt := range []struct {
		name    string
		noLinks bool
		stale   bool // an admin-key.json there already
		files   []string
	}{
		{"without links", true, false, []string{"master.key", "admin-key.json"}},
		{"stale key file", false, true, []string{"admin-key.json"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noLinks {
				defer func(l func(string, string) error, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
				linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
				renameNew = func(string, string) error { return errors.ErrUnsupported }
			}
			cfg, path := firstStartConfig(t)
			if tt.stale {
				writeStale(t, path)
			}
			// The temporary files of the writes, not the stale file
			// moved aside (.admin-key.json.prev.*).
			defer func(r func(string) error) { removeFile = r }(removeFile)
			r := removeFile
			removeFile = func(name string) error {
				if filepath.Dir(name) == cfg.DataDir && strings.HasPrefix(filepath.Base(name), ".") && !strings.Contains(name, ".prev.") {
					return &fs.PathError{Op: "remove", Path: name, Err: syscall.EIO}
				}
				return r(name)
			}
			var logs bytes.Buffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			defer m.Close()
			if err := m.Open(context.Background()); err != nil {
				t.Fatalf("start: %v", err)
			}
			for _, f := range tt.files {
				var left []string
				for _, n := range dirNames(t, cfg.DataDir) {
					if strings.HasPrefix(n, "."+f+".") && !strings.Contains(n, ".prev.") {
						left = append(left, filepath.Join(cfg.DataDir, n))
					}
				}
				if len(left) == 0 {
					t.Fatalf("no temporary file of %s left: %v", f, dirNames(t, cfg.DataDir))
				}
				for _, l := range left {
					if !strings.Contains(logs.String(), "its temporary file "+l) {
						t.Errorf("the log does not name %s, left with the key in it: %s", l, logs.String())
					}
				}
			}
		})
	}
}
