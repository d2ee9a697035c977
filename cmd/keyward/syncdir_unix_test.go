//go:build unix

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
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

// TestMasterKeyRotateNewKeyDurable: master-key rotate makes the new key's
// file, and its name, durable before the store is sealed under it. The
// file is often just written (`openssl rand -hex 32 > FILE`, as
// docs/DEPLOYMENT.md says) and still in the page cache: a power failure
// after the commit, before master.key was replaced (or, with
// --master-key-file, at all), left a store that no key on disk opens. A
// new key that cannot be synced is refused, nothing changed.
func TestMasterKeyRotateNewKeyDurable(t *testing.T) {
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
	ctx := context.Background()
	rotated := func() bool {
		st, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		evs, err := st.ListAuditEvents(ctx, storage.AuditFilter{Action: "master_key.rotate"})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs) > 0
	}
	var synced []string // what was synced while the store was sealed under the old key
	defer func(f func(*os.File) error) { syncFile = f }(syncFile)
	sync := syncFile
	// A new key that cannot be made durable is refused, the store left
	// as it is.
	syncFile = func(f *os.File) error {
		if f.Name() == newKeyFile {
			return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
		}
		return sync(f)
	}
	err := runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	if err == nil || !strings.Contains(err.Error(), "cannot make it durable before the store is sealed under it, nothing was changed") || rotated() {
		t.Fatalf("rotate with a new key that cannot be synced: %v (store re-encrypted: %v)", err, rotated())
	}
	syncFile = func(f *os.File) error {
		if !rotated() {
			synced = append(synced, f.Name())
		}
		return sync(f)
	}
	runCLI(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", newKeyFile)
	if !rotated() {
		t.Fatal("the store was not re-encrypted")
	}
	for _, want := range []string{newKeyFile, filepath.Dir(newKeyFile)} {
		if !slices.Contains(synced, want) {
			t.Errorf("%s was not synced before the store was sealed under the new key (synced before: %q)", want, synced)
		}
	}
}

// TestMasterKeyRotateNewKeyFromNamedPipe: a --new-master-key-file that is
// a named pipe (mkfifo) is read once, as a regular file is, and has
// nothing on disk to sync. The sync opened it a second time, blocking
// until a writer came, which none did: the rotation hung before it took
// any lock.
func TestMasterKeyRotateNewKeyFromNamedPipe(t *testing.T) {
	dir := t.TempDir()
	_, stop := launchServer(t, func(m *Main) { m.Config.DataDir = dir })
	stop()
	fifo := filepath.Join(t.TempDir(), "new.key")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipe here: %v", err)
	}
	newKey := strings.Repeat("a5", 32) + "\n"
	go func() { // the writer: gone once the key is read
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.WriteString(newKey)
			f.Close()
		}
	}()
	done := make(chan error, 1)
	go func() {
		done <- runCLIErr(t, "master-key", "rotate", "--data-dir", dir, "--new-master-key-file", fifo)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rotate with the new key in a named pipe: %v", err)
		}
	case <-time.After(30 * time.Second):
		// Let it go: a writer that opens the pipe ends the wait.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		<-done
		t.Fatal("rotate with the new key in a named pipe did not finish: it waited for a writer of the pipe, after reading it")
	}
	if got := mustReadFile(t, filepath.Join(dir, "master.key")); string(got) != newKey {
		t.Errorf("master.key = %q after the rotation, want the new key", got)
	}
}

// TestSyncExistingFileSymlink: syncExistingFile makes durable the name of
// the file itself, in its own directory, when path is a symbolic link to
// it (a --new-master-key-file linked into a secrets directory, say), as
// well as the link's. It synced the link's directory alone: a crash
// could keep the link and lose the name of the file it leads to.
func TestSyncExistingFileSymlink(t *testing.T) {
	linkDir, fileDir := t.TempDir(), t.TempDir()
	file := filepath.Join(fileDir, "new.key")
	mustWriteFile(t, file, []byte(strings.Repeat("a5", 32)+"\n"))
	link := filepath.Join(linkDir, "new.key")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		path string
		want []string // synced, each
	}{
		{"file", file, []string{file, fileDir}},
		{"symbolic link", link, []string{link, linkDir, fileDir}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var synced []string
			defer func(f func(*os.File) error) { syncFile = f }(syncFile)
			syncFile = func(f *os.File) error {
				synced = append(synced, f.Name())
				return nil
			}
			if err := syncExistingFile(tt.path); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !slices.Contains(synced, w) {
					t.Errorf("%s was not synced (synced: %q)", w, synced)
				}
			}
		})
	}
}

