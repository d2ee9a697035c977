package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/sqlstore"
	"github.com/keyward/keyward/internal/storage/storagetest"
	"github.com/keyward/keyward/internal/testkeyward"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		dsn := pgtest.SchemaDSN(t)
		// The store's connections have an application_name of their own:
		// pg_locks shows when one waits for another's transaction.
		app := "keyward-conformance-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		s, err := postgres.Open(context.Background(), withApplicationName(dsn, app), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storagetest.Watch(s, func() func() bool {
			return func() bool { return waitsInApp(t, db, app) }
		})
	})
}

// waitsInApp reports whether a session of application app waits for a
// lock another of its sessions holds.
func waitsInApp(t *testing.T, db *sql.DB, app string) bool {
	var waits bool
	err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity w ON w.pid = l.pid
		JOIN pg_stat_activity h ON h.pid = ANY(pg_blocking_pids(l.pid))
		WHERE NOT l.granted AND w.application_name = $1 AND h.application_name = $1)`, app).Scan(&waits)
	if err != nil {
		t.Errorf("reading pg_locks: %v", err)
	}
	return waits
}

// withApplicationName returns dsn, a URL or key=value string, with
// application_name app.
func withApplicationName(dsn, app string) string { return withSetting(dsn, "application_name", app) }

// withSetting returns dsn with the run-time parameter key set to value.
func withSetting(dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn + " " + key + "=" + value
	}
	q := u.Query()
	q.Set(key, value)
	// pgx reads a + in the query as itself, not as a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String()
}

// Open warns when PostgreSQL answers commits before they are on disk
// (synchronous_commit off), and only then.
func TestOpenWarnsOfUndurableCommits(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	for _, tt := range []struct {
		setting string // synchronous_commit in the DSN, "" for the server's
		warned  bool
	}{
		{"", false},
		{"on", false},
		{"local", false},
		{"off", true},
	} {
		t.Run("synchronous_commit="+tt.setting, func(t *testing.T) {
			d := dsn
			if tt.setting != "" {
				d = withSetting(dsn, "synchronous_commit", tt.setting)
			}
			var out testkeyward.SyncBuffer
			st, err := postgres.Open(context.Background(), d, postgres.Options{Logger: slog.New(slog.NewTextHandler(&out, nil))})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if warned := strings.Contains(out.String(), "commits are not durable"); warned != tt.warned {
				t.Fatalf("warned %v, want %v; the log: %s", warned, tt.warned, out.String())
			}
		})
	}
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

// TestMigrationWaitsForLock: a replica starting while another holds the
// migration lock (goose's key) waits for it in PostgreSQL, where
// pg_locks shows it waiting on the holder, and comes up once it is
// released: it does not poll, each try up to 5 s after the lock was
// free, which made replicas starting together take 5 s a turn.
func TestMigrationWaitsForLock(t *testing.T) {
	h := holdMigrationLock(t, pgtest.SchemaDSN(t), nil)
	opened := h.open(context.Background())
	h.awaitWaiter(opened)
	h.unlock()
	if err := <-opened; err != nil {
		t.Fatalf("Open after the lock was released: %v", err)
	}
}

// TestMigrationLockWaitIgnoresTimeouts: a replica whose role or DSN sets
// a statement_timeout or lock_timeout shorter than the migration it waits
// for still waits, and comes up once the lock is released, rather than
// failing after the timeout with PostgreSQL's error.
func TestMigrationLockWaitIgnoresTimeouts(t *testing.T) {
	for _, setting := range []string{"lock_timeout", "statement_timeout"} {
		t.Run(setting, func(t *testing.T) {
			dsn := pgtest.SchemaDSN(t)
			// The schema is current: the replica only waits for the lock.
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			h := holdMigrationLock(t, dsn, url.Values{"options": {"-c " + setting + "=100ms"}})
			opened := h.open(context.Background())
			h.awaitWaiter(opened)
			// Hold the lock well past the timeout.
			select {
			case err := <-opened:
				t.Fatalf("Open returned while another session held the migration lock (%s=100ms): %v", setting, err)
			case <-time.After(time.Second):
			}
			h.unlock()
			if err := <-opened; err != nil {
				t.Fatalf("Open after the lock was released (%s=100ms): %v", setting, err)
			}
		})
	}
}

// TestMigrationLockOwnDeadline: a replica whose own deadline passes
// while it waits for the migration lock says so, not that another
// replica held the lock for the 5 minutes a replica waits at most.
func TestMigrationLockOwnDeadline(t *testing.T) {
	h := holdMigrationLock(t, pgtest.SchemaDSN(t), nil)
	conn, err := h.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = postgres.MigrationLocker{}.SessionLock(ctx, conn)
	if err == nil {
		t.Fatal("SessionLock succeeded while another session held the migration lock")
	}
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "held the migration lock") {
		t.Fatalf("SessionLock past its caller's deadline: got %q, want context.DeadlineExceeded, not that the lock was held for its 5 minutes", err)
	}
}

// TestMigrationLockHeldAfterCommit: the lock SessionLock takes inside a
// transaction is the session's: after the transaction commits, another
// session still cannot take it, until SessionUnlock.
func TestMigrationLockHeldAfterCommit(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", pgtest.SchemaDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var conns [2]*sql.Conn
	for i := range conns {
		if conns[i], err = db.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	tryLock := func() bool {
		t.Helper()
		var got bool
		if err := conns[1].QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", lock.DefaultLockID).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got {
			if _, err := conns[1].ExecContext(ctx, "SELECT pg_advisory_unlock($1)", lock.DefaultLockID); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	var l postgres.MigrationLocker
	// Another package's tests may hold the lock for a moment: SessionLock
	// waits for them.
	if err := l.SessionLock(ctx, conns[0]); err != nil {
		t.Fatal(err)
	}
	var xids [2]int64
	for i := range xids {
		if err := conns[0].QueryRowContext(ctx, "SELECT txid_current()").Scan(&xids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if xids[0] == xids[1] {
		t.Error("SessionLock left its session in a transaction")
	}
	if tryLock() {
		t.Fatal("another session took the migration lock after SessionLock returned")
	}
	if err := l.SessionUnlock(ctx, conns[0]); err != nil {
		t.Fatal(err)
	}
	// Another package's tests may take it now: no assertion that this one can.
}

// lockHolder holds the migration lock in a session of its own, as a
// replica migrating does, for a test of the replicas waiting for it.
type lockHolder struct {
	t      *testing.T
	db     *sql.DB
	dsn    string // the waiters' DSN: the test's application_name and params
	app    string
	pid    int
	unlock func()
}

// holdMigrationLock takes the migration lock on dsn's database, until
// unlock or the test's end. Replicas the holder opens connect with params
// added to dsn.
func holdMigrationLock(t *testing.T, dsn string, params url.Values) *lockHolder {
	t.Helper()
	ctx := context.Background()
	h := &lockHolder{t: t, app: "keyward-lock-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", h.app)
	u.RawQuery = q.Encode()
	if h.db, err = sql.Open("pgx", u.String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.db.Close() })
	for k, v := range params {
		q[k] = v
	}
	// pgx reads a + in the query as itself, not as a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	h.dsn = u.String()

	holder, err := h.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&h.pid); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lock.DefaultLockID); err != nil {
		t.Fatal(err)
	}
	h.unlock = sync.OnceFunc(func() {
		if _, err := holder.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", lock.DefaultLockID); err != nil {
			t.Error(err)
		}
		holder.Close()
	})
	t.Cleanup(h.unlock)
	return h
}

// open starts a replica: Open on the holder's DSN, whose error it sends.
func (h *lockHolder) open(ctx context.Context) <-chan error {
	opened := make(chan error, 1)
	go func() {
		s, err := postgres.Open(ctx, h.dsn, postgres.Options{})
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	return opened
}

// awaitWaiter returns once pg_locks shows a replica of the holder's
// waiting for the lock behind it; it fails the test if Open returns first.
func (h *lockHolder) awaitWaiter(opened <-chan error) {
	h.t.Helper()
	// Another package's tests may wait on the lock too: count only this
	// test's connections, by their application_name.
	waiting := `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = $1 AND $2 = ANY(pg_blocking_pids(l.pid))`
	giveUp := time.After(30 * time.Second)
	for n := 0; n == 0; {
		select {
		case err := <-opened:
			h.t.Fatalf("Open returned while another session held the migration lock: %v", err)
		case <-giveUp:
			h.t.Fatal("Open did not wait for the migration lock in PostgreSQL (pg_locks shows no waiter of it)")
		case <-time.After(20 * time.Millisecond):
		}
		if err := h.db.QueryRowContext(context.Background(), waiting, h.app, h.pid).Scan(&n); err != nil {
			h.t.Fatal(err)
		}
	}
}

// The audit log refuses changes from anything but PruneAudit, whose gate
// other transactions never see open.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s, db := storeAndDB(t)
	ev := storage.AuditEvent{Time: time.Now(), Action: "x", Outcome: storage.OutcomeSuccess}
	if _, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{ev, ev}}}); err != nil {
		t.Fatal(err)
	}
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

// Ping fails while a table token requests need is gone.
func TestPingCannotServe(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storagetest.PingCannotServe(t, s, execOn(dsn))
}

// A connection lost after Ping's ping, before its read of the tables
// (here its session ended as the read starts, as a server going down, or
// an operator's pg_terminate_backend, would end it), is reported as
// lost, not as a database that answers but cannot read its tables,
// which sent an operator to look for missing tables or privileges.
func TestPingConnectionLost(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cut := &readCutter{admin: admin}
	cfg.Tracer = cut
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	st := postgres.NewOn(db)
	if err := st.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	cut.on.Store(true)
	err = st.Ping(context.Background())
	cut.on.Store(false)
	if err == nil {
		t.Fatal("Ping with its read's connection ended: nil, want an error")
	}
	if errors.Is(err, storage.ErrCannotServe) || strings.Contains(err.Error(), "cannot read the tables") {
		t.Errorf("Ping with its read's connection ended: %v; want it said lost, not ErrCannotServe", err)
	}
	if !strings.Contains(err.Error(), "the connection to it was lost") {
		t.Errorf("Ping with its read's connection ended: %v; want it to say the connection was lost", err)
	}
}

// readCutter, while on, ends the session of each query of Ping's read of
// the tables as the query starts, after the ping.
type readCutter struct {
	admin *sql.DB
	on    atomic.Bool
}

func (c *readCutter) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !c.on.Load() || !strings.Contains(data.SQL, "FROM accounts WHERE id = ''") {
		return ctx
	}
	pid := conn.PgConn().PID()
	c.admin.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid)
	for range 500 { // until the session is gone, up to 5 s
		var n int
		if c.admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ctx
}

func (c *readCutter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

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
			}, execOn(dsn))
		})
	}
}

// Taking migration 00010 back keeps the certificate tokens revoked.
func TestCertRevocationDown(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	storagetest.CertRevocationDown(t, func(t *testing.T) storage.Storage {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, execOn(dsn), storagetest.DownStatements(t, "migrations/00010_cert_tokens_revoked.sql"))
}

// Taking migration 00011 back, as Upgrading says, takes it back whole.
func TestEmailIndexDown(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	storagetest.EmailIndexDown(t, func(t *testing.T) storage.Storage {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, execOn(dsn), storagetest.DownStatements(t, "migrations/00011_account_email_lower.sql"))
}

// DeleteExpired commits each batch of a backlog on its own.
func TestExpiredInBatches(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storagetest.ExpiredInBatches(t, s, func(t *testing.T, jti string) {
		execOn(dsn)(t, `CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused'; END$$`,
			`CREATE TRIGGER refuse_delete BEFORE DELETE ON used_jtis FOR EACH ROW WHEN (old.jti = '`+jti+`') EXECUTE FUNCTION refuse_delete()`)
	})
}

