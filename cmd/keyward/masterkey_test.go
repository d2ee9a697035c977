package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
)

// TestMasterKeyRotate: after `keyward master-key rotate`, a server on the
// new key serves the same signing keys and accepts the same client secret;
// the old key opens nothing; refusals change nothing.
func TestMasterKeyRotate(t *testing.T) {
	dir := t.TempDir()
	addr := reservePort(t) // one address for both starts: key files name it; held between them
	var stop func()
	start := func(t *testing.T) *Main {
		t.Helper()
		m, s := launchServer(t, func(m *Main) { m.Config.Listen, m.Config.DataDir = addr, dir })
		stop = s
		return m
	}
	m := start(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	clientID, email := setupAccount(t, m, "rotating")
	var sec struct {
		Secret string `json:"client_secret"`
	}
	json.Unmarshal([]byte(runCLI(t, append([]string{"secrets", "create", email, "-o", "json"}, admin...)...)), &sec)
	token := func(m *Main) int {
		req, _ := http.NewRequest("POST", m.URL()+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(sec.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := token(m); code != 200 {
		t.Fatalf("token before rotation: %d", code)
	}
	kids := func(m *Main) []string {
		var set struct{ Keys []struct{ Kid string } }
		getJSON(t, m.URL()+"/.well-known/jwks.json", &set)
		var ids []string
		for _, k := range set.Keys {
			ids = append(ids, k.Kid)
		}
		slices.Sort(ids)
		return ids
	}
	kidsBefore := kids(m)
	stop()

	oldKey := mustReadFile(t, filepath.Join(dir, "master.key"))
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	newKey := bytes.Repeat([]byte{0xa5}, 32)
	mustWriteFile(t, newKeyFile, []byte(hex.EncodeToString(newKey)+"\n"))

	// Refusals: no new key, the same key, a wrong current key.
	if err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--new-master-key-file is required") {
		t.Errorf("no new key: %v", err)
	}
	same := filepath.Join(t.TempDir(), "same.key")
	mustWriteFile(t, same, oldKey)
	if err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", same); err == nil || !strings.Contains(err.Error(), "is the current one") {
		t.Errorf("same key: %v", err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	mustWriteFile(t, wrong, []byte(strings.Repeat("ab", 32)))
	if err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--master-key-file", wrong, "--new-master-key-file", newKeyFile); err == nil ||
		!strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("wrong current key: %v", err)
	}

	// A key kept by an earlier rotation, under each name this one could
	// take in the next minute, is never written over.
	earlier := []byte("an earlier rotation's old key\n")
	for d := range 60 {
		mustWriteFile(t, filepath.Join(dir, "master.key.old-"+time.Now().Add(time.Duration(d)*time.Second).UTC().Format("20060102T150405Z")), earlier)
	}
	out := runCLI(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	if !strings.Contains(out, "replaced "+filepath.Join(dir, "master.key")) || strings.Contains(out, "still running") {
		t.Fatalf("output %q", out)
	}
	if got := mustReadFile(t, filepath.Join(dir, "master.key")); string(got) != hex.EncodeToString(newKey)+"\n" {
		t.Fatalf("master.key = %q, want the new key", got)
	}
	// The old key, which master.key held alone, is kept beside it, named
	// in the output, for the back-ups taken before.
	var kept []string
	all, _ := filepath.Glob(filepath.Join(dir, "master.key.old-*"))
	for _, k := range all {
		if !bytes.Equal(mustReadFile(t, k), earlier) {
			kept = append(kept, k)
		}
	}
	if len(kept) != 1 || len(all) != 61 || !strings.Contains(out, "kept the old key as "+kept[0]+":") {
		t.Fatalf("old keys kept %v of %d, output %q: want one, named, beside the earlier 60", kept, len(all), out)
	}
	if fi, err := os.Stat(kept[0]); err != nil || fi.Mode().Perm() != 0o600 || !bytes.Equal(mustReadFile(t, kept[0]), oldKey) {
		t.Fatalf("%s: %v %v, want the old key, mode 0600", kept[0], fi, err)
	}

	// The new key serves everything as before.
	m = start(t)
	if got := kids(m); !slices.Equal(got, kidsBefore) {
		t.Fatalf("signing keys %v after rotation, want %v", got, kidsBefore)
	}
	if code := token(m); code != 200 {
		t.Fatalf("token with the same secret after rotation: %d", code)
	}
	audit := runCLI(t, append([]string{"audit", "list", "--action", "master_key.rotate", "-o", "json"}, admin...)...)
	if !strings.Contains(audit, "keyward master-key rotate") {
		t.Fatalf("no audited rotation: %s", audit)
	}
	stop()

	// The old key opens nothing.
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.MasterKeyFile = "127.0.0.1:0", dir, same
	old := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := old.Open(context.Background())
	old.Close()
	if err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("start with the old key: %v", err)
	}
}

// A master key of 32 printable characters is text taken as raw bytes (a
// passphrase, or 16 bytes in hex): serve warns of it, rotate refuses it
// as the new key; a random key, in hex or raw, is neither.
func TestTextMasterKey(t *testing.T) {
	random := make([]byte, 32)
	for i := range random {
		random[i] = byte(0x80 + i) // not printable
	}
	for _, tt := range []struct {
		name, key string
		text      bool
	}{
		{"passphrase", "correct horse battery staple!!!!", true},
		{"16 bytes in hex", strings.Repeat("5a", 16), true},
		{"32 bytes in hex", strings.Repeat("a7", 32), false},
		{"32 random raw bytes", string(random), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.key) != 64 && len(tt.key) != 32 {
				t.Fatalf("test key of %d bytes", len(tt.key))
			}
			t.Setenv("KEYWARD_MASTER_KEY", "")
			t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
			file := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(file, []byte(tt.key), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), file
			var log bytes.Buffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}
			if _, _, err := m.loadMasterKey(context.Background()); err != nil {
				t.Fatal(err)
			}
			if warned := strings.Contains(log.String(), "the master key is 32 printable characters"); warned != tt.text {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tt.text, log.String())
			}
			err := runCLIErr(t, "master-key", "rotate", "--data-dir", t.TempDir(), "--new-master-key-file", file)
			if refused := err != nil && strings.Contains(err.Error(), "32 printable characters"); refused != tt.text {
				t.Errorf("rotate to it: %v; want refused as text: %v", err, tt.text)
			}
		})
	}
}

