package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/testkeyward"
)

// A key file saved for an administrator account another replica created
// first is removed, unless it is another file now (a data directory
// shared with that replica, which wrote its own since), even one that
// holds the same; the warning says which.
func TestDiscardKeyFile(t *testing.T) {
	ours := sakey.KeyFile{PrivateKeyID: "ours"}
	for _, tt := range []struct {
		name     string
		onDisk   *sakey.KeyFile
		replaced bool // by another file, after this one's was saved
		removed  bool
		says     string
	}{
		{"ours", &ours, false, true, "this server's was removed"},
		{"the other replica's", &sakey.KeyFile{PrivateKeyID: "theirs"}, true, false, "this server's is another file now (another server's), and was left"},
		{"another file, the same content", &ours, true, false, "this server's is another file now (another server's), and was left"},
		{"gone", nil, false, false, "this server's is gone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin-key.json")
			if err := writeKeyFile(path, ours); err != nil {
				t.Fatal(err)
			}
			written, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.onDisk == nil:
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			case tt.replaced:
				// Renamed over it, as a server writes it.
				if err := writeKeyFile(path, *tt.onDisk); err != nil {
					t.Fatal(err)
				}
			}
			var log testkeyward.SyncBuffer
			discardKeyFile(path, written, slog.New(slog.NewTextHandler(&log, nil)))
			_, err = os.Stat(path)
			if gone := os.IsNotExist(err); gone != (tt.removed || tt.onDisk == nil) {
				t.Fatalf("file gone %v, want %v", gone, tt.removed || tt.onDisk == nil)
			}
			if want := map[bool]string{true: "removed=true", false: "removed=false"}[tt.removed]; !strings.Contains(log.String(), want) || !strings.Contains(log.String(), "at the same time") || !strings.Contains(log.String(), tt.says) {
				t.Errorf("logged %q, want the warning with %s, saying %q", log.String(), want, tt.says)
			}
		})
	}
}

// firstStartConfig is the configuration of a first start on an empty
// SQLite store in a new data directory, and the path of its admin-key.json.
func firstStartConfig(t *testing.T) (Config, string) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	return cfg, filepath.Join(cfg.DataDir, "admin-key.json")
}

// writeStale leaves at path a file that is no key file.
func writeStale(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("stale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkNoHiddenKeyFile fails the test if a file moved aside
// (.admin-key.json...) is left in dir.
func checkNoHiddenKeyFile(t *testing.T, dir string) {
	t.Helper()
	if names := dirNames(t, dir); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, ".admin-key.json") }) {
		t.Errorf("a hidden file is left: %v", names)
	}
}

// bootstrapOnPublish sets the publishing hook to do, the first time m is
// about to publish a key file at path, what another server starting at
// the same moment does: bootstrap the administrator account and save its
// key file at path, keeping it in *saved. The caller restores publishing.
func bootstrapOnPublish(t *testing.T, m *Main, path, who string, saved *[]byte) {
	publishing = func(p string) {
		if p != path || *saved != nil {
			return
		}
		_, _, err := m.Server.Admin.Bootstrap(context.Background(), func(kf sakey.KeyFile) error {
			b, err := keyFileJSON(kf)
			*saved = b
			if err != nil {
				return err
			}
			return os.WriteFile(p, b, 0o600)
		})
		if err != nil {
			t.Errorf("%s first start: %v", who, err)
		}
	}
}

// startWinner starts m, which wins its first start, and returns the key
// file it saved at path.
func startWinner(t *testing.T, m *Main, path string) []byte {
	t.Helper()
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	winners, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return winners
}

// restoreWinners has m, a first start that lost, put the winner's key
// file back from aside, and checks that path then holds winners.
func restoreWinners(t *testing.T, m *Main, path, aside string, winners []byte) {
	t.Helper()
	m.restoreWinnersKeyFile(context.Background(), path, aside)
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, winners) {
		t.Fatalf("%s holds %.80q (%v), want the winner's key file", path, b, err)
	}
}

// startReplacingStale starts m, which finds a stale admin-key.json at
// path, and checks that it replaced it with its key file and left no
// other.
func startReplacingStale(t *testing.T, m *Main, path string) {
	t.Helper()
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	if m.AdminKeyFile != path {
		t.Fatalf("AdminKeyFile %q, want %s", m.AdminKeyFile, path)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) == "stale\n" {
		t.Fatalf("%s holds %q (%v), want the new key file", path, b, err)
	}
	checkNoHiddenKeyFile(t, m.Config.DataDir)
}

