package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return storagetest.WatchPool(s, s.WriterStats)
	})
}

func TestNoMigrateRefusesEmptyDatabase(t *testing.T) {
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{NoMigrate: true})
	if err == nil {
		t.Fatal("Open with NoMigrate accepted a database without the schema")
	}
}

// MigrateNewOnly migrates a database without a schema and opens a current
// one, but leaves an older schema as it is and refuses it: a release
// still running may be serving from it.
func TestMigrateNewOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	storagetest.MigrateNewOnly(t, func(t *testing.T, noMigrate, newOnly bool) (storage.Storage, error) {
		return sqlite.Open(context.Background(), path, sqlite.Options{NoMigrate: noMigrate, MigrateNewOnly: newOnly})
	}, execOn(path))
}

// A database a newer release migrated is refused, migrating or not.
func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, opts := range []sqlite.Options{{}, {NoMigrate: true}} {
		_, err := sqlite.Open(ctx, path, opts)
		if err == nil || !strings.Contains(err.Error(), "version 9999") {
			t.Errorf("NoMigrate=%v: err = %v, want a refusal naming version 9999", opts.NoMigrate, err)
		}
	}
}

// The audit log refuses changes from anything but PruneAudit.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := storage.AuditEvent{Time: time.Now(), Action: "x", Outcome: storage.OutcomeSuccess}
	if _, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{ev, ev}}}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DELETE FROM audit_events`, `UPDATE audit_events SET action = 'y'`} {
		if _, err := db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only refusal", q, err)
		}
	}
	// Even with the gate open, only the prefix it names can go, never the
	// newest event.
	if _, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{ev}}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM audit_events WHERE seq = 2`, `DELETE FROM audit_events WHERE seq = 3`} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_prune_gate (through) VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("gate through 1, %s: %v, want the append-only refusal", q, err)
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
			path := filepath.Join(t.TempDir(), "keyward.db")
			test(t, func(t *testing.T) storage.Storage {
				s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}, execOn(path))
		})
	}
}

// Ping fails while a table token requests need is gone.
func TestPingCannotServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storagetest.PingCannotServe(t, s, execOn(path))
}

// Taking migration 00010 back keeps the certificate tokens revoked.
func TestCertRevocationDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	storagetest.CertRevocationDown(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, execOn(path), storagetest.DownStatements(t, "migrations/00010_cert_tokens_revoked.sql"))
}

// Taking migration 00011 back, as Upgrading says, takes it back whole.
func TestEmailIndexDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	storagetest.EmailIndexDown(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, execOn(path), storagetest.DownStatements(t, "migrations/00011_account_email_lower.sql"))
}

// Upgrading gives an operator going back from migration 00011 its Down
// statements, of either backend, and the DELETE that forgets it, as
// TestEmailIndexDown runs them.
func TestEmailIndexDownDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "DEPLOYMENT.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Join(strings.Fields(string(b)), " ")
	for _, path := range []string{"migrations/00011_account_email_lower.sql", "../postgres/migrations/00011_account_email_lower.sql"} {
		stmts := append(storagetest.DownStatements(t, path), fmt.Sprintf("DELETE FROM goose_db_version WHERE version_id = %d;", storagetest.EmailIndexSince))
		if want := "`" + strings.Join(stmts, " ") + "`"; !strings.Contains(docs, want) {
			t.Errorf("docs/DEPLOYMENT.md does not give %s, the statements that take back %s", want, path)
		}
	}
}