// The warning of a text master key says where the key came from, under
// the key the other master-key lines use, path, or env for
// KEYWARD_MASTER_KEY: it said source=, the key of every request line's
// client address, and source="" for the environment variable.
func TestTextMasterKeyWhere(t *testing.T) {
	const text = "correct horse battery staple!!!!"
	file := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, file, env, want string
	}{
		{"file", file, "", "path=" + file},
		{"environment", "", text, "env=KEYWARD_MASTER_KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KEYWARD_MASTER_KEY", tt.env)
			t.Setenv("KEYWARD_MASTER_KEY_FILE", "")
			cfg := DefaultConfig()
			cfg.DataDir, cfg.MasterKeyFile = t.TempDir(), tt.file
			var log bytes.Buffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&log, nil))}
			if _, _, err := m.loadMasterKey(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := log.String()
			if !strings.Contains(got, "the master key is 32 printable characters") || !strings.Contains(got, tt.want) || strings.Contains(got, "source=") {
				t.Errorf("log:\n%s\nwant the warning with %s, and no source=", got, tt.want)
			}
		})
	}
}

// TestFirstStartUnsyncedMasterKey: a first start whose generated master
// key file cannot be made durable (its directory is not synced) fails and
// removes the file, saying so. It was left in place, and the next start
// read it and sealed the store under it without syncing the directory,
// so that a crash could take the only key the store opens with. The next
// start generates a key and makes it durable; the one after opens the
// store with that key.
func TestFirstStartUnsyncedMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	start := func(syncErr error) error {
		defer func(f func(string) error) { syncDir = f }(syncDir)
		syncDir = func(string) error { return syncErr }
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		defer m.Close()
		return m.Open(context.Background())
	}
	err := start(errors.New("input/output error"))
	if want := path + " was removed again"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("first start: %v, want an error saying %q", err, want)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the master key of the failed start is left: %v", err)
	}
	for _, name := range []string{"retry", "restart"} {
		if err := start(nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// A rotation of the generated master key whose file could not be
// replaced says what that file holds: the new key, but maybe the old one
// again after a crash, when only its directory could not be synced; the
// old one when the rename itself failed ("may still hold the old one"
// was said of both). Either way it says to start with the new key's own
// file, which opens the store.
func TestMasterKeyRotateFileNotReplaced(t *testing.T) {
	const oldSaid = "may still hold the old one"
	for _, tt := range []struct {
		name    string
		fail    func(dir string)
		says    string
		holdNew bool
	}{
		{"directory not synced", func(dir string) {
			// The data directory's: the new key's is synced before the
			// store changes, and a failure there changes nothing. Its
			// first sync, of the old key kept beside it, goes well.
			synced := 0
			syncDir = func(d string) error {
				if d != dir {
					return nil
				}
				if synced++; synced > 1 {
					return errors.New("input/output error")
				}
				return nil
			}
		}, " holds the new one, but may hold the old one again after a crash (", true},
		{"rename fails", func(string) {
			// Of the new key to master.key; the old key is kept.
			renameFile = func(from, to string) error {
				if filepath.Base(to) == "master.key" {
					return errors.New("rename: input/output error")
				}
				return os.Rename(from, to)
			}
		}, " still holds the old one, which could not be replaced (", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
			stop()
			path := filepath.Join(dir, "master.key")
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			newKeyFile := filepath.Join(t.TempDir(), "new key") // to be quoted
			newKey := strings.Repeat("a5", 32) + "\n"
			mustWriteFile(t, newKeyFile, []byte(newKey))
			defer func(s func(string) error, r func(string, string) error) { syncDir, renameFile = s, r }(syncDir, renameFile)
			tt.fail(dir)
			err = runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
			want := path + tt.says
			// The flag to paste ends the message, quoted for the shell.
			hint := ": keep " + newKeyFile + " and start with: --master-key-file '" + newKeyFile + "'"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), hint) || strings.Contains(err.Error(), oldSaid) {
				t.Fatalf("rotate: %v, want an error saying %q and ending %q", err, want, hint)
			}
			wantHeld := map[bool]string{true: newKey, false: string(old)}[tt.holdNew]
			if b, err := os.ReadFile(path); err != nil || string(b) != wantHeld {
				t.Errorf("%s holds %q (%v), want %q", path, b, err, wantHeld)
			}
		})
	}
}