// TestFirstStartMasterKeyFileDurable: a first start seals the new store
// (its client-secret pepper, its signing keys) under the key of
// --master-key-file, a file often just written (openssl rand -hex 32 >
// FILE, as the docs do) and in the page cache alone; it was not synced,
// so a power failure then left a store that no key on disk opens. The
// file and its directory are synced before anything is sealed, and a
// first start whose key file cannot be synced fails, nothing sealed. A
// start on a store sealed already seals nothing new, and needs no sync.
func TestFirstStartMasterKeyFileDurable(t *testing.T) {
	t.Setenv(masterKeyEnv, "")
	dir := t.TempDir()
	keyFile := writeMasterKey(t, "3c")
	ctx := context.Background()
	sealed := func() bool {
		st, err := sqlite.Open(ctx, filepath.Join(dir, "keyward.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		keys, err := st.ListSigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.GetSealedValue(ctx, "client-secret-pepper")
		return len(keys) > 0 || err == nil
	}
	defer func(f func(*os.File) error) { syncFile = f }(syncFile)
	sync := syncFile
	var synced []string
	start := func(keyFails bool) error {
		synced = nil
		syncFile = func(f *os.File) error {
			synced = append(synced, f.Name())
			if keyFails && f.Name() == keyFile {
				return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
			}
			return sync(f)
		}
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.MasterKeyFile = dir, "127.0.0.1:0", keyFile
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		defer m.Close()
		return m.Open(ctx)
	}

	err := start(true)
	if want := "cannot make it durable before the store is sealed under it, nothing was sealed"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("first start with a key file that cannot be synced: %v, want an error saying %q", err, want)
	}
	if sealed() {
		t.Fatal("the first start failed to sync its master key file, but sealed the store under it")
	}
	if err := start(false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{keyFile, filepath.Dir(keyFile)} {
		if !slices.Contains(synced, want) {
			t.Errorf("the first start sealed the store without syncing %s (synced: %q)", want, synced)
		}
	}
	if !sealed() {
		t.Fatal("the first start sealed nothing")
	}
	if err := start(true); err != nil {
		t.Errorf("a start on a sealed store failed for a key file it need not sync: %v", err)
	}
}

// TestDataDirDurable: the data directory a first start or an import
// creates is made durable in its parent, and so is every parent it
// creates: fsync(2) makes a name durable only once its directory is
// synced. The files written and synced in it (master.key,
// admin-key.json, the database) were synced through the data
// directory's own entries alone, and a power failure could take the
// new directory's name, and them with it, after the store (on
// PostgreSQL) was sealed under that master.key, or after an import said
// it was done. A parent that cannot be synced fails the start, and the
// directories it made are removed, for the next to make, and sync,
// again.
func TestDataDirDurable(t *testing.T) {
	t.Setenv(masterKeyEnv, "")
	ctx := context.Background()
	defer func(f func(string) error) { syncDir = f }(syncDir)
	sync := syncDir
	var synced []string
	record := func(fail string) {
		synced = nil
		syncDir = func(d string) error {
			synced = append(synced, d)
			if d == fail {
				return &os.PathError{Op: "sync", Path: d, Err: syscall.EIO}
			}
			return sync(d)
		}
	}
	open := func(dir string) error {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
		m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		defer m.Close()
		return m.Open(ctx)
	}
	for _, tt := range []struct {
		name string
		open func(dir string) error
	}{
		{"first start", open},
		{"import", func(dir string) error { // it opens the store so
			cfg := DefaultConfig()
			cfg.DataDir, cfg.migrateNewOnly = dir, true
			st, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				st.Close()
			}
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "a", "data")
			record("")
			if err := tt.open(dir); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{base, filepath.Dir(dir)} {
				if !slices.Contains(synced, want) {
					t.Errorf("%s was created in %s, which was not synced (synced: %q)", dir, want, synced)
				}
			}
		})
	}
	t.Run("parent not synced", func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "a", "data")
		record(base)
		err := open(dir)
		if err == nil || !strings.Contains(err.Error(), "input/output error") {
			t.Fatalf("a start whose new data directory could not be made durable: %v, want the sync's error", err)
		}
		if _, err := os.Stat(filepath.Join(base, "a")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the directories of the failed start are left, for the next start to use unsynced: %v", err)
		}
		record("")
		if err := open(dir); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(synced, base) {
			t.Errorf("the next start did not sync %s (synced: %q)", base, synced)
		}
	})
}