// Two servers sharing a data directory start at the same moment on an
// empty store: the other one saves its admin-key.json (here, from the
// publishing hook) and creates the administrator account just before
// this one puts its own key file in place. This one's does not replace
// it: the other server's key, the account's only one, stays in
// admin-key.json. It was renamed over, then removed as this server's,
// which had lost.
func TestFirstStartAdminKeyMadeMeanwhile(t *testing.T) {
	cfg, path := firstStartConfig(t)
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	var theirs []byte
	defer func(f func(string)) { publishing = f }(publishing)
	bootstrapOnPublish(t, m, path, "the other server's", &theirs)
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	if theirs == nil {
		t.Fatal("the other server did not start")
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, theirs) {
		t.Fatalf("%s holds %.60q (%v), want the other server's key file", path, b, err)
	}
	if m.AdminKeyFile != "" {
		t.Errorf("AdminKeyFile %q, want none: this server created no account", m.AdminKeyFile)
	}
	checkNoHiddenKeyFile(t, cfg.DataDir)
}

// A first start that stopped before storing its key left admin-key.json:
// the next start replaces it with a key file that works, and leaves no
// other.
func TestFirstStartStaleAdminKey(t *testing.T) {
	cfg, path := firstStartConfig(t)
	writeStale(t, path)
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	startReplacingStale(t, m, path)
}

// An admin-key.json that a first start finds there but that is gone by
// the time it would move it aside (another server starting at the same
// moment moved it aside first, or removed its own on losing) does not
// stop the start: its key file is written as a new file.
func TestFirstStartAdminKeyGoneMeanwhile(t *testing.T) {
	cfg, path := firstStartConfig(t)
	writeStale(t, path)
	defer func(r func(string, string) error) { renameFile = r }(renameFile)
	renameFile = func(from, to string) error {
		if from == path && strings.Contains(to, ".prev.") {
			os.Remove(from) // the other server's doing
		}
		return os.Rename(from, to)
	}
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	startReplacingStale(t, m, path)
}

// Three servers share a data directory and start at the same moment on
// an empty store. The winner saves admin-key.json and creates the
// administrator account; this one moves the winner's file aside and saves
// its own; a third one moves this one's aside and saves its own (here,
// from the syncDir hook); this one and the third one lose. The winner's
// key file ends up in admin-key.json, whatever order the losers clean
// up in: this one put it back only where no file was, found the third
// one's there, and left the winner's hidden; the third one then put this
// one's back, a key no account has.
func TestFirstStartThreeServersAdminKey(t *testing.T) {
	cfg, path := firstStartConfig(t)
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	var winners, thirds []byte
	var thirdsFile os.FileInfo
	thirdsAside := filepath.Join(cfg.DataDir, ".admin-key.json.prev.third")
	defer func(f func(string)) { publishing = f }(publishing)
	bootstrapOnPublish(t, m, path, "the winner's", &winners)
	defer func(f func(string) error) { syncDir = f }(syncDir)
	sync := syncDir
	syncDir = func(d string) error {
		if b, err := os.ReadFile(path); winners != nil && thirds == nil && err == nil && !bytes.Equal(b, winners) {
			// This one's file is in place: the third server moves it aside
			// and saves its own.
			if err := os.Rename(path, thirdsAside); err != nil {
				t.Fatal(err)
			}
			if thirds, err = keyFileJSON(sakey.KeyFile{ClientID: "third", PrivateKeyID: "third"}); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, thirds, 0o600); err != nil {
				t.Fatal(err)
			}
			if thirdsFile, err = os.Lstat(path); err != nil {
				t.Fatal(err)
			}
		}
		return sync(d)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	if thirds == nil {
		t.Fatal("the third server did not start")
	}
	// The third server loses too, and cleans up.
	discardKeyFile(path, thirdsFile, m.Logger)
	restoreWinners(t, m, path, thirdsAside, winners)
	checkNoHiddenKeyFile(t, cfg.DataDir)
}