// execOn runs statements on the schema of dsn directly.
func execOn(dsn string) func(t *testing.T, queries ...string) { return storagetest.Exec("pgx", dsn) }

// MigrateNewOnly migrates a schema that has no tables yet and opens a
// current one, but leaves an older schema as it is and refuses it: a
// release still running may be serving from it.
func TestMigrateNewOnly(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	storagetest.MigrateNewOnly(t, func(t *testing.T, noMigrate, newOnly bool) (storage.Storage, error) {
		return postgres.Open(context.Background(), dsn, postgres.Options{NoMigrate: noMigrate, MigrateNewOnly: newOnly})
	}, execOn(dsn))
}

// TestLoadWaitsForAccountInsert: an account another process is adding
// while Load runs (a server's CreateAccount, which takes no lock Load
// takes) makes Load wait for it and then refuse, never load into a store
// that has an account when Load commits.
func TestLoadWaitsForAccountInsert(t *testing.T) {
	ctx := context.Background()
	s, db := storeAndDB(t)

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

// TestPlacementRacingPlacementLocksOrgLeft: a project placed in an
// organization by another transaction while PutProjectOrg, having read it
// in none, already holds the organization it is placed in. Once that
// placement commits, PutProjectOrg's write moves the project out of the
// other organization, so it must lock that one too: an UpdateOrg of it
// that was given the project must not see the move commit while it holds
// the row (its If-Match passed on a state the move changes, and what it
// answers names a project no longer there). A PutProjectOrg that wrote
// over the placement as found, locking only where it read the project
// was, moved it out unlocked.
func TestPlacementRacingPlacementLocksOrgLeft(t *testing.T) {
	ctx := context.Background()
	s, db := storeAndDB(t)
	ev := func(a string) storage.AuditEvent {
		return storage.AuditEvent{Time: time.Now(), Action: a, Outcome: storage.OutcomeSuccess}
	}
	for _, d := range []string{"a.example", "b.example"} {
		if err := s.CreateOrg(ctx, storage.Org{Domain: d, CreatedAt: time.Now()}, ev("org.create")); err != nil {
			t.Fatal(err)
		}
	}

	// The other placement, of shop in a.example, stopped before its commit.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT domain FROM orgs WHERE domain = 'a.example' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO project_orgs (project, org, internal) VALUES ('shop', 'a.example', 0)`); err != nil {
		t.Fatal(err)
	}
	var xid string
	if err := tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}

	committed := make(chan struct{})
	checked, release := make(chan struct{}), make(chan struct{})
	moved := make(chan error, 1)
	go func() {
		moved <- s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: "b.example"}, func(storage.Org, []storage.ProjectOrg) error {
			select {
			case <-committed:
			default: // checked before the other placement committed
				close(checked)
				<-release
			}
			return nil
		}, ev("org.project"))
	}()
	// Until its check is called or it waits for the other placement.
	deadline := time.After(30 * time.Second)
	for waiting := false; !waiting; {
		select {
		case <-checked:
			waiting = true
			continue
		case err := <-moved:
			t.Fatalf("PutProjectOrg returned %v while the other placement was in flight", err)
		case <-deadline:
			t.Fatal("PutProjectOrg neither checked nor waited for the other placement")
		case <-time.After(10 * time.Millisecond):
		}
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted)`, xid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	close(committed)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	var given []storage.ProjectOrg
	entered, done := make(chan struct{}), make(chan struct{})
	updated := make(chan error, 1)
	go func() {
		_, _, err := s.UpdateOrg(ctx, "a.example", func(o storage.Org, projects []storage.ProjectOrg) (storage.Org, error) {
			given = projects
			close(entered)
			<-done
			o.BlockedScopes = []string{"mail.send"}
			return o, nil
		}, ev("org.policy"))
		updated <- err
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("UpdateOrg's fn was not called")
	}
	select {
	case <-checked:
		close(release)
	default:
	}
	var errMove error
	gotMove := false
	if len(given) == 1 {
		select {
		case errMove = <-moved:
			t.Errorf("PutProjectOrg committed (%v) a move of shop out of a.example while UpdateOrg held a.example, having been given %+v", errMove, given)
			gotMove = true
		case <-time.After(500 * time.Millisecond):
		}
	}
	close(done)
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if !gotMove {
		errMove = <-moved
	}
	if errMove != nil {
		t.Fatal(errMove)
	}
	if p, err := s.GetProjectOrg(ctx, "shop"); err != nil || p.Org != "b.example" {
		t.Fatalf("shop: %+v, %v; want in b.example", p, err)
	}
}

// TestDeleteOrgUsersInEmailOrder: an organization deleted while a put
// moves two of its users to another organization. The put locks users in
// the order of their emails, byte by byte (as Go sorts them), and takes
// no lock of the organization they leave; the deletion, holding the
// organization's row, must lock its users in that order too. Deleting
// them in the table's order (b@ was stored first) it held b@ while
// waiting for a@, which the put held while waiting for b@: a deadlock.
// So it did ordering them by the column's collation when that is not
// byte order (ICU's, say, puts a_b@ before a-b@; '-' is 0x2d, '_' 0x5f).
func TestDeleteOrgUsersInEmailOrder(t *testing.T) {
	tests := []struct {
		name      string
		collation string   // of org_users.email, if not the database's
		stored    []string // in this order; the put locks them sorted
	}{
		{"stored out of order", "", []string{"b@x.example", "a@x.example"}},
		{"an ICU collation", "en-x-icu", []string{"a_b@x.example", "a-b@x.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testDeleteOrgUsersInEmailOrder(t, tt.collation, tt.stored) })
	}
}

func testDeleteOrgUsersInEmailOrder(t *testing.T, collation string, stored []string) {
	ctx := context.Background()
	s, db := storeAndDB(t)
	if collation != "" {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_collation WHERE collname = $1`, collation).Scan(&n); err != nil || n == 0 {
			t.Skipf("no collation %s (%v)", collation, err)
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE org_users ALTER COLUMN email TYPE text COLLATE "`+collation+`"`); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(a string) storage.AuditEvent {
		return storage.AuditEvent{Time: time.Now(), Action: a, Outcome: storage.OutcomeSuccess}
	}
	for _, d := range []string{"x.example", "y.example"} {
		if err := s.CreateOrg(ctx, storage.Org{Domain: d, CreatedAt: time.Now()}, ev("org.create")); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range stored {
		if err := s.PutUsers(ctx, []storage.User{{Email: e, Org: "x.example", CreatedAt: time.Now()}}, storage.SameEvent(ev("org.users"))); err != nil {
			t.Fatal(err)
		}
	}
	emails := slices.Sorted(slices.Values(stored))

	// The put, as PutUsers takes its locks: y.example's row, then the
	// first email.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT domain FROM orgs WHERE domain = 'y.example' FOR KEY SHARE`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE org_users SET org = 'y.example' WHERE email = $1`, emails[0]); err != nil {
		t.Fatal(err)
	}
	var xid string
	if err := tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteOrg(ctx, "x.example", nil, ev("org.delete")) }()
	deadline := time.After(30 * time.Second)
	for waiting := false; !waiting; {
		select {
		case err := <-deleted:
			t.Fatalf("DeleteOrg returned %v while the put held %s", err, emails[0])
		case <-deadline:
			t.Fatal("DeleteOrg did not wait for the put")
		case <-time.After(10 * time.Millisecond):
		}
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted)`, xid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE org_users SET org = 'y.example' WHERE email = $1`, emails[1]); err != nil {
		t.Fatalf("the put's second user: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	for _, e := range emails {
		if u, err := s.GetUser(ctx, e); err != nil || u.Org != "y.example" {
			t.Errorf("%s: %+v, %v; want moved to y.example", e, u, err)
		}
	}
}

// storeAndDB opens a store on a schema of its own and a plain connection
// to the same schema, for what the store's API cannot do (another
// process's transaction, a query it never makes); both close when t ends.
func storeAndDB(t *testing.T) (*sqlstore.Store, *sql.DB) {
	t.Helper()
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s, db
}

// TestDeleteAccountSecretsInIDOrder: an account deleted while a flush of
// its secrets' last uses (TouchSecrets, which updates them in the order
// of their IDs) holds the first of them. Deleting its secrets in the
// table's order (sb was created first) it held sb while waiting for sa,
// which the flush held while waiting for sb: a deadlock, which failed
// one of them. It locks them in the order of their IDs' bytes first.
func TestDeleteAccountSecretsInIDOrder(t *testing.T) {
	ctx := context.Background()
	s, db := storeAndDB(t)
	ev := storage.AuditEvent{Time: time.Now(), Action: "t", Outcome: storage.OutcomeSuccess}
	a := storage.Account{ID: "100000000000000000001", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateAccount(ctx, a, ev); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	for i, id := range []string{"sb", "sa"} {
		sec := storage.Secret{ID: id, AccountID: a.ID, Hash: []byte(id), Hint: id, CreatedAt: created.Add(time.Duration(i) * time.Second)}
		if err := s.CreateSecret(ctx, sec, nil, ev); err != nil {
			t.Fatal(err)
		}
	}

	// The flush, as TouchSecrets takes its locks: sa, then sb.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	touch := `UPDATE secrets SET last_used_at = 1 WHERE id = $1`
	if _, err := tx.ExecContext(ctx, touch, "sa"); err != nil {
		t.Fatal(err)
	}
	var xid string
	if err := tx.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteAccount(ctx, a.ID, nil, ev) }()
	deadline := time.After(30 * time.Second)
	for waiting := false; !waiting; {
		select {
		case err := <-deleted:
			t.Fatalf("DeleteAccount returned %v while the flush held sa", err)
		case <-deadline:
			t.Fatal("DeleteAccount did not wait for the flush")
		case <-time.After(10 * time.Millisecond):
		}
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted)`, xid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, touch, "sb"); err != nil {
		t.Fatalf("the flush's second secret: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListSecrets(ctx, a.ID); err != nil || len(l) != 0 {
		t.Errorf("secrets left %v, %v; want none", l, err)
	}
}