// A data directory that cannot take the new master.key (read-only, full:
// here its temporary file's write fails) refuses the rotation before the
// store changes: the store and master.key still go with the old key.
// The file was written only after the commit, leaving a store that needed
// the new key beside a master.key that held the old.
func TestMasterKeyRotateFileNotWritable(t *testing.T) {
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	path := filepath.Join(dir, "master.key")
	old := mustReadFile(t, path)
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
	defer func(w func(string, io.Writer) io.Writer) { writingFile = w }(writingFile)
	writingFile = func(p string, w io.Writer) io.Writer {
		if p == path {
			return failingWriter{syscall.EROFS}
		}
		return w
	}
	err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	if err == nil || !strings.Contains(err.Error(), "cannot be written in place of "+path+", nothing was changed") {
		t.Fatalf("rotate: %v, want a refusal with nothing changed", err)
	}
	if got := mustReadFile(t, path); !bytes.Equal(got, old) {
		t.Errorf("master.key = %q, want the old key %q", got, old)
	}
	if entries, _ := os.ReadDir(dir); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".master.key.") }) {
		t.Errorf("temporary file left in %s: %v", dir, entries)
	}
	// The old key still opens the store.
	m, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	defer stop()
	getJSON(t, m.URL()+"/.well-known/jwks.json", new(any))
}

// Two servers sharing a store, started at the same moment without a
// master key, each generate one; the second to seal finds the store
// sealed under the other's. It says so, and removes the key it generated,
// which would have failed every later start the same way.
func TestFirstStartSealedMeanwhile(t *testing.T) {
	dir := t.TempDir()
	theirs := bytes.Repeat([]byte{0x5c}, 32)
	defer func(f func(context.Context, storage.Storage)) { masterKeyGenerated = f }(masterKeyGenerated)
	masterKeyGenerated = func(ctx context.Context, st storage.Storage) {
		if _, err := signer.LoadPepper(ctx, st, theirs, time.Now()); err != nil {
			t.Errorf("sealing the store under another key: %v", err)
		}
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := m.Open(context.Background())
	m.Close()
	path := filepath.Join(dir, "master.key")
	if want := "sealed it at the same time"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "as for the key generated here, nothing was sealed with it, and "+path+" was removed again") {
		t.Fatalf("start: %v, want an error saying %q and that %s, generated here, was removed", err, want, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the generated master key is left: %v", err)
	}
	// Given the other server's key, it starts.
	masterKeyGenerated = func(context.Context, storage.Storage) { t.Error("a master key was generated again") }
	cfg.MasterKeyFile = writeMasterKey(t, "5c")
	m = &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start with the other server's key: %v", err)
	}
}