// A first start that lost had moved aside a file that is no key file
// (left by an interrupted start, say): it is removed, not left hidden
// beside the winner's admin-key.json.
func TestFirstStartLostAsideNotAKeyFile(t *testing.T) {
	cfg, path := firstStartConfig(t)
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer m.Close()
	winners := startWinner(t, m, path)
	aside := filepath.Join(cfg.DataDir, ".admin-key.json.prev.1")
	writeStale(t, aside)
	restoreWinners(t, m, path, aside, winners)
	checkNoHiddenKeyFile(t, cfg.DataDir)
}

// A first start that lost puts the winner's key file back over another
// loser's; a directory that cannot be synced then is logged, as
// restoreAside logs it: a crash may yet take the file's name.
func TestFirstStartLostRestoreUnsyncedLogged(t *testing.T) {
	cfg, path := firstStartConfig(t)
	var logs testkeyward.SyncBuffer
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	defer m.Close()
	winners := startWinner(t, m, path)
	// The winner's file moved aside, another loser's in its place.
	aside := filepath.Join(cfg.DataDir, ".admin-key.json.prev.1")
	if err := os.Rename(path, aside); err != nil {
		t.Fatal(err)
	}
	if err := writeKeyFile(path, sakey.KeyFile{ClientID: "other", PrivateKeyID: "other"}); err != nil {
		t.Fatal(err)
	}
	defer func(f func(string) error) { syncDir = f }(syncDir)
	syncDir = func(string) error { return errors.New("sync failed") }
	before := len(logs.String())
	restoreWinners(t, m, path, aside, winners)
	if got := logs.String()[before:]; !strings.Contains(got, "could not be synced") || !strings.Contains(got, "sync failed") || !strings.Contains(got, "key_file="+path) {
		t.Errorf("logged %q, want the failed sync of %s", got, path)
	}
}

