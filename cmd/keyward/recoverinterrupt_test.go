package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// TestRecoverAdminInterrupted: recover-admin interrupted (its context
// cancelled, as SIGINT and SIGTERM do) says so and what became of the key,
// without the store's error chain; it said "create the administrator key:
// postgres: prepare auditHead: context canceled; the key was not stored,
// …".
func TestRecoverAdminInterrupted(t *testing.T) {
	m := startServer(t)
	t.Run("before anything", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		key := filepath.Join(t.TempDir(), "admin-key.json")
		err := runCLIErrContext(ctx, "recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", key)
		if want := "recover-admin interrupted: nothing was changed"; err == nil || err.Error() != want {
			t.Fatalf("recover-admin interrupted: %v, want %q", err, want)
		}
	})
	t.Run("key file written", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		key := filepath.Join(t.TempDir(), "admin-key.json")
		defer func(w func(string, io.Writer) io.Writer) { writingFile = w }(writingFile)
		writingFile = func(p string, w io.Writer) io.Writer {
			if p == key {
				cancel() // as the key file is written, before the key is stored
			}
			return w
		}
		err := runCLIErrContext(ctx, "recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", key)
		if want := "recover-admin interrupted: the key was not stored, and its key file " + key + " was removed again"; err == nil || err.Error() != want {
			t.Fatalf("recover-admin interrupted: %v, want %q", err, want)
		}
		if names := dirNames(t, filepath.Dir(key)); len(names) != 0 {
			t.Errorf("the interrupted recover-admin left %v, want nothing", names)
		}
	})
}

// keyCommitLost is a store whose CreateKey stores the key and then fails
// as a commit whose answer was lost: with cancel, cancelled (an interrupt
// during COMMIT), else a lost connection; lose also closes the store, so
// that the key cannot be looked up.
type keyCommitLost struct {
	storage.Storage
	cancel context.CancelFunc
	lose   bool
}

func (s keyCommitLost) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	if err := s.Storage.CreateKey(ctx, k, check, ev); err != nil {
		return err
	}
	if s.lose {
		s.Storage.Close()
	}
	if s.cancel == nil {
		return errors.New("sqlite: commit: connection reset")
	}
	s.cancel()
	return fmt.Errorf("sqlite: commit: %w", ctx.Err())
}

// TestRecoverAdminKeyCommitLost: recover-admin whose key's commit lost its
// answer (interrupted during COMMIT, or the connection lost) looks the key
// up before it removes the key file: a key stored keeps its file, the one
// copy of its private key, and the run goes on; one that cannot be looked
// up keeps it too, saying it is not known whether the key was stored, and
// a run again with that --key-file says the store has it. It said "the key
// was not stored" and removed the key file of a stored key.
func TestRecoverAdminKeyCommitLost(t *testing.T) {
	m := startServer(t)
	kept := "its key file %s is kept: run recover-admin again with the same --key-file to see (it says whether the store has the key)"
	for _, tt := range []struct {
		name            string
		interrupt, lose bool
		says            []string // what the error says, in order, %s the key file; none for a run done
	}{
		{"interrupted, key stored", true, false, nil},
		{"interrupted, store lost", true, true, []string{"recover-admin interrupted, maybe as the store committed: whether the new key was stored is not known, so " + kept}},
		{"connection lost, key stored", false, false, nil},
		{"connection lost, store lost", false, true, []string{"whether the new key was stored is not known: create the administrator key: sqlite: commit: connection reset; looking the key up: ",
			"; the store may have committed it, so " + kept}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			lost := keyCommitLost{lose: tt.lose}
			if tt.interrupt {
				lost.cancel = cancel
			}
			defer func(f func(storage.Storage) storage.Storage) { recoverStore = f }(recoverStore)
			recoverStore = func(st storage.Storage) storage.Storage {
				lost.Storage = st
				return lost
			}
			key := filepath.Join(t.TempDir(), "admin-key.json")
			err := runCLIErrContext(ctx, "recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", key)
			if len(tt.says) == 0 && err != nil {
				t.Fatalf("recover-admin: %v, want it done", err)
			}
			var want []string
			for _, s := range tt.says {
				want = append(want, strings.ReplaceAll(s, "%s", key))
			}
			if len(want) > 0 && (err == nil || !strings.HasPrefix(err.Error(), want[0]) || !strings.HasSuffix(err.Error(), want[len(want)-1])) {
				t.Fatalf("recover-admin: %v, want it to start %q and end %q", err, want[0], want[len(want)-1])
			}
			if _, err := os.Stat(key); err != nil {
				t.Fatalf("the key file of a key stored: %v, want it kept", err)
			}
			recoverStore = func(st storage.Storage) storage.Storage { return st }
			err = runCLIErr(t, "recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", key)
			if want := "that the store has: keep it"; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("recover-admin again with that --key-file: %v, want it to say %q", err, want)
			}
		})
	}
}

