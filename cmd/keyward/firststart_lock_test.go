//go:build unix || windows

package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/masterkey"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/testkeyward"
)

// Servers on one new PostgreSQL store, sharing one new data directory,
// start at the same moment: each one about to put its master.key (or, the
// master key given, its admin-key.json) in place waits there until every
// other one is there too or waits for the data directory's lock. All come
// up, and the directory holds one master key and one admin-key.json, the
// stored administrator's, and no file moved aside or left half-written.
// Unlocked, they all generated a master key and all but one stopped
// ("created meanwhile"), or raced to move each other's admin-key.json
// aside.
func TestFirstStartSharedDataDir(t *testing.T) {
	for _, tt := range []struct {
		name      string
		masterKey bool   // given, not generated
		at        string // the file the servers meet at
	}{
		{"generated master key", false, "master.key"},
		{"given master key", true, "admin-key.json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.SchemaDSN(t)
			dir := t.TempDir()
			var keyFlag string
			if tt.masterKey {
				keyFlag = writeMasterKey(t, "a7")
			}
			const n = 3
			var (
				mu       sync.Mutex
				met      = sync.NewCond(&mu)
				arrived  int
				released bool
			)
			arrive := func() {
				mu.Lock()
				arrived++
				met.Broadcast()
				mu.Unlock()
			}
			defer func(f func(string)) { publishing = f }(publishing)
			publishing = func(p string) {
				if filepath.Base(p) != tt.at {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if released {
					return
				}
				arrived++
				met.Broadcast()
				for arrived < n {
					met.Wait()
				}
				released = true
			}
			defer func(f func(string)) { lockWaiting = f }(lockWaiting)
			lockWaiting = func(string) { arrive() }

			ms := make([]*Main, n)
			errs := make(chan error, n)
			for i := range ms {
				cfg := DefaultConfig()
				cfg.Listen, cfg.DataDir, cfg.DB, cfg.Issuer, cfg.MasterKeyFile = "127.0.0.1:0", dir, dsn, "http://keyward.test", keyFlag
				ms[i] = &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
				t.Cleanup(func() { ms[i].Close() })
				go func() {
					err := ms[i].Open(context.Background())
					if err != nil {
						arrive() // stopped before meeting the others: none waits for it
					}
					errs <- err
				}()
			}
			for range ms {
				if err := <-errs; err != nil {
					t.Errorf("a server failed to start: %v", err)
				}
			}
			if t.Failed() {
				return
			}
			var keyFiles []string
			for _, m := range ms {
				if m.AdminKeyFile != "" {
					keyFiles = append(keyFiles, m.AdminKeyFile)
				}
			}
			if len(keyFiles) != 1 {
				t.Errorf("servers that kept an administrator key file: %v, want one", keyFiles)
			}
			want := []string{"admin-key.json", dataDirLock}
			if !tt.masterKey {
				want = append(want, "master.key")
			}
			slices.Sort(want)
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Errorf("the data directory holds %v, want %v", got, want)
			}
			checkStoredAdminKey(t, ms[0], filepath.Join(dir, "admin-key.json"))
		})
	}
}

// lockFirstStart waits for a lock another process holds until its context
// is done, then gives up naming the holder; a lock an SQLite server holds
// (until it stops: the wait never ended) is logged, and the start goes on
// without it; so does it without one the system refuses (no such
// directory, here), told by a *lockRefusedError, which the caller warns
// of only if it writes there.
func TestLockFirstStart(t *testing.T) {
	held, sqlite := t.TempDir(), t.TempDir()
	for dir, holder := range map[string]string{held: "keyward import", sqlite: sqliteServerHolder} {
		unlock, err := lockDataDir(dir, holder)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
	}
	for _, tt := range []struct {
		name    string
		dir     string
		holder  string   // startingHolder if empty
		wantErr []string // none: it goes on
		wantLog string
		notLog  string
	}{
		{"held", held, "", []string{held, "keyward import", "gave up waiting", context.Canceled.Error()}, "waiting for the data directory", ""},
		{"refused", filepath.Join(held, "missing"), "", []string{"could not lock the data directory", filepath.Join(held, "missing")}, "", ""},
		{"an SQLite server", sqlite, "", nil, "an SQLite server holds the data directory's lock for as long as it runs: this start goes on without it", "rotate"},
		{"an SQLite server, to a rotation", sqlite, rotateHolder, nil,
			"an SQLite server holds the data directory's lock for as long as it runs: this master-key rotate goes on without it, and replaces master.key there", "start"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer func(f func(string)) { lockWaiting = f }(lockWaiting)
			lockWaiting = func(string) { cancel() }
			var logs testkeyward.SyncBuffer
			holder := cmp.Or(tt.holder, startingHolder)
			release, err := lockFirstStart(ctx, tt.dir, holder, slog.New(slog.NewTextHandler(&logs, nil)))
			_, refused := errors.AsType[*lockRefusedError](err)
			if tt.wantErr == nil || refused {
				if refused != (tt.wantLog == "") || release != nil {
					t.Fatalf("release %v, err %v; want no lock, and a *lockRefusedError only for a lock refused", release != nil, err)
				}
			} else if err == nil {
				t.Fatal("it took the lock another process holds")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.wantLog == "" && logs.String() != "" {
				t.Errorf("logged %q, want nothing: the caller warns if it writes there", logs.String())
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("logged %q, want %q", logs.String(), tt.wantLog)
			}
			if tt.notLog != "" && strings.Contains(logs.String(), tt.notLog) {
				t.Errorf("logged %q, which says %q", logs.String(), tt.notLog)
			}
		})
	}
}