// Two servers start at the same moment on an empty store: the other one
// has created the administrator account (here, from the publishing hook)
// but not yet stored its key when this one loses. This one does not log
// that no administrator can get tokens from it: the winner's key is about
// to be stored.
func TestFirstStartLostNoFalseAlarm(t *testing.T) {
	cfg, path := firstStartConfig(t)
	var logs testkeyward.SyncBuffer
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	defer m.Close()
	created := false
	defer func(f func(string)) { publishing = f }(publishing)
	publishing = func(p string) {
		if p != path || created {
			return
		}
		created = true
		now := time.Now()
		a := storage.Account{ID: admin.NewClientID(), Email: m.Server.Admin.Email(admin.AdminAccountName, admin.AdminProject), Name: admin.AdminAccountName,
			Project: admin.AdminProject, Scopes: []string{admin.AdminScope}, TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods,
			CreatedAt: now, UpdatedAt: now}
		if _, err := m.Server.Admin.CreateAPI(context.Background(), admin.Actor{ID: "system"}, admin.APIInput{
			Name: admin.BuiltinAPIName, Identifier: admin.BuiltinAPIIdentifier, Scopes: []string{admin.AdminScope, admin.IntrospectScope},
		}); err != nil {
			t.Errorf("the other server's built-in API: %v", err)
		}
		if err := m.store.CreateAccount(context.Background(), a, storage.AuditEvent{Time: now, Action: "account.create", Outcome: storage.OutcomeSuccess, Actor: "system"}); err != nil {
			t.Errorf("the other server's account: %v", err)
		}
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	if !created || m.AdminKeyFile != "" {
		t.Fatalf("the other server created the account: %v; AdminKeyFile %q, want none", created, m.AdminKeyFile)
	}
	if !strings.Contains(logs.String(), "at the same time") {
		t.Fatalf("this server did not lose:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "no administrator can get tokens") {
		t.Errorf("warned that no administrator can get tokens:\n%s", logs.String())
	}
}

// A first start whose key was not stored (here, its directory could not
// be synced) had moved aside the admin-key.json it found, and finds
// another server's file in its place: what it moved aside is removed if
// it is no key file, and otherwise, the store not knowing whose it is,
// left aside with a warning that says where and what to do, not hidden
// without a word.
func TestFirstStartNotStoredAsideLogged(t *testing.T) {
	others, err := keyFileJSON(sakey.KeyFile{ClientID: "other", PrivateKeyID: "other"})
	if err != nil {
		t.Fatal(err)
	}
	keyFile, err := keyFileJSON(sakey.KeyFile{ClientID: "before", PrivateKeyID: "before"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		before []byte
		kept   bool
	}{
		{"a key file", keyFile, true},
		{"no key file", []byte("stale\n"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, path := firstStartConfig(t)
			if err := os.WriteFile(path, tt.before, 0o600); err != nil {
				t.Fatal(err)
			}
			defer func(f func(string) error) { syncDir = f }(syncDir)
			sync := syncDir
			syncDir = func(d string) error {
				if b, err := os.ReadFile(path); err == nil && !bytes.Equal(b, tt.before) && !bytes.Equal(b, others) {
					// This one's file is in place: another server's replaces it,
					// renamed over it.
					if err := os.WriteFile(path+".other", others, 0o600); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(path+".other", path); err != nil {
						t.Fatal(err)
					}
					return errors.New("sync failed")
				}
				return sync(d)
			}
			var logs testkeyward.SyncBuffer
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			defer m.Close()
			if err := m.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "sync failed") {
				t.Fatalf("start: %v, want the failed sync", err)
			}
			if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, others) {
				t.Fatalf("%s holds %.80q (%v), want the other server's key file", path, b, err)
			}
			var aside []string
			for _, n := range dirNames(t, cfg.DataDir) {
				if strings.HasPrefix(n, ".admin-key.json") {
					aside = append(aside, filepath.Join(cfg.DataDir, n))
				}
			}
			if !tt.kept {
				if len(aside) > 0 {
					t.Errorf("a hidden file is left: %v", aside)
				}
				return
			}
			if len(aside) != 1 {
				t.Fatalf("hidden files %v, want the one moved aside", aside)
			}
			if b, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(b, tt.before) {
				t.Fatalf("%s holds %.80q (%v), want the file moved aside", aside[0], b, err)
			}
			if got := logs.String(); !strings.Contains(got, "key_file="+aside[0]) || !strings.Contains(got, "rename it to admin-key.json") {
				t.Errorf("logged %q, want where the file moved aside is and what to do", got)
			}
		})
	}
}

// keyStoredThenLost is a store whose CreateKey stores the key and then
// fails, as a commit that took place but whose answer was lost with the
// connection; with down, the store answers no read after that; with
// cancel, the start is cancelled (SIGTERM) as it fails.
type keyStoredThenLost struct {
	storage.Storage
	down, lost bool // Open's goroutine alone reads and writes them
	cancel     context.CancelFunc
}

func (s *keyStoredThenLost) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	if err := s.Storage.CreateKey(ctx, k, check, ev); err != nil {
		return err
	}
	s.lost = true
	if s.cancel != nil {
		s.cancel()
	}
	return errors.New("connection lost")
}

func (s *keyStoredThenLost) GetAccountByEmail(ctx context.Context, email string) (storage.Account, error) {
	if s.down && s.lost {
		return storage.Account{}, errors.New("connection refused")
	}
	return s.Storage.GetAccountByEmail(ctx, email)
}

// A first start that moved aside a stale admin-key.json fails after its
// administrator key was stored (a commit that took place, its answer
// lost): its key file, the account's only key, stays in admin-key.json,
// whether the store says the key is stored (the stale file is removed)
// or cannot tell (the stale file is left aside, logged). It was removed
// and the stale file put back: the next start, finding the key stored,
// made none, and no administrator could sign in. A start cancelled
// meanwhile still gets the store's answer: its lookups ran on the
// cancelled context, and the store could not tell.
func TestFirstStartFailedAfterKeyStored(t *testing.T) {
	for _, tt := range []struct {
		name      string
		down      bool
		cancelled bool
		logged    string
		asideLeft bool
	}{
		{"stored", false, false, "failed after the administrator key was stored", false},
		{"store cannot tell", true, false, "cannot tell whether the administrator key was stored", true},
		{"start cancelled", false, true, "failed after the administrator key was stored", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, path := firstStartConfig(t)
			writeStale(t, path)
			var logs testkeyward.SyncBuffer
			var st *keyStoredThenLost
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil)), wrapStore: func(s storage.Storage) storage.Storage {
				st = &keyStoredThenLost{Storage: s, down: tt.down}
				if tt.cancelled {
					st.cancel = cancel
				}
				return st
			}}
			closed := false
			defer func() {
				if !closed {
					m.Close()
				}
			}()
			if err := m.Open(ctx); err == nil || !strings.Contains(err.Error(), "connection lost") {
				t.Fatalf("start: %v, want the lost connection", err)
			}
			st.down = false
			checkStoredAdminKey(t, m, path)
			if !strings.Contains(logs.String(), tt.logged) {
				t.Errorf("logged %q, want %q", logs.String(), tt.logged)
			}
			var aside []string
			for _, n := range dirNames(t, cfg.DataDir) {
				if strings.HasPrefix(n, ".admin-key.json") {
					aside = append(aside, n)
				}
			}
			if tt.asideLeft != (len(aside) == 1) || len(aside) > 1 {
				t.Errorf("hidden files %v, want the stale one: %v", aside, tt.asideLeft)
			}
			m.Close()
			closed = true

			again := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			defer again.Close()
			if err := again.Open(context.Background()); err != nil {
				t.Fatalf("start again: %v", err)
			}
			checkStoredAdminKey(t, again, path)
		})
	}
}