// Two servers sharing a data directory, started at the same moment without
// a master key, each generate one; the other one's master.key is there
// (here made by the publishing hook) just before this one puts its own in
// place. It is left as it is: renamed over, the key the other server
// seals the store under would be lost. This one stops and says so, and
// sealed nothing.
func TestFirstStartMasterKeyMadeMeanwhile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	theirs := strings.Repeat("5c", 32) + "\n"
	defer func(f func(string)) { publishing = f }(publishing)
	publishing = func(p string) {
		if p == path {
			if err := os.WriteFile(p, []byte(theirs), 0o600); err != nil {
				t.Error(err)
			}
		}
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := m.Open(context.Background())
	m.Close()
	if want := path + " was created meanwhile"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start: %v, want an error saying %q", err, want)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != theirs {
		t.Fatalf("%s holds %q (%v), want the other server's key", path, b, err)
	}
	if names := dirNames(t, dir); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, ".master.key.") }) {
		t.Errorf("a temporary file is left: %v", names)
	}
	// Started again, it uses the other server's key.
	publishing = func(string) {}
	m = &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if b := mustReadFile(t, path); string(b) != theirs {
		t.Fatalf("%s holds %q, want the other server's key", path, b)
	}
}

// TestFirstStartWithoutLinks: a data directory on a file system that
// refuses both a hard link and a rename that does not replace still gets
// its generated master key, renamed into place as before.
func TestFirstStartWithoutLinks(t *testing.T) {
	defer func(l func(string, string) error, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
	linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
	renameNew = func(string, string) error { return errors.ErrUnsupported }
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "master.key")); err != nil {
		t.Fatal(err)
	}
}

// A rotation of a master key given in --master-key-file ends its output
// with the flag that starts a server with the new key, quoted for the
// shell.
func TestMasterKeyRotateStartHint(t *testing.T) {
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	cur := filepath.Join(t.TempDir(), "current.key")
	if b, err := os.ReadFile(filepath.Join(dir, "master.key")); err != nil || os.WriteFile(cur, b, 0o600) != nil {
		t.Fatalf("copy the master key: %v", err)
	}
	newKeyFile := filepath.Join(t.TempDir(), "new key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
	out := runCLI(t, "master-key", "rotate", "--data-dir", dir, "--master-key-file", cur, "--new-master-key-file", newKeyFile)
	if want := ": --master-key-file '" + newKeyFile + "'\n"; !strings.HasSuffix(out, want) {
		t.Errorf("rotate said %q, want it to end %q", out, want)
	}
}

// A --master-key-file that is missing stops the start before the store is
// made (a first start created and migrated keyward.db, and left it), with
// a hint right for a new store and for one that exists: it said only
// "open F: no such file or directory".
func TestStartMissingMasterKeyFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing bool
	}{
		{"new store", false},
		{"existing store", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
			if tc.existing {
				m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
				if err := m.Open(context.Background()); err != nil {
					t.Fatal(err)
				}
				m.Close()
			}
			cfg.MasterKeyFile = filepath.Join(t.TempDir(), "master.key")
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(context.Background())
			m.Close()
			if err == nil {
				t.Fatal("start with a missing --master-key-file succeeded")
			}
			for _, want := range []string{"no such file or directory", "--master-key-file", "openssl rand -hex 32 > " + cfg.MasterKeyFile, "needs the key it was sealed with"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, want it to have %q", err, want)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "keyward.db")); !tc.existing && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("keyward.db after the refused first start: %v, want none", err)
			}
		})
	}
}