// A start removes the temporary copies of master.key and admin-key.json
// that a process killed while writing them left in the data directory,
// logging each, and no other file: not a key file moved aside, nor a name
// that only looks like one of them, nor a recent one, which another
// process may be writing.
func TestStartRemovesTempLeftovers(t *testing.T) {
	leftovers := []string{".master.key.123456789", ".admin-key.json.42"}
	kept := []string{".admin-key.json.prev.7", ".master.key.12a", ".master.key.", "master.key.1", ".master.keys.1", ".other.json.1"}
	recent := []string{".master.key.77", ".admin-key.json.78"}
	old := time.Now().Add(-2 * tempLeftoverAge)
	for _, tt := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.SchemaDSN(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir, cfg.DB = "127.0.0.1:0", t.TempDir(), tt.db(t)
			for _, n := range slices.Concat(leftovers, kept, recent) {
				p := filepath.Join(cfg.DataDir, n)
				if err := os.WriteFile(p, []byte("left\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(recent, n) {
					if err := os.Chtimes(p, old, old); err != nil {
						t.Fatal(err)
					}
				}
			}
			var logs testkeyward.SyncBuffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			defer m.Close()
			if err := m.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, n := range leftovers {
				p := filepath.Join(cfg.DataDir, n)
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s is still there (%v)", n, err)
				}
				if !strings.Contains(logs.String(), `msg="removed a temporary file left in the data directory by a keyward process that was stopped while writing it" file=`+p) {
					t.Errorf("the removal of %s was not logged:\n%s", n, logs.String())
				}
			}
			for _, n := range slices.Concat(kept, recent) {
				if _, err := os.Stat(filepath.Join(cfg.DataDir, n)); err != nil {
					t.Errorf("%s: %v, want it kept", n, err)
				}
			}
		})
	}
}