// checkStoredAdminKey fails the test unless path is a key file of the
// administrator account m's store holds, with a key the store holds.
func checkStoredAdminKey(t *testing.T, m *Main, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf sakey.KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ctx := context.Background()
	a, err := m.store.GetAccountByEmail(ctx, m.Server.Admin.Email(admin.AdminAccountName, admin.AdminProject))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := m.store.ListKeys(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if kf.ClientID != a.ID || !slices.ContainsFunc(keys, func(k storage.Key) bool { return k.ID == kf.PrivateKeyID }) {
		t.Errorf("%s holds key %s of %s; the administrator is %s with keys %v", path, kf.PrivateKeyID, kf.ClientID, a.ID, keys)
	}
}

// keptAsOld returns the files path.<time>.old in dir, each checked to
// hold want, and fails the test unless logs names each one.
func keptAsOld(t *testing.T, dir, logs string, want []byte) []string {
	t.Helper()
	var kept []string
	for _, n := range dirNames(t, dir) {
		if strings.HasPrefix(n, "admin-key.json.") && strings.HasSuffix(n, ".old") {
			p := filepath.Join(dir, n)
			kept = append(kept, p)
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
				t.Errorf("%s holds %.80q (%v), want the other store's key file", p, b, err)
			}
			if !strings.Contains(logs, "key_file="+p) {
				t.Errorf("logged %q, want the warning naming %s", logs, p)
			}
		}
	}
	return kept
}

// A first start finds in its data directory the admin-key.json of another
// store: that of the SQLite database the directory served before a first
// start on PostgreSQL, or one a start that lost had moved aside. It holds
// no key of this store's administrator, but may be the other store's
// only one: it is kept beside the new admin-key.json, as
// admin-key.json.<time>.old, and a warning names it. It was deleted.
func TestFirstStartKeepsOtherStoresKeyFile(t *testing.T) {
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, cfg Config, path string, others []byte, logs *testkeyward.SyncBuffer)
	}{
		{"PostgreSQL after SQLite", func(t *testing.T, cfg Config, path string, _ []byte, logs *testkeyward.SyncBuffer) {
			cfg.DB = pgtest.SchemaDSN(t)
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil))}
			defer m.Close()
			if err := m.Open(context.Background()); err != nil {
				t.Fatalf("start on PostgreSQL: %v", err)
			}
			if m.AdminKeyFile != path {
				t.Fatalf("AdminKeyFile %q, want %s", m.AdminKeyFile, path)
			}
			checkStoredAdminKey(t, m, path)
		}},
		{"PostgreSQL after SQLite, without links", func(t *testing.T, cfg Config, path string, _ []byte, logs *testkeyward.SyncBuffer) {
			// A file system that refuses both a hard link and a rename
			// that does not replace: the key file was renamed over.
			defer func(l func(string, string) error, r func(string, string) error) { linkFile, renameNew = l, r }(linkFile, renameNew)
			linkFile = func(o, n string) error { return &os.LinkError{Op: "link", Old: o, New: n, Err: syscall.EPERM} }
			renameNew = func(string, string) error { return errors.ErrUnsupported }
			cfg.DB = pgtest.SchemaDSN(t)
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil))}
			defer m.Close()
			if err := m.Open(context.Background()); err != nil {
				t.Fatalf("start on PostgreSQL: %v", err)
			}
			checkStoredAdminKey(t, m, path)
		}},
		{"lost", func(t *testing.T, cfg Config, path string, others []byte, logs *testkeyward.SyncBuffer) {
			aside := filepath.Join(cfg.DataDir, ".admin-key.json.prev.1")
			if err := os.Rename(path, aside); err != nil {
				t.Fatal(err)
			}
			cfg.DataDir = t.TempDir() // a new SQLite store, which wins
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil))}
			defer m.Close()
			winners := startWinner(t, m, filepath.Join(cfg.DataDir, "admin-key.json"))
			if err := os.WriteFile(path, winners, 0o600); err != nil {
				t.Fatal(err)
			}
			restoreWinners(t, m, path, aside, winners)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, path := firstStartConfig(t)
			sqlite := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if err := sqlite.Open(context.Background()); err != nil {
				t.Fatalf("start on SQLite: %v", err)
			}
			sqlite.Close()
			others, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var logs testkeyward.SyncBuffer
			tt.run(t, cfg, path, others, &logs)
			if b, err := os.ReadFile(path); err != nil || bytes.Equal(b, others) {
				t.Errorf("%s holds %.80q (%v), want this store's key file", path, b, err)
			}
			if kept := keptAsOld(t, cfg.DataDir, logs.String(), others); len(kept) != 1 {
				t.Errorf("kept %v, want the other store's key file", kept)
			}
			checkNoHiddenKeyFile(t, cfg.DataDir)
		})
	}
}