// A rotation without the current master key says where to give it, as a
// start with a missing --master-key-file does, and that a new key cannot
// stand in for it: it said only "give --master-key-file or
// KEYWARD_MASTER_KEY", and nothing of a missing --master-key-file.
func TestMasterKeyRotateMissingCurrentKey(t *testing.T) {
	t.Setenv(masterKeyEnv, "")
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	if err := os.Rename(filepath.Join(dir, "master.key"), filepath.Join(t.TempDir(), "master.key")); err != nil {
		t.Fatal(err)
	}
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
	missing := filepath.Join(t.TempDir(), "current.key")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no key given", nil, []string{"no current master key", filepath.Join(dir, "master.key") + " does not exist", "--master-key-file FILE", masterKeyEnv, "--data-dir whose master.key", "the key it was sealed with"}},
		{"missing file", []string{"--master-key-file", missing}, []string{"no such file or directory", "(--master-key-file, the current master key)", "the key it was sealed with"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runCLIErr(t, append([]string{"master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile}, tc.args...)...)
			if err == nil {
				t.Fatal("rotate without the current key succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q, want it to have %q", err, want)
				}
			}
		})
	}
}

// A first start whose master key cannot be written, nor its temporary
// file (holding the generated key) removed, names that file instead of
// saying no file was left.
func TestFirstStartMasterKeyTempLeft(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	defer func(w func(string, io.Writer) io.Writer, r func(string) error) { writingFile, removeFile = w, r }(writingFile, removeFile)
	writingFile = func(p string, w io.Writer) io.Writer {
		if p == path {
			return failingWriter{syscall.ENOSPC}
		}
		return w
	}
	removeFile = func(name string) error {
		if strings.HasPrefix(filepath.Base(name), ".master.key.") {
			return &fs.PathError{Op: "remove", Path: name, Err: syscall.EIO}
		}
		return os.Remove(name)
	}
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
		t.Fatalf("no temporary file left in %s (%v): the test's removeFile did not keep it", dir, dirNames(t, dir))
	}
	want := "; nothing was sealed with it, and no file was left at " + path + ", but its temporary file " + tmp + " is left, which could not be removed (input/output error): remove it"
	if err == nil || !strings.HasSuffix(err.Error(), want) || strings.Count(err.Error(), tmp) != 1 {
		t.Fatalf("start: %v, want it to end %q, naming the temporary file once", err, want)
	}
}

// TestMasterKeyRotateInterrupted: a rotation interrupted (its context
// cancelled, as SIGINT and SIGTERM do) before the store committed says
// so, without the store's error chain; it said "nothing was changed: load
// the client-secret pepper: postgres: get sealed value: context
// canceled". A failure whose commit may have gone through either way (the
// commit's answer lost with the connection) is not called "nothing was
// changed": the store is read again, and a store already re-encrypted is
// a rotation done; one that cannot be read is said to be unknown, naming
// both keys.
func TestMasterKeyRotateInterrupted(t *testing.T) {
	newKey := strings.Repeat("a5", 32) + "\n"
	setup := func(t *testing.T) (dir, path string, old []byte, newKeyFile string) {
		dir = t.TempDir()
		_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
		stop()
		path = filepath.Join(dir, "master.key")
		newKeyFile = filepath.Join(t.TempDir(), "new.key")
		mustWriteFile(t, newKeyFile, []byte(newKey))
		return dir, path, mustReadFile(t, path), newKeyFile
	}
	t.Run("before the commit", func(t *testing.T) {
		dir, path, old, newKeyFile := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer func(f func()) { rotateLocked = f }(rotateLocked)
		rotateLocked = cancel
		err := runCLIErrContext(ctx, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
		if want := "master-key rotate interrupted: nothing was changed"; err == nil || err.Error() != want {
			t.Fatalf("rotate interrupted: %v, want %q", err, want)
		}
		if got := mustReadFile(t, path); !bytes.Equal(got, old) {
			t.Errorf("master.key = %q, want the old key %q", got, old)
		}
	})
	t.Run("committed, its answer lost", func(t *testing.T) {
		dir, path, _, newKeyFile := setup(t)
		defer func(f func(context.Context, signer.ResealStore, []byte, []byte, storage.AuditEvent) error) {
			rotateStore = f
		}(rotateStore)
		rotateStore = func(ctx context.Context, st signer.ResealStore, oldKey, newKey []byte, ev storage.AuditEvent) error {
			if err := signer.RotateMasterKey(ctx, st, oldKey, newKey, ev); err != nil {
				return err
			}
			return errors.New("sqlite: commit: connection reset")
		}
		if err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile); err != nil {
			t.Fatalf("rotate committed, its answer lost: %v, want it done", err)
		}
		if got := string(mustReadFile(t, path)); got != newKey {
			t.Errorf("master.key = %q, want the new key %q", got, newKey)
		}
	})
	t.Run("interrupted after the commit", func(t *testing.T) {
		// A cancel during the check with the new key is no sign the new
		// key does not open the store: it said so ("does not open with
		// the new key: ... context canceled") and left master.key holding
		// the old key the store no longer opens with.
		dir, path, _, newKeyFile := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer func(f func(context.Context, signer.ResealStore, []byte, []byte, storage.AuditEvent) error) {
			rotateStore = f
		}(rotateStore)
		rotateStore = func(ctx context.Context, st signer.ResealStore, oldKey, newKey []byte, ev storage.AuditEvent) error {
			err := signer.RotateMasterKey(ctx, st, oldKey, newKey, ev)
			cancel()
			return err
		}
		if err := runCLIErrContext(ctx, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile); err != nil {
			t.Fatalf("rotate interrupted after its commit: %v, want it done", err)
		}
		if got := string(mustReadFile(t, path)); got != newKey {
			t.Errorf("master.key = %q, want the new key %q the store needs", got, newKey)
		}
	})
	t.Run("not known", func(t *testing.T) {
		dir, path, old, newKeyFile := setup(t)
		defer func(f func(context.Context, signer.ResealStore, []byte, []byte, storage.AuditEvent) error) {
			rotateStore = f
		}(rotateStore)
		rotateStore = func(ctx context.Context, st signer.ResealStore, oldKey, newKey []byte, ev storage.AuditEvent) error {
			st.(io.Closer).Close() // the connection lost: the store cannot be read again
			return errors.New("sqlite: commit: connection reset")
		}
		err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
		if err == nil || strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "whether the store was re-encrypted under the new master key is not known") ||
			!strings.Contains(err.Error(), "--master-key-file "+newKeyFile) {
			t.Fatalf("rotate with its outcome unknown: %v, want it said, naming the new key's file", err)
		}
		if got := mustReadFile(t, path); !bytes.Equal(got, old) {
			t.Errorf("master.key = %q, want the old key %q, kept while the store may need it", got, old)
		}
	})
}