// A Commit that gives up waiting for a lock (lock_timeout, SQLSTATE
// 55P03) or whose statement runs out of time waiting (statement_timeout,
// 57014) fails with storage.ErrBusy, which group commit does not retry
// write by write.
func TestCommitBusy(t *testing.T) {
	for _, tc := range []struct{ setting, value string }{
		{"lock_timeout", "200ms"},
		// Every statement, the setup's too, has this long: not so short
		// that a loaded machine runs out of it before the lock wait.
		{"statement_timeout", "500ms"},
	} {
		t.Run(tc.setting, func(t *testing.T) { testCommitBusy(t, tc.setting, tc.value) })
	}
}

func testCommitBusy(t *testing.T, setting, value string) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	migrated, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	migrated.Close()
	s, err := postgres.Open(ctx, withSetting(dsn, setting, value), postgres.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{{Time: time.Now(), Action: "test", Outcome: storage.OutcomeSuccess}}}})
	if !errors.Is(err, storage.ErrBusy) {
		t.Fatalf("Commit while another transaction holds the audit log: %v; want ErrBusy", err)
	}
}

// The audit chain, changed directly in the database, does not verify.
func TestAuditTamper(t *testing.T) {
	storagetest.AuditTamper(t, func(t *testing.T) storagetest.TamperDB {
		s, db := storeAndDB(t)
		return storagetest.TamperDB{Store: s, DB: db,
			Unguard: []string{`DROP TRIGGER audit_events_no_change ON audit_events`},
			Blob:    func(b []byte) string { return fmt.Sprintf(`'\x%x'::bytea`, b) }}
	})
}

