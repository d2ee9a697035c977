package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := postgres.Open(context.Background(), pgtest.SchemaDSN(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", postgres.Options{})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("error %q does not say which backend failed", err)
	}
}

// TestConcurrentMigrations: replicas starting at once on an empty database
// take turns migrating; all of them come up.
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err == nil {
				_, err = s.CountAccounts(context.Background())
				s.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("a replica failed to start: %v", err)
		}
	}
	if _, err := postgres.Open(context.Background(), dsn, postgres.Options{NoMigrate: true}); err != nil {
		t.Fatalf("the schema is not current after concurrent starts: %v", err)
	}
}

// The audit log refuses changes from anything but PruneAudit, whose gate
// other transactions never see open.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := storage.AuditEvent{Time: time.Now(), Action: "x", Outcome: storage.OutcomeSuccess}
	if _, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{ev, ev}}}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DELETE FROM audit_events`, `UPDATE audit_events SET action = 'y'`} {
		if _, err := db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only refusal", q, err)
		}
	}
	if _, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{ev}}}); err != nil {
		t.Fatal(err)
	}
	for name, stmts := range map[string][]string{
		// Even with the gate open, only the prefix it names can go, never
		// the newest event.
		"middle": {`INSERT INTO audit_prune_gate (through) VALUES (1)`, `DELETE FROM audit_events WHERE seq = 2`},
		"newest": {`INSERT INTO audit_prune_gate (through) VALUES (9)`, `DELETE FROM audit_events WHERE seq = 3`},
		// A temporary table of the gate's name does not open it.
		"temporary gate": {`CREATE TEMP TABLE audit_prune_gate (through BIGINT)`, `INSERT INTO pg_temp.audit_prune_gate VALUES (9)`,
			`DELETE FROM audit_events WHERE seq = 1`},
	} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var last error
		for _, q := range stmts {
			if _, last = tx.ExecContext(ctx, q); last != nil {
				break
			}
		}
		if last == nil || !strings.Contains(last.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only refusal", name, last)
		}
		tx.Rollback()
	}
}

// Migrations 00008 (the scope index) and 00009 (left-over grants and
// introspectors) rewrite what older versions stored.
func TestDataMigrations(t *testing.T) {
	for name, test := range map[string]func(*testing.T, func(*testing.T) storage.Storage, func(*testing.T, ...string)){
		"ScopeIndexBackfill": storagetest.ScopeIndexBackfill,
		"DanglingCleanup":    storagetest.DanglingCleanup,
	} {
		t.Run(name, func(t *testing.T) {
			dsn := pgtest.SchemaDSN(t)
			test(t, func(t *testing.T) storage.Storage {
				s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}, func(t *testing.T, queries ...string) {
				db, err := sql.Open("pgx", dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				for _, q := range queries {
					if _, err := db.Exec(q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
			})
		})
	}
}

// TestLoadWaitsForAccountInsert: an account another process is adding
// while Load runs (a server's CreateAccount, which takes no lock Load
// takes) makes Load wait for it and then refuse, never load into a store
// that has an account when Load commits.
func TestLoadWaitsForAccountInsert(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// The other process's CreateAccount, stopped before its commit.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, email, name, project, token_lifetime_s, created_at, updated_at)
		VALUES ('100000000000000000007', 'other@proj.example', 'other', 'proj', 3600, 0, 0)`); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	b := storage.Bulk{Accounts: []storage.Account{{ID: "100000000000000000001", Email: "one@proj.example", Name: "one", Project: "proj",
		TokenLifetime: time.Hour, CreatedAt: now, UpdatedAt: now}}}
	done := make(chan error, 1)
	go func() {
		done <- s.Load(ctx, b, []storage.AuditEvent{{Time: now, Action: "account.import", Outcome: storage.OutcomeSuccess}})
	}()

	// Load must be waiting for a lock on accounts before the insert commits.
	deadline := time.After(30 * time.Second)
	for waiting := false; !waiting; {
		select {
		case err := <-done:
			t.Fatalf("Load returned %v while an account insert was in flight, want it to wait for the insert", err)
		case <-deadline:
			t.Fatal("Load neither returned nor waited for a lock on accounts")
		case <-time.After(10 * time.Millisecond):
		}
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE relation = 'accounts'::regclass AND NOT granted)`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("Load after the insert committed: %v, want ErrNotEmpty", err)
	}
	if n, err := s.CountAccounts(ctx); err != nil || n != 1 {
		t.Fatalf("CountAccounts = %d, %v, want only the other process's account", n, err)
	}
}
