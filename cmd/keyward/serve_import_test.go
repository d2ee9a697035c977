package main

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/transfer"
)

// importBeforeBootstrap is a store into which an export is imported once
// the starting server has loaded its pepper and signing keys, just before
// its bootstrap counts the accounts, as an import of a release up to
// 2026-12-06, which takes no lock against a server on PostgreSQL, can
// (this one's waits: TestServeImportDuringBootstrap).
type importBeforeBootstrap struct {
	storage.Storage
	t    *testing.T
	dump transfer.Dump
	done bool // Open's goroutine alone reads and writes it
}

func (s *importBeforeBootstrap) CountAccounts(ctx context.Context) (int, error) {
	// The account-domain check counts them too, before anything is
	// sealed: the signing keys say the bootstrap has come.
	if keys, err := s.ListSigningKeys(ctx); err == nil && len(keys) > 0 && !s.done {
		s.done = true
		if err := transfer.Import(ctx, s.Storage, s.dump, time.Now()); err != nil {
			s.t.Errorf("import: %v", err)
		}
	}
	return s.Storage.CountAccounts(ctx)
}

// TestServeImportedWhileStarting: an import that commits while a first
// start runs, after it loaded the pepper and signing keys and before its
// bootstrap, fails the start, which would find the imported accounts,
// make no administrator and serve with the pepper and signing keys the
// import replaced: the imported secrets failing on it, the tokens it
// signed on every other server. With its own master key, the stored
// pepper no longer opens; with the exported store's, the pepper is the
// same (derived from the key) but the signing keys are not.
func TestServeImportedWhileStarting(t *testing.T) {
	src := startServer(t)
	dump, err := transfer.Export(context.Background(), src.store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		srcMaster bool
		want      string
	}{
		{"own master key", false, "an import or a 'keyward master-key rotate' changed the store while this server started: " +
			"start it again with the master key the store is now sealed under (after an import, that of the server the export came from; after a rotate, the new one)"},
		{"exported store's master key", true, "an import replaced the store while this server started: start it again (its signing keys changed)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := firstStartConfig(t)
			if tt.srcMaster {
				cfg.MasterKeyFile = generatedMasterKeyPath(src.Config)
			}
			m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wrapStore: func(s storage.Storage) storage.Storage {
				return &importBeforeBootstrap{Storage: s, t: t, dump: dump}
			}}
			defer m.Close()
			err := m.Open(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start: %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}

// importDuringBootstrap is a PostgreSQL store into which an export is
// imported, by another goroutine, as the starting server's bootstrap
// counts the accounts; the bootstrap goes on once the import has ended
// or waits for the server's start (an advisory lock of this schema's
// awaited).
type importDuringBootstrap struct {
	storage.Storage
	t        *testing.T
	db       *sql.DB
	dump     transfer.Dump
	imported chan error
}

func (s *importDuringBootstrap) CountAccounts(ctx context.Context) (int, error) {
	if keys, err := s.ListSigningKeys(ctx); err == nil && len(keys) > 0 && s.imported == nil {
		s.imported = make(chan error, 1)
		go func() { s.imported <- transfer.Import(context.Background(), s.Storage, s.dump, time.Now()) }()
		for {
			if _, waiting := pgtest.FirstStartLocks(s.t, s.db); waiting > 0 || len(s.imported) > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return s.Storage.CountAccounts(ctx)
}

// TestServeImportDuringBootstrap: on PostgreSQL, an import started while
// a first start's bootstrap counts the accounts waits for the start to
// have made its administrator, and is then refused (the store has an
// account). It committed in between: the server made its administrator,
// and wrote its key file, in the imported store, and then stopped.
func TestServeImportDuringBootstrap(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	src := startServer(t)
	dump, err := transfer.Export(context.Background(), src.store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg, _ := firstStartConfig(t)
	cfg.DB = dsn
	var hook *importDuringBootstrap
	m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wrapStore: func(s storage.Storage) storage.Storage {
		hook = &importDuringBootstrap{Storage: s, t: t, db: db, dump: dump}
		return hook
	}}
	defer m.Close()
	openErr := m.Open(context.Background())
	if hook.imported == nil {
		t.Fatalf("start: %v; no import was started during the bootstrap", openErr)
	}
	importErr := <-hook.imported
	if openErr != nil {
		t.Fatalf("start: %v (import: %v), want the start to end before the import", openErr, importErr)
	}
	if !errors.Is(importErr, transfer.ErrNotEmpty) {
		t.Fatalf("import: %v, want it refused, the store holding the administrator", importErr)
	}
	if n, err := m.store.CountAccounts(context.Background()); err != nil || n != 1 {
		t.Fatalf("the store holds %d accounts (%v), want the administrator alone", n, err)
	}
}