// Two replicas append to one audit chain while one prunes it.
func TestAuditConcurrent(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	var stores []storage.Storage
	for range 2 {
		s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	storagetest.AuditConcurrent(t, stores[0], stores[1])
}

// A Ping whose read of the tables gives up waiting for a lock another
// transaction holds (lock_timeout, 55P03; statement_timeout, 57014), as
// another replica's migration may hold one, says the database did not
// answer that read in time and wraps storage.ErrBusy, not ErrCannotServe:
// it said the database cannot read the tables.
func TestPingBusy(t *testing.T) {
	for _, tc := range []struct{ setting, value string }{
		{"lock_timeout", "200ms"},
		{"statement_timeout", "500ms"},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.SchemaDSN(t)
			migrated, err := postgres.Open(ctx, dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			migrated.Close()
			s, err := postgres.Open(ctx, withSetting(dsn, tc.setting, tc.value), postgres.Options{NoMigrate: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			err = s.Ping(ctx)
			if !errors.Is(err, storage.ErrBusy) || errors.Is(err, storage.ErrCannotServe) {
				t.Errorf("Ping while another transaction locks accounts: %v; want ErrBusy, not ErrCannotServe", err)
			}
			if err == nil || !strings.Contains(err.Error(), "the database did not answer the read of the tables in time") {
				t.Errorf("Ping while another transaction locks accounts: %v; want it to say the read was not answered in time", err)
			}
			tx.Rollback()
			if err := s.Ping(ctx); err != nil {
				t.Errorf("Ping with the lock released: %v", err)
			}
		})
	}
}