// keyNotStored is a store whose CreateKey fails without storing the key:
// a first start stopped between creating the administrator account and
// storing its key.
type keyNotStored struct{ storage.Storage }

func (keyNotStored) CreateKey(context.Context, storage.Key, func([]storage.Key) error, storage.AuditEvent) error {
	return errors.New("disk full")
}

// A first start stopped between creating the administrator account and
// storing its key left its admin-key.json, a key of that account no one
// has: the next start, which gives the account its key, removes it, as
// it did before files moved aside were kept. It was kept as
// admin-key.json.<time>.old, with a warning that it may be another
// store's administrator key, which a key of this store's administrator
// account cannot be.
func TestFirstStartInterruptedKeyFileRemoved(t *testing.T) {
	cfg, path := firstStartConfig(t)
	first := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wrapStore: func(s storage.Storage) storage.Storage {
		return keyNotStored{s}
	}}
	if err := first.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("first start: %v, want its key not stored", err)
	}
	first.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the interrupted first start left no key file: %v", err)
	}
	var logs testkeyward.SyncBuffer
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	defer m.Close()
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if m.AdminKeyFile != path {
		t.Fatalf("AdminKeyFile %q, want %s", m.AdminKeyFile, path)
	}
	checkStoredAdminKey(t, m, path)
	if kept := keptAsOld(t, cfg.DataDir, logs.String(), nil); len(kept) > 0 || strings.Contains(logs.String(), "kept under another name") {
		t.Errorf("kept %v, logged %q; want the interrupted start's key file removed", kept, logs.String())
	}
	checkNoHiddenKeyFile(t, cfg.DataDir)
}

// keyCommitUnknown is a store whose CreateKey fails as a COMMIT whose
// answer was lost (storage.ErrCommitUnknown): with commit, once the key
// is stored, else with nothing stored (a COMMIT the database may yet
// carry out); with down, the store answers no read after that.
type keyCommitUnknown struct {
	storage.Storage
	commit, down, lost bool // Open's goroutine alone reads and writes them
}

func (s *keyCommitUnknown) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	if s.commit {
		if err := s.Storage.CreateKey(ctx, k, check, ev); err != nil {
			return err
		}
	}
	s.lost = true
	return fmt.Errorf("postgres: commit: %w", connReset{})
}

func (s *keyCommitUnknown) GetAccountByEmail(ctx context.Context, email string) (storage.Account, error) {
	if s.down && s.lost {
		return storage.Account{}, errors.New("connection refused")
	}
	return s.Storage.GetAccountByEmail(ctx, email)
}