// TestMasterKeyRotateCheckFails: once the store committed, a failure of
// the check that it opens with the new key (here the store closed, as a
// connection lost after the commit) is no sign the store does not need
// the new key. The error says the store is sealed under it, names its
// file and ends with the flag to start with, and a generated master.key
// is replaced with the new key all the same. It said "the store was
// re-encrypted but does not open with the new key" without the flag,
// and left master.key holding the old key, which opens nothing now.
func TestMasterKeyRotateCheckFails(t *testing.T) {
	newKey := strings.Repeat("a5", 32) + "\n"
	for _, tt := range []struct {
		name      string
		generated bool // the current key is <data-dir>/master.key; else --master-key-file
	}{
		{"generated master.key", true},
		{"--master-key-file", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(masterKeyEnv, "")
			dir := t.TempDir()
			_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
			stop()
			path := filepath.Join(dir, "master.key")
			old := mustReadFile(t, path)
			args := []string{"master-key", "rotate", "--data-dir", dir}
			if !tt.generated {
				oldKeyFile := filepath.Join(t.TempDir(), "old.key")
				mustWriteFile(t, oldKeyFile, old)
				args = append(args, "--master-key-file", oldKeyFile)
			}
			newKeyFile := filepath.Join(t.TempDir(), "new key") // to be quoted
			mustWriteFile(t, newKeyFile, []byte(newKey))
			closeAfterRotate(t)
			err := runCLIErr(t, append(args, "--new-master-key-file", newKeyFile)...)
			want := "sealed under the new master key, which " + newKeyFile
			hint := ": keep " + newKeyFile + " and start with: --master-key-file '" + newKeyFile + "'"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), hint) || strings.Contains(err.Error(), "does not open with the new key") {
				t.Fatalf("rotate whose check of the new key failed after the commit: %v, want an error saying %q and ending %q", err, want, hint)
			}
			wantHeld := map[bool]string{true: newKey, false: string(old)}[tt.generated]
			if got := string(mustReadFile(t, path)); got != wantHeld {
				t.Errorf("master.key = %q, want %q", got, wantHeld)
			}
		})
	}
}

// closeAfterRotate makes the rotations of the test re-encrypt the store,
// then close it, so that nothing reads it again: the check of the new key
// after the commit fails.
func closeAfterRotate(t *testing.T) {
	f := rotateStore
	t.Cleanup(func() { rotateStore = f })
	rotateStore = func(ctx context.Context, st signer.ResealStore, oldKey, newKey []byte, ev storage.AuditEvent) error {
		if err := signer.RotateMasterKey(ctx, st, oldKey, newKey, ev); err != nil {
			return err
		}
		st.(io.Closer).Close() // the store cannot be read again
		return nil
	}
}