// A server on PostgreSQL that starts while recover-admin --key-file
// <data-dir>/admin-key.json writes that file (it holds no data directory
// lock) leaves its temporary file alone: it is recent. It removed it, and
// the command failed. One that starts while master-key rotate replaces
// master.key waits for the rotation, which holds the lock, and starts on
// the new key: it removed the rotation's temporary file, which failed
// after re-encrypting the store, leaving the old key in master.key.
func TestStartBesideTempFileWrite(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	dir := t.TempDir()
	m, stop := launchServer(t, func(m *Main) { m.Config.DataDir, m.Config.DB = dir, dsn })
	issuer := m.Issuer
	stop()
	adminKey := filepath.Join(dir, "admin-key.json")
	if err := os.Remove(adminKey); err != nil {
		t.Fatal(err)
	}
	newKey := strings.Repeat("a5", 32) + "\n"
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, newKeyFile, []byte(newKey))
	for _, tt := range []struct {
		name  string
		file  string // the file the command writes, in dir
		args  []string
		waits bool // the command holds the lock: the server waits for it
	}{
		{"recover-admin", "admin-key.json", []string{"recover-admin", "--db", dsn, "--data-dir", dir, "--issuer", issuer, "--key-file", adminKey}, false},
		{"master-key rotate", "master.key", []string{"master-key", "rotate", "--db", dsn, "--data-dir", dir, "--new-master-key-file", newKeyFile}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			started := false
			var opened chan error // the server's start, when it waits
			defer func(f func(string)) { publishing = f }(publishing)
			defer func(f func(string)) { lockWaiting = f }(lockWaiting)
			publishing = func(p string) {
				if p != filepath.Join(dir, tt.file) || started {
					return
				}
				started = true
				// The command's temporary file is in place: a server starts.
				cfg := DefaultConfig()
				cfg.Listen, cfg.DataDir, cfg.DB, cfg.Issuer = "127.0.0.1:0", dir, dsn, issuer
				open := func() error {
					s := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
					defer s.Close()
					return s.Open(context.Background())
				}
				if !tt.waits {
					open()
					return
				}
				waiting := make(chan struct{})
				lockWaiting = func(string) { close(waiting) }
				opened = make(chan error, 1)
				go func() { opened <- open() }()
				select {
				case <-waiting:
				case err := <-opened:
					opened <- err
					t.Errorf("a server started while %s wrote %s, without waiting for it (%v)", tt.name, tt.file, err)
				}
			}
			if err := runCLIErr(t, tt.args...); err != nil {
				t.Fatalf("%s while a server started: %v", tt.name, err)
			}
			if !started {
				t.Fatal("no server started while the command wrote its file")
			}
			if opened != nil {
				if err := <-opened; err != nil {
					t.Errorf("the server that waited for %s: %v", tt.name, err)
				}
			}
			if tt.file == "master.key" {
				if got := mustReadFile(t, filepath.Join(dir, tt.file)); string(got) != newKey {
					t.Errorf("master.key holds %q, want the new key", got)
				}
			} else if _, err := os.Stat(adminKey); err != nil {
				t.Error(err)
			}
			want := []string{"admin-key.json", dataDirLock, "master.key"}
			if tt.file == "master.key" {
				// The old key, which rotate keeps beside the new one.
				kept, _ := filepath.Glob(filepath.Join(dir, "master.key.old-*"))
				if len(kept) != 1 {
					t.Fatalf("old keys kept %v, want one", kept)
				}
				want = append(want, filepath.Base(kept[0]))
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Errorf("the data directory holds %v, want %v", got, want)
			}
		})
	}
}

// lockProbe is a store whose SignInExpiry, which Open reads last, records
// whether the data directory's lock was free then.
type lockProbe struct {
	storage.Storage
	dir  string
	free *bool
}

func (s lockProbe) SignInExpiry(ctx context.Context, scope string, caCertificates bool, now time.Time) (time.Time, bool, error) {
	if release, err := lockDataDir(s.dir, "keyward test"); err == nil {
		*s.free = true
		release()
	}
	return s.Storage.SignInExpiry(ctx, scope, caCertificates, now)
}

// A server on PostgreSQL releases the data directory's lock once it has
// written master.key and admin-key.json, not at the end of its start: the
// next server starting on the directory waits no longer than that.
func TestFirstStartLockReleasedAfterBootstrap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.DB, cfg.Issuer = "127.0.0.1:0", t.TempDir(), pgtest.SchemaDSN(t), "http://keyward.test"
	var free bool
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wrapStore: func(s storage.Storage) storage.Storage {
		return lockProbe{Storage: s, dir: cfg.DataDir, free: &free}
	}}
	defer m.Close()
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	if m.AdminKeyFile == "" {
		t.Fatal("no first start")
	}
	if !free {
		t.Error("the data directory's lock was held after the bootstrap")
	}
}