// A first start whose administrator key's COMMIT lost its answer
// (storage.ErrCommitUnknown) keeps its key file, and says what is known:
// the key stored, or whether it was not known (the store not answering,
// or not holding the key, which the database may yet store). It kept the
// file without a word when nothing was moved aside for it, and removed it
// (putting the file that was there back) when the store did not hold the
// key yet.
func TestFirstStartKeyCommitLost(t *testing.T) {
	stored := "the administrator key was stored all the same: its key file %s stays, and works"
	unknown := "whether the administrator key was stored is not known: its key file %s stays, since it may be the only way in; start the server again: it keeps the file if the store has the key, and replaces it with a new key if not"
	for _, tt := range []struct {
		name                string
		stale, commit, down bool
		says                string // what the error ends with, %s the key file
		asideLeft           bool   // the stale file is left aside
	}{
		{"stored", false, true, false, stored, false},
		{"not stored yet", false, false, false, unknown, false},
		{"store cannot tell", false, true, true, unknown, false},
		{"stale file, stored", true, true, false, stored, false},
		{"stale file, not stored yet", true, false, false, unknown, true},
		{"stale file, store cannot tell", true, true, true, unknown, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, path := firstStartConfig(t)
			if tt.stale {
				writeStale(t, path)
			}
			var st *keyCommitUnknown
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wrapStore: func(s storage.Storage) storage.Storage {
				st = &keyCommitUnknown{Storage: s, commit: tt.commit, down: tt.down}
				return st
			}}
			err := m.Open(context.Background())
			if want := strings.ReplaceAll(tt.says, "%s", path); err == nil || !strings.HasPrefix(err.Error(), "bootstrap: create the administrator key: postgres: commit: connection reset") ||
				!strings.HasSuffix(err.Error(), want) {
				m.Close()
				t.Fatalf("start: %v, want the lost commit and %q", err, want)
			}
			st.down = false
			a, err := m.store.GetAccountByEmail(context.Background(), m.Server.Admin.Email(admin.AdminAccountName, admin.AdminProject))
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(path); err != nil || keyFileOf(b) != a.ID {
				t.Errorf("%s holds %.80q (%v), want the administrator's key file, kept", path, b, err)
			}
			var aside []string
			for _, n := range dirNames(t, cfg.DataDir) {
				if strings.HasPrefix(n, ".admin-key.json") {
					aside = append(aside, n)
				}
			}
			if tt.asideLeft != (len(aside) == 1) || len(aside) > 1 {
				t.Errorf("hidden files %v, want the stale one: %v", aside, tt.asideLeft)
			}
			m.Close()

			again := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			defer again.Close()
			if err := again.Open(context.Background()); err != nil {
				t.Fatalf("start again: %v", err)
			}
			checkStoredAdminKey(t, again, path)
		})
	}
}

// TestFirstStartKeyLateCommit: on PostgreSQL, a first start whose
// administrator key's COMMIT was sent and its connection then lost,
// finding the key not stored yet, keeps admin-key.json, which the server
// then stores the key of. It removed it, putting back the file it had
// moved aside, and the next start, finding the key stored, made none: no
// key file opened the administrator account.
func TestFirstStartKeyLateCommit(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	p := newCommitHolder(t, dsn)
	cfg, path := firstStartConfig(t)
	cfg.DB = p.dsn
	writeStale(t, path)
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wrapStore: func(s storage.Storage) storage.Storage {
		return armedKeyCommit{s, p}
	}}
	err := m.Open(context.Background())
	email := m.Server.Admin.Email(admin.AdminAccountName, admin.AdminProject)
	m.Close()
	if !p.wasHeld() {
		t.Fatalf("start: %v, and no COMMIT was held", err)
	}
	p.let() // the COMMIT reaches the server after the start looked the key up
	if want := "whether the administrator key was stored is not known"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("start whose key's COMMIT landed after it looked: %v, want it to say %q", err, want)
	}
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		a, err := st.GetAccountByEmail(context.Background(), email)
		if err != nil {
			t.Fatal(err)
		}
		if keys, err := st.ListKeys(context.Background(), a.ID); err == nil && len(keys) > 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("the held COMMIT did not land within 30 s")
		}
	}
	cfg.DB = dsn
	again := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer again.Close()
	if err := again.Open(context.Background()); err != nil {
		t.Fatalf("start again: %v", err)
	}
	checkStoredAdminKey(t, again, path)
}