// keyNotCommittedYet is a store whose CreateKey stores nothing and fails
// as a COMMIT whose answer was lost (storage.ErrCommitUnknown), which the
// database may yet carry out after recover-admin looks the key up; with
// cancel, cancelled (an interrupt during COMMIT).
type keyNotCommittedYet struct {
	storage.Storage
	cancel context.CancelFunc
}

func (s keyNotCommittedYet) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	if s.cancel != nil {
		s.cancel()
		return fmt.Errorf("postgres: commit: %w: %w", connReset{}, ctx.Err())
	}
	return fmt.Errorf("postgres: commit: %w", connReset{})
}

// TestRecoverAdminKeyCommitUnknown: recover-admin whose key's COMMIT lost
// its answer (storage.ErrCommitUnknown) and whose look-up then finds no
// key keeps the key file, saying whether the key was stored is not known:
// the database may carry the COMMIT out after the look-up. It said the key
// was not stored and removed the key file of a key that may yet be live.
func TestRecoverAdminKeyCommitUnknown(t *testing.T) {
	m := startServer(t)
	kept := "its key file %s is kept: run recover-admin again with the same --key-file to see (it says whether the store has the key)"
	for _, tt := range []struct {
		name      string
		interrupt bool
		says      []string // what the error starts and ends with, %s the key file
	}{
		{"interrupted", true, []string{"recover-admin interrupted, maybe as the store committed: whether the new key was stored is not known, so " + kept}},
		{"connection lost", false, []string{"whether the new key was stored is not known: create the administrator key: postgres: commit: connection reset; the key was not found, but the database may yet commit it",
			"; the store may have committed it, so " + kept}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var lost keyNotCommittedYet
			if tt.interrupt {
				lost.cancel = cancel
			}
			defer func(f func(storage.Storage) storage.Storage) { recoverStore = f }(recoverStore)
			recoverStore = func(st storage.Storage) storage.Storage {
				lost.Storage = st
				return lost
			}
			key := filepath.Join(t.TempDir(), "admin-key.json")
			err := runCLIErrContext(ctx, "recover-admin", "--config=", "--data-dir", m.Config.DataDir, "--issuer", m.Issuer, "--key-file", key)
			want := []string{strings.ReplaceAll(tt.says[0], "%s", key), strings.ReplaceAll(tt.says[len(tt.says)-1], "%s", key)}
			if err == nil || !strings.HasPrefix(err.Error(), want[0]) || !strings.HasSuffix(err.Error(), want[1]) {
				t.Fatalf("recover-admin: %v, want it to start %q and end %q", err, want[0], want[1])
			}
			if _, err := os.Stat(key); err != nil {
				t.Fatalf("the key file of a key the store may yet hold: %v, want it kept", err)
			}
		})
	}
}

// armedKeyCommit is a store whose CreateKey arms a commitHolder first, so
// that the COMMIT of recover-admin's key is the one held.
type armedKeyCommit struct {
	storage.Storage
	p *commitHolder
}

func (s armedKeyCommit) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	s.p.arm(func(client net.Conn) { client.Close() })
	return s.Storage.CreateKey(ctx, k, check, ev)
}

// TestRecoverAdminKeyLateCommit: on PostgreSQL, recover-admin whose key's
// COMMIT was sent and its connection then lost, finding the key not
// stored yet, keeps the key file, which the server then stores the key
// of. It removed it, and the stored key had no private key anywhere.
func TestRecoverAdminKeyLateCommit(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	dir := t.TempDir()
	m, stop := launchServer(t, func(m *Main) { m.Config.DataDir, m.Config.DB = dir, dsn })
	issuer := m.Issuer
	stop()
	p := newCommitHolder(t, dsn)
	defer func(f func(storage.Storage) storage.Storage) { recoverStore = f }(recoverStore)
	recoverStore = func(st storage.Storage) storage.Storage { return armedKeyCommit{st, p} }
	key := filepath.Join(t.TempDir(), "admin-key.json")
	err := runCLIErr(t, "recover-admin", "--db", p.dsn, "--data-dir", dir, "--issuer", issuer, "--key-file", key)
	if !p.wasHeld() {
		t.Fatalf("recover-admin: %v, and no COMMIT was held", err)
	}
	p.let() // the COMMIT reaches the server after recover-admin looked the key up
	if want := "whether the new key was stored is not known"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("recover-admin whose COMMIT landed after it looked: %v, want it to start %q", err, want)
	}
	b, err := os.ReadFile(key)
	if err != nil {
		t.Fatalf("the key file of a key the server stored late: %v, want it kept", err)
	}
	var kf sakey.KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, err := st.GetKey(context.Background(), kf.PrivateKeyID); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("the held COMMIT did not land within 30 s")
		}
	}
}