// A server starting on PostgreSQL while another session holds the
// store's first-start lock logs, before it waits, a query that lists
// the sessions holding it: a holder whose host vanished keeps the lock
// until PostgreSQL's TCP keepalives notice, and the operator had nothing
// to find it by.
func TestFirstStartWaitNamesHolderQuery(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	holder, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	unlock, err := holder.LockFirstStart(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.DB = "127.0.0.1:0", t.TempDir(), dsn
	var logs testkeyward.SyncBuffer
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	defer m.Close()
	opened := make(chan error, 1)
	go func() { opened <- m.Open(ctx) }()
	// Not a measure: a bound on a wait that must end by itself.
	giveUp := time.After(30 * time.Second)
	for !strings.Contains(logs.String(), "waiting for an import into this store") {
		select {
		case err := <-opened:
			t.Fatalf("Open returned while another session held the first-start lock: %v", err)
		case <-giveUp:
			t.Fatalf("no wait for the first-start lock was logged:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-opened; err == nil {
		t.Error("Open succeeded, its wait for the first-start lock cancelled")
	}
	if want := "find_holder=" + strconv.Quote(postgres.FirstStartHolders); !strings.Contains(logs.String(), want) {
		t.Errorf("logged %q, want it to give the query that finds the holder: %s", logs.String(), want)
	}
}

// signalHandler is a log handler that closes seen at the first record
// whose message begins with prefix.
type signalHandler struct {
	slog.Handler
	prefix string
	once   *sync.Once
	seen   chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

// A server starting on PostgreSQL while a master-key rotate re-encrypts
// the store waits for it, where it waits for another start: for the data
// directory's lock when it shares the directory whose master.key the
// rotation replaces, for the store's first-start lock otherwise. Then it
// starts on the new key. The rotation took no lock: the start loaded the
// old key, pepper and signing keys meanwhile, and failed, or served on
// what the rotation replaced.
func TestStartWaitsForMasterKeyRotate(t *testing.T) {
	t.Setenv(masterKeyEnv, "")
	for _, tt := range []struct {
		name     string
		shareDir bool   // the start shares the data directory, and its generated master.key
		oldKey   bool   // in its own, the start is given the old key's file, which no rotation replaces
		waitLog  string // the start logs this as it waits
	}{
		{"shared data directory", true, false, "waiting for the data directory"},
		{"own data directory", false, false, "waiting for an import into this store, a master-key rotate of it"},
		{"own data directory, old key file", false, true, "waiting for an import into this store, a master-key rotate of it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn, dir := pgtest.SchemaDSN(t), t.TempDir()
			newKeyFile := filepath.Join(t.TempDir(), "new.key")
			mustWriteFile(t, newKeyFile, []byte(strings.Repeat("a5", 32)+"\n"))
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir, cfg.DB, cfg.Issuer = "127.0.0.1:0", dir, dsn, "http://keyward.test"
			first := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := first.Open(context.Background()) // generates dir/master.key
			first.Close()
			if err != nil {
				t.Fatal(err)
			}

			scfg := cfg
			if !tt.shareDir {
				// Its own directory, and the new key already deployed.
				scfg.DataDir, scfg.MasterKeyFile = t.TempDir(), newKeyFile
				if tt.oldKey {
					scfg.MasterKeyFile = filepath.Join(t.TempDir(), "old.key")
					mustWriteFile(t, scfg.MasterKeyFile, mustReadFile(t, filepath.Join(dir, "master.key")))
				}
			}
			seen := make(chan struct{})
			m := &Main{Config: scfg, Logger: slog.New(signalHandler{Handler: slog.NewTextHandler(io.Discard, nil), prefix: tt.waitLog, once: new(sync.Once), seen: seen})}
			defer m.Close()
			started := make(chan error, 1)
			defer func(f func()) { rotateLocked = f }(rotateLocked)
			rotateLocked = func() {
				go func() { started <- m.Open(context.Background()) }()
				select {
				case <-seen:
				case err := <-started:
					started <- err
					t.Errorf("a start beside the rotation did not wait for it: it ended (%v) while the rotation held its locks", err)
				}
			}
			runCLI(t, "master-key", "rotate", "--db", dsn, "--data-dir", dir, "--new-master-key-file", newKeyFile)
			if tt.oldKey {
				// Read after the rotation, the old key opens nothing:
				// the refusal says so, and names the rotation.
				err := <-started
				if err == nil || !errors.Is(err, signer.ErrWrongMasterKey) || !strings.Contains(err.Error(), "after a rotate, the new key") {
					t.Fatalf("the start with the old key that waited for the rotation: %v; want the refusal of the old key, naming the rotation", err)
				}
				return
			}
			if err := <-started; err != nil {
				t.Fatalf("the start that waited for the rotation: %v", err)
			}
			if _, err := m.store.ListSigningKeys(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := mustReadFile(t, filepath.Join(dir, "master.key")); string(got) != strings.Repeat("a5", 32)+"\n" {
				t.Errorf("master.key = %q after the rotation, want the new key", got)
			}
		})
	}
}

// A master-key rotate on PostgreSQL waits, saying so, for a server
// starting on the store (which holds its first-start lock until its
// bootstrap is done), and rotates once it has started. It re-encrypted
// the store under the start, which then failed or served the old key.
func TestMasterKeyRotateWaitsForStart(t *testing.T) {
	t.Setenv(masterKeyEnv, "")
	dsn := pgtest.SchemaDSN(t)
	oldKey, newKey := filepath.Join(t.TempDir(), "old.key"), filepath.Join(t.TempDir(), "new.key")
	mustWriteFile(t, oldKey, []byte(strings.Repeat("ab", 32)))
	mustWriteFile(t, newKey, []byte(strings.Repeat("cd", 32)))
	cfg := DefaultConfig()
	cfg.Listen, cfg.DataDir, cfg.DB, cfg.Issuer, cfg.MasterKeyFile = "127.0.0.1:0", t.TempDir(), dsn, "http://keyward.test", oldKey
	first := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := first.Open(context.Background())
	first.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A server starting: it holds the store's first-start lock.
	st, err := openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	unlock, err := st.LockFirstStart(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The holder may be an import or another rotation too (both hold
	// the lock): it said a server's start or an import alone.
	stderr := &sawWriter{want: "waiting for a server's start on this store, an import into it or another master-key rotate of it, to end", saw: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		cmd := newRootCommand()
		cmd.SetArgs([]string{"master-key", "rotate", "--db", dsn, "--master-key-file", oldKey, "--new-master-key-file", newKey})
		cmd.SetOut(io.Discard)
		cmd.SetErr(stderr)
		done <- execute(context.Background(), cmd)
	}()
	select {
	case <-stderr.saw:
		if _, err := signer.LoadPepper(context.Background(), st, mustParseKey(t, oldKey), time.Now()); err != nil {
			t.Errorf("the store, while the rotation waits: %v; want it still sealed under the old key", err)
		}
		unlock()
		if err := <-done; err != nil {
			t.Fatalf("the rotation, once the start let go: %v", err)
		}
	case err := <-done:
		unlock()
		t.Fatalf("the rotation did not wait for the server starting: it ended (%v) while the start held the store's first-start lock", err)
	case <-time.After(30 * time.Second): // not a measure: a bound on a wait that must end
		unlock()
		<-done
		t.Fatalf("the rotation did not say %q while a server started: it said %q", stderr.want, stderr.buf.String())
	}
	if _, err := signer.LoadPepper(context.Background(), st, mustParseKey(t, newKey), time.Now()); err != nil {
		t.Errorf("the store after the rotation: %v; want it sealed under the new key", err)
	}
}

// mustParseKey reads the master key in the file path.
func mustParseKey(t *testing.T, path string) []byte {
	t.Helper()
	k, err := masterkey.Parse(mustReadFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A server on PostgreSQL whose data directory the system refuses to lock
// (keyward.lock a directory here, as a read-only directory refuses it)
// starts without the lock, and warns of it only when it writes there: a
// start that finds the store bootstrapped and its master key given writes
// nothing, and warned at every start.
func TestStartUnlockedDataDir(t *testing.T) {
	t.Setenv(masterKeyEnv, "")
	masterKey := filepath.Join(t.TempDir(), "master.key")
	mustWriteFile(t, masterKey, []byte(strings.Repeat("ab", 32)))
	bootstrapped := pgtest.SchemaDSN(t)
	for _, tt := range []struct {
		name      string
		dsn       string
		masterKey string
		wantWarn  string // "": no warning of the lock
	}{
		{"nothing written", bootstrapped, masterKey, ""},
		{"master.key written", pgtest.SchemaDSN(t), "", "writes master.key there unlocked"},
		{"admin-key.json written", pgtest.SchemaDSN(t), masterKey, "writes admin-key.json there unlocked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.DB, cfg.Issuer, cfg.MasterKeyFile = "127.0.0.1:0", tt.dsn, "http://keyward.test", tt.masterKey
			if tt.dsn == bootstrapped {
				cfg.DataDir = t.TempDir()
				first := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
				err := first.Open(context.Background())
				first.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			cfg.DataDir = t.TempDir()
			if err := os.Mkdir(filepath.Join(cfg.DataDir, dataDirLock), 0o700); err != nil {
				t.Fatal(err)
			}
			var logs testkeyward.SyncBuffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			err := m.Open(context.Background())
			m.Close()
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			got := logs.String()
			if n := strings.Count(got, "could not lock"); tt.wantWarn == "" && n != 0 || tt.wantWarn != "" && n != 1 {
				t.Errorf("%d warnings of the lock, want %d; logged:\n%s", n, min(len(tt.wantWarn), 1), got)
			}
			if !strings.Contains(got, tt.wantWarn) {
				t.Errorf("logged:\n%s\nwant %q", got, tt.wantWarn)
			}
		})
	}
}