// DeleteExpired commits each batch of a backlog on its own.
func TestExpiredInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storagetest.ExpiredInBatches(t, s, func(t *testing.T, jti string) {
		execOn(path)(t, `CREATE TRIGGER refuse_delete BEFORE DELETE ON used_jtis WHEN old.jti = '`+jti+`' BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	})
}

// execOn runs statements on the database file at path directly.
func execOn(path string) func(t *testing.T, queries ...string) {
	return storagetest.Exec("sqlite", "file:"+path)
}

// A new database, its WAL and its shared-memory file are for their owner
// alone: they hold secrets' hashes, sealed signing keys and the audit log.
func TestNewDatabaseFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes on Windows")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := storage.AuditEvent{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}
	if err := s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}, CreatedAt: time.Now()}, ev); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", filepath.Base(name), m)
		}
	}
}

// A Commit that gives up on busy_timeout (10 s) because another process
// holds the database (a backup, keyward migrate) fails with
// storage.ErrBusy, which group commit does not retry write by write.
func TestCommitBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for busy_timeout")
	}
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	_, err = s.Commit(context.Background(), []storage.Write{{Events: []storage.AuditEvent{{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}}}})
	if !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("Commit while another process holds the database: %v; want ErrBusy", err)
	}
}

// The audit chain, changed directly in the database, does not verify.
func TestAuditTamper(t *testing.T) {
	storagetest.AuditTamper(t, func(t *testing.T) storagetest.TamperDB {
		path := filepath.Join(t.TempDir(), "keyward.db")
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storagetest.TamperDB{Store: s, DB: db,
			Unguard: []string{`DROP TRIGGER audit_events_no_update`, `DROP TRIGGER audit_events_no_delete`},
			Blob:    func(b []byte) string { return fmt.Sprintf("X'%x'", b) }}
	})
}

// SQLite keeps a value of another type in a column (its tables are not
// STRICT): a time that is no integer is the log altered, as data that is
// no JSON object is, not a check that could not be finished; and, as such
// data, it leaves the event listed with the others of its page, its time
// unreadable, where it failed the whole page.
func TestAuditTamperColumnType(t *testing.T) {
	ctx := context.Background()
	for value, raw := range map[string]string{`'yesterday'`: "yesterday", `1.5`: "1.5", `X'00ff'`: "\x00\xff"} {
		t.Run(value, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyward.db")
			s, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			evs := make([]storage.AuditEvent, 3)
			for i := range evs {
				evs[i] = storage.AuditEvent{Time: time.Unix(int64(i), 0), Action: "token.issued", Outcome: storage.OutcomeSuccess}
			}
			if _, err := s.Commit(ctx, []storage.Write{{Events: evs}}); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			for _, q := range []string{`DROP TRIGGER audit_events_no_update`, `UPDATE audit_events SET time = ` + value + ` WHERE seq = 2`} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			_, err = storage.VerifyLog(ctx, s)
			if err == nil || errors.Is(err, storage.ErrUnchecked) || !errors.Is(err, storage.ErrCorruptData) ||
				!strings.Contains(err.Error(), "audit event 2 was altered: its stored time is not an integer") {
				t.Errorf("VerifyLog after the change: %v, want event 2's time, the log found altered", err)
			}
			for _, newest := range []bool{false, true} {
				got, err := s.ListAuditEvents(ctx, storage.AuditFilter{Newest: newest})
				if err != nil || len(got) != len(evs) {
					t.Fatalf("ListAuditEvents (newest %v): %d events, %v; want all %d", newest, len(got), err, len(evs))
				}
				for _, e := range got {
					stored, bad := e.UnreadableTime()
					if e.Seq == 2 {
						if !bad || stored != raw || !e.Time.IsZero() {
							t.Errorf("event 2: time %v, unreadable %v %q; want the stored %q", e.Time, bad, stored, raw)
						}
					} else if bad || !e.Time.Equal(evs[e.Seq-1].Time) {
						t.Errorf("event %d: time %v, unreadable %v %q; want %v", e.Seq, e.Time, bad, stored, evs[e.Seq-1].Time)
					}
				}
			}
		})
	}
}

// TestAuditTamperTextNotUTF8: SQLite keeps any bytes in a text column,
// and the chain hashes every byte that is not UTF-8 as the same escape:
// such a byte in a hashed column, as a changed database holds it, is
// reported altered, for it could be swapped for another unnoticed.
func TestAuditTamperTextNotUTF8(t *testing.T) {
	ctx := context.Background()
	for _, column := range []string{"action", "outcome", "account_id", "actor", "source"} {
		t.Run(column, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyward.db")
			s, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			evs := make([]storage.AuditEvent, 3)
			for i := range evs {
				evs[i] = storage.AuditEvent{Time: time.Unix(1700000000+int64(i), 0), Action: "sa\xff", Outcome: "sa\xff",
					AccountID: "sa\xff", Actor: "sa\xff", Source: "sa\xff"}
			}
			if _, err := s.Commit(ctx, []storage.Write{{Events: evs}}); err != nil {
				t.Fatal(err)
			}
			if _, err := storage.VerifyLog(ctx, s); err != nil {
				t.Fatalf("the log as written: %v", err)
			}
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			var stored string
			if err := db.QueryRowContext(ctx, `SELECT `+column+` FROM audit_events WHERE seq = 2`).Scan(&stored); err != nil || !utf8.ValidString(stored) {
				t.Errorf("stored %s %q (%v), want UTF-8", column, stored, err)
			}
			// Another byte not UTF-8 in place of the one written: both
			// hash as one escape.
			for _, q := range []string{`DROP TRIGGER audit_events_no_update`,
				`UPDATE audit_events SET ` + column + ` = CAST(X'7361fe' AS TEXT) WHERE seq = 2`} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			_, err = storage.VerifyLog(ctx, s)
			if err == nil || errors.Is(err, storage.ErrUnchecked) || !strings.Contains(err.Error(), "event 2 was altered: its "+column+" is not UTF-8") {
				t.Errorf("VerifyLog after the change: %v, want event 2's %s not UTF-8, the log found altered", err, column)
			}
		})
	}
}

// Two stores on one database append to its audit chain while one prunes it.
func TestAuditConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	var stores []storage.Storage
	for range 2 {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	storagetest.AuditConcurrent(t, stores[0], stores[1])
}

// A database file that is no SQLite database, or a damaged one, is
// refused saying so and what to do, not in SQLite's words and result code
// ("file is not a database (26)", "database disk image is malformed
// (11)"); the file is left as it is.
func TestOpenRefusesFileThatIsNoDatabase(t *testing.T) {
	good := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(context.Background(), good, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"not a database", []byte("garbage, not SQLite's header\n" + strings.Repeat("x", 4096)), "is not a SQLite database (another kind of file, or one whose start was overwritten): is it the right file? If it is Keyward's database, restore it from a backup"},
		{"cut short", db[:4096], "is damaged (cut short, or overwritten in part): restore it from a backup"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyward.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err == nil || !strings.Contains(err.Error(), path+" "+tt.want) || strings.Contains(err.Error(), "(26)") || strings.Contains(err.Error(), "(11)") {
				t.Fatalf("Open: %v\nwant %q", err, tt.want)
			}
			if got, _ := os.ReadFile(path); string(got) != string(tt.content) {
				t.Error("the refused file was changed")
			}
		})
	}
}

// A database path that cannot be opened (a directory, here) is named
// once in the error, not twice ("open PATH: open PATH: is a directory").
func TestOpenErrorNamesPathOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err == nil || strings.Count(err.Error(), path) != 1 {
		t.Fatalf("Open: %v, want an error naming %s once", err, path)
	}
	if want := "sqlite: open " + path + ": is a directory"; runtime.GOOS != "windows" && err.Error() != want {
		t.Errorf("Open: %v, want %q", err, want)
	}
}

// The loop that commits every issued token's audit event allocates little
// per event: a batch reuses what its rows repeat, and each event's data
// and hash are stored as they were prepared, not copied. The stored values
// are checked by storagetest.AuditTamper.
func TestCommitAllocsPerEvent(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commit := func(n int) float64 {
		writes := make([]storage.Write, n)
		for i := range writes {
			// Tokens issued to clients in turn: each event's account and
			// actor is another than the previous event's.
			client := fmt.Sprintf("10000000000000000000%d", i%3)
			e := storage.AuditEvent{Time: time.Now(), Action: "token.issued", Outcome: storage.OutcomeSuccess,
				AccountID: client, Actor: client, Source: fmt.Sprintf("127.0.0.1:%d", 50000+i),
				Data: map[string]string{"grant": "client_credentials", "jti": fmt.Sprint(i)}}
			e.Prepare()
			writes[i] = storage.Write{Events: []storage.AuditEvent{e}}
		}
		return testing.AllocsPerRun(5, func() {
			if _, err := s.Commit(ctx, writes); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, many := commit(1), commit(65)
	t.Logf("allocations: %v for 1 event, %v for 65: %.2f per event", one, many, (many-one)/64)
	if perEvent := (many - one) / 64; perEvent > 7 {
		t.Errorf("committing an event allocates %.2f times, want at most 7", perEvent)
	}
}

// Ping's read of the tables waits for no write lock (the database is in
// WAL mode): while another process holds one, as a migration would, Ping
// still succeeds, and at once, rather than waiting out busy_timeout;
// under an exclusive lock, which WAL readers also pass, the same.
func TestPingDuringWriteLock(t *testing.T) {
	for _, begin := range []string{"BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"} {
		t.Run(begin, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "keyward.db")
			s, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, begin); err != nil {
				t.Fatal(err)
			}
			defer conn.ExecContext(ctx, "ROLLBACK")
			if _, err := conn.ExecContext(ctx, "DELETE FROM accounts"); err != nil {
				t.Fatal(err)
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := s.Ping(pctx); err != nil {
				t.Errorf("Ping while another connection holds a write lock: %v", err)
			}
		})
	}
}
