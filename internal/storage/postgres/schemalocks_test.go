package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

// openDB opens a pool on dsn, closed when the test ends.
func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// session opens one session (connection) on dsn, closed, and its pool,
// when the test ends.
func session(t *testing.T, dsn string) *sql.Conn {
	t.Helper()
	conn, err := openDB(t, dsn).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestLocksPerSchema: the store's advisory locks are its schema's. A
// deployment in another schema of the same database holding one does not
// hold up this one; one in the same schema does, and so does a replica of
// a release up to 2026-12-06, which takes the lock for the whole database
// (a one-key lock of the same number), still serving during a rolling
// upgrade.
func TestLocksPerSchema(t *testing.T) {
	ctx := context.Background()
	here, there := pgtest.SchemaDSN(t), pgtest.SchemaDSN(t)
	dbHere, dbThere := openDB(t, here), openDB(t, there)
	d := postgres.Dialect()
	locks := []struct {
		name, query string
		old         int // the key releases up to 2026-12-06 take
	}{
		{"audit", d.LockAudit, 0x6b770001},
		{"signing keys", d.LockSigningKeys, 0x6b770002},
		{"scopes", d.LockScopes, 0x6b770003},
	}
	for _, l := range locks {
		holders := []struct {
			name    string
			db      *sql.DB
			query   string
			blocked bool
		}{
			{"same schema", dbHere, l.query, true},
			{"another schema", dbThere, l.query, false},
			{"older release", dbThere, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", l.old), true},
		}
		for _, h := range holders {
			t.Run(l.name+"/"+h.name, func(t *testing.T) {
				holder, err := h.db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer holder.Rollback()
				if _, err := holder.ExecContext(ctx, h.query); err != nil {
					t.Fatal(err)
				}
				// The holder keeps the lock until the end: lock_timeout
				// only says whether the waiter would wait, not how long.
				tx, err := dbHere.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '50ms'"); err != nil {
					t.Fatal(err)
				}
				_, err = tx.ExecContext(ctx, l.query)
				var pe *pgconn.PgError
				blocked := errors.As(err, &pe) && pe.Code == "55P03"
				if err != nil && !blocked {
					t.Fatal(err)
				}
				if blocked != h.blocked {
					t.Errorf("the %s lock taken by a holder (%s): the store waits %v, want %v", l.name, h.name, blocked, h.blocked)
				}
			})
		}
	}
}

// TestMigrationLockPerSchema: a replica migrating its schema does not
// hold up one of a deployment in another schema of the same database
// (each waited for the other's migrations, up to 5 minutes).
func TestMigrationLockPerSchema(t *testing.T) {
	ctx := context.Background()
	conn := session(t, pgtest.SchemaDSN(t))
	var l postgres.MigrationLocker
	if err := l.SessionLock(ctx, conn); err != nil {
		t.Fatal(err)
	}
	defer l.SessionUnlock(ctx, conn)
	// Not a measure: a bound, in place of the 5 minutes, on a wait that
	// must not happen at all.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, pgtest.SchemaDSN(t), postgres.Options{})
	if err != nil {
		t.Fatalf("Open in another schema while a replica holds its own schema's migration lock: %v", err)
	}
	s.Close()
}

// TestMigrationTableLockWait: a migration whose table another session
// holds locked (a transaction left open) gives up after its lock_timeout,
// whatever the DSN sets, with an error that says what it waited for,
// instead of waiting for ever with every query of that table in line
// behind it; it migrates once the session is gone.
func TestMigrationTableLockWait(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to the schema before 00010, which alters accounts.
	storagetest.UndoAfter(t, execOn(dsn), storagetest.CertRevocationSince)
	execOn(dsn)(t, append(storagetest.DownStatements(t, "migrations/00010_cert_tokens_revoked.sql"),
		fmt.Sprintf("DELETE FROM goose_db_version WHERE version_id >= %d", storagetest.CertRevocationSince))...)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "SELECT count(*) FROM accounts"); err != nil {
		t.Fatal(err)
	}
	postgres.SetMigrationStatementLockWait(t, 100*time.Millisecond)
	// Not a measure: a bound on a wait that must end by itself.
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A lock_timeout of 0 in the DSN, PostgreSQL's "wait for ever".
	waiter := dsn + "&options=-c%20lock_timeout%3D0"
	if s, err := postgres.Open(octx, waiter, postgres.Options{}); err == nil {
		s.Close()
		t.Fatal("Open migrated a table another session holds locked")
	} else if !strings.Contains(err.Error(), "00010_cert_tokens_revoked.sql waited 100ms (its lock_timeout)") || !strings.Contains(err.Error(), "pg_stat_activity") {
		t.Fatalf("Open while another session holds a table locked: got %q, want it to say which migration waited for a table another session holds, how long (lock_timeout) and where to look", err)
	}
	holder.Rollback()
	s, err = postgres.Open(ctx, waiter, postgres.Options{})
	if err != nil {
		t.Fatalf("Open once the session is gone: %v", err)
	}
	defer s.Close()
}

// TestMigrationLockReleasedOnFailure: a SessionLock that fails after it
// took the schema's lock (its wait for the older releases' key, held by
// one migrating, cancelled by an administrator) leaves its session, still
// open, holding nothing. goose unlocks only a lock SessionLock says it
// took, and a session lock outlives the transaction that took it: the
// connection went back to the pool holding the schema's migration lock.
// (A cancelled context closes the connection, and the lock with it.)
func TestMigrationLockReleasedOnFailure(t *testing.T) {
	h := holdMigrationLock(t, pgtest.SchemaDSN(t), nil)
	conn, err := h.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- postgres.MigrationLocker{}.SessionLock(context.Background(), conn) }()
	// Waiting for the older releases' key, once it has the schema's.
	h.awaitWaiter(locked)
	if _, err := h.db.ExecContext(context.Background(), "SELECT pg_cancel_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err == nil {
		t.Fatal("SessionLock succeeded while another session held the older releases' migration lock")
	}
	var held int
	if err := h.db.QueryRowContext(context.Background(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1", pid).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("the session of a failed SessionLock holds %d advisory locks, want none", held)
	}
}

// TestMigrationVersionTableLockWait: a statement of goose's on its
// version table that gives up waiting for a lock another session holds
// fails the start saying so: the error said a migration had waited for
// a table it needed.
func TestMigrationVersionTableLockWait(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	holder, err := openDB(t, dsn).BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "LOCK TABLE goose_db_version IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	postgres.SetMigrationStatementLockWait(t, 100*time.Millisecond)
	// Not a measure: a bound on a wait that must end by itself.
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err = postgres.Open(octx, dsn, postgres.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open read goose's version table while another session holds it locked")
	}
	if msg := err.Error(); !strings.Contains(msg, "goose_db_version") || !strings.Contains(msg, "pg_stat_activity") {
		t.Fatalf("Open while another session holds goose's version table locked: got %q, want it to name that table and where to look", err)
	}
}

// TestMigrationLockFailedRelease: a release of the migration lock that
// fails, by a SessionLock failing once it took the schema's lock or by
// SessionUnlock, ends its session: the connection went back to the pool
// holding the schema's migration lock, and every replica's migrations
// waited for it.
func TestMigrationLockFailedRelease(t *testing.T) {
	ctx := context.Background()
	var l postgres.MigrationLocker
	for _, tc := range []struct {
		name string
		// release takes the lock on conn, of session pid, and fails to
		// release it.
		release func(t *testing.T, h *lockHolder, conn *sql.Conn, pid int)
	}{
		{"SessionLock failing", func(t *testing.T, h *lockHolder, conn *sql.Conn, pid int) {
			locked := make(chan error, 1)
			go func() { locked <- l.SessionLock(ctx, conn) }()
			// Waiting for the older releases' key, once it has the schema's.
			h.awaitWaiter(locked)
			if _, err := h.db.ExecContext(ctx, "SELECT pg_cancel_backend($1)", pid); err != nil {
				t.Fatal(err)
			}
			if err := <-locked; err == nil {
				t.Fatal("SessionLock succeeded while another session held the older releases' migration lock")
			}
		}},
		{"SessionUnlock", func(t *testing.T, h *lockHolder, conn *sql.Conn, pid int) {
			h.unlock()
			if err := l.SessionLock(ctx, conn); err != nil {
				t.Fatal(err)
			}
			if err := l.SessionUnlock(ctx, conn); err == nil {
				t.Fatal("SessionUnlock succeeded, its release refused")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := holdMigrationLock(t, pgtest.SchemaDSN(t), nil)
			db := openDB(t, refuseRelease(t, h.dsn))
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pid := backendPID(t, conn)
			tc.release(t, h, conn, pid)
			conn.Close() // as goose does
			awaitSessionEnd(t, db, h.db, pid)
		})
	}
}

// refuseRelease creates, in the schema dsn's search_path names, a
// pg_advisory_unlock(integer, integer) that fails, and returns dsn with
// that schema searched before pg_catalog: a session on it takes the
// migration lock as any other, but its release of it fails, the lock
// still held.
func refuseRelease(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	execOn(dsn)(t, "CREATE FUNCTION "+pgx.Identifier{schema, "pg_advisory_unlock"}.Sanitize()+
		"(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'the test refuses the release'; END$$")
	q.Set("search_path", schema+",pg_catalog")
	u.RawQuery = q.Encode()
	return u.String()
}

// backendPID is the process ID of conn's session.
func backendPID(t *testing.T, conn *sql.Conn) int {
	t.Helper()
	var pid int
	if err := conn.QueryRowContext(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// awaitSessionEnd fails the test if db's pool hands out again the
// session pid, closed by its user, and returns once watcher no longer
// sees it in pg_stat_activity: ended, with the locks it held.
func awaitSessionEnd(t *testing.T, db, watcher *sql.DB, pid int) {
	t.Helper()
	ctx := context.Background()
	again, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := backendPID(t, again)
	again.Close()
	if got == pid {
		t.Fatal("the pool handed out again the session whose release of the migration lock failed; it may hold the lock")
	}
	// Not a measure: a bound on a wait that must end by itself.
	giveUp := time.After(30 * time.Second)
	for {
		var n int
		if err := watcher.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		select {
		case <-giveUp:
			t.Fatal("the session whose release of the migration lock failed is still open")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestMigrationLockTimeoutReset: SessionUnlock gives the session back
// the lock_timeout its DSN sets, before the connection goes back to the
// pool: the queries it serves next are not held to the migrations' 10 s.
func TestMigrationLockTimeoutReset(t *testing.T) {
	ctx := context.Background()
	conn := session(t, pgtest.SchemaDSN(t)+"&options=-c%20lock_timeout%3D1234")
	show := func() string {
		t.Helper()
		var v string
		if err := conn.QueryRowContext(ctx, "SHOW lock_timeout").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var l postgres.MigrationLocker
	if err := l.SessionLock(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if got := show(); got != "10s" {
		t.Errorf("lock_timeout while migrating: %s, want 10s", got)
	}
	if err := l.SessionUnlock(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if got := show(); got != "1234ms" {
		t.Errorf("lock_timeout after SessionUnlock: %s, want the DSN's 1234ms", got)
	}
}

// TestFirstStartLockKey: the tests' pgtest.FirstStartLocks counts the
// lock the store takes.
func TestFirstStartLockKey(t *testing.T) {
	if pgtest.FirstStartLockKey != postgres.LockFirstStartKey {
		t.Fatalf("pgtest.FirstStartLockKey = %#x, want the store's %#x", pgtest.FirstStartLockKey, postgres.LockFirstStartKey)
	}
}

// TestLockFirstStart: the lock a server holds while it starts keeps
// Load's of the same schema waiting, not another schema's, and is gone,
// its session back in the pool, once unlocked or once a wait for it is
// cancelled; a wait, and only a wait, is told before it begins.
func TestLockFirstStart(t *testing.T) {
	ctx := context.Background()
	here, there := pgtest.SchemaDSN(t), pgtest.SchemaDSN(t)
	s, err := postgres.Open(ctx, here, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open := func(dsn string) *sql.DB {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	dbHere, dbThere := open(here), open(there)
	// waits says whether Load's lock statement, on db, would wait.
	waits := func(db *sql.DB) bool {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '50ms'"); err != nil {
			t.Fatal(err)
		}
		_, err = tx.ExecContext(ctx, postgres.Dialect().LockFirstStart)
		var pe *pgconn.PgError
		if err != nil && !(errors.As(err, &pe) && pe.Code == "55P03") {
			t.Fatal(err)
		}
		return err != nil
	}
	// told counts the calls of LockFirstStart's waiting: one per wait,
	// none for a lock no other session holds.
	told := make(chan struct{}, 2)
	unlock, err := s.LockFirstStart(ctx, func() { told <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	if len(told) != 0 {
		t.Error("LockFirstStart called waiting for a lock no other session held")
	}
	if !waits(dbHere) {
		t.Error("Load's lock was granted while a server of the same schema held the first start's")
	}
	if waits(dbThere) {
		t.Error("Load's lock waited for a server's first start in another schema")
	}

	// A wait for it cancelled leaves no lock behind.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, 1)
	go func() {
		u, err := s.LockFirstStart(wctx, func() { told <- struct{}{} })
		if err == nil {
			u()
		}
		failed <- err
	}()
	for {
		if _, waiting := pgtest.FirstStartLocks(t, dbHere); waiting > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Called before the wait began, which the server now shows.
	if n := len(told); n != 1 {
		t.Errorf("LockFirstStart called waiting %d times for a lock another session held, want once, before its wait", n)
	}
	cancel()
	if err := <-failed; err == nil {
		t.Error("LockFirstStart succeeded, its wait cancelled while the lock was held")
	}
	// The server ends the cancelled wait on its own time. Not a measure:
	// a bound on a wait that must end.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, waiting := pgtest.FirstStartLocks(t, dbHere); waiting == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the cancelled wait for the first start's lock still waits")
		}
	}
	unlock()
	unlock() // once only
	if held, waiting := pgtest.FirstStartLocks(t, dbHere); held != 0 || waiting != 0 {
		t.Errorf("after the unlock, %d sessions hold the first start's lock and %d wait for it, want none", held, waiting)
	}
	if waits(dbHere) {
		t.Error("Load's lock waited after the unlock")
	}
}

// TestLockFirstStartTimeouts: a server starting waits for the first
// start's lock however short the lock_timeout its DSN (or role) sets, as
// it waits for the migration lock: it is meant for queries, and made a
// start beside an import fail instead.
func TestLockFirstStartTimeouts(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	holder, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	s, err := postgres.Open(ctx, dsn+"&lock_timeout=1", postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	unlockHolder, err := holder.LockFirstStart(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockHolder()
	told := make(chan struct{}, 1)
	type result struct {
		unlock func()
		err    error
	}
	done := make(chan result, 1)
	go func() {
		u, err := s.LockFirstStart(ctx, func() { told <- struct{}{} })
		done <- result{u, err}
	}()
	db := openDB(t, dsn)
	for waiting := 0; waiting == 0; {
		select {
		case r := <-done:
			if r.err == nil {
				r.unlock()
			}
			t.Fatalf("LockFirstStart returned while another session held the lock: %v", r.err)
		case <-told:
			_, waiting = pgtest.FirstStartLocks(t, db)
			told <- struct{}{}
			time.Sleep(10 * time.Millisecond)
		}
	}
	unlockHolder()
	r := <-done
	if r.err != nil {
		t.Fatalf("LockFirstStart, once the holder let go: %v", r.err)
	}
	r.unlock()
}

// TestFirstStartHolders: the query a server waiting for the first-start
// lock logs, run by an operator on a session of their own, lists the
// session that holds it, and no longer once it let go.
func TestFirstStartHolders(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	app := "keyward-holder-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s, err := postgres.Open(ctx, dsn+"&application_name="+app, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	operator := openDB(t, os.Getenv(pgtest.DSNEnv))
	holders := func() int {
		t.Helper()
		rows, err := operator.QueryContext(ctx, postgres.FirstStartHolders)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			v := make([]any, len(cols))
			vals := make([]sql.NullString, len(cols))
			for i := range v {
				v[i] = &vals[i]
			}
			if err := rows.Scan(v...); err != nil {
				t.Fatal(err)
			}
			if i := slices.Index(cols, "application_name"); vals[i].String == app {
				n++
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	unlock, err := s.LockFirstStart(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := holders(); n != 1 {
		t.Errorf("FirstStartHolders lists %d sessions of the holder's, want 1", n)
	}
	unlock()
	if n := holders(); n != 0 {
		t.Errorf("FirstStartHolders lists %d sessions of the holder's once it let go, want none", n)
	}
}

// TestLoadFirstStartWait: Load, an import, waits for a server's start
// (the first start's lock) as the server waits for an import: told once
// before the wait, which a DSN's (or role's) lock_timeout or
// statement_timeout, meant for queries, does not cut short, and which
// ctx ends. Before, the wait was silent and failed after the
// lock_timeout with PostgreSQL's error.
func TestLoadFirstStartWait(t *testing.T) {
	ev := storage.AuditEvent{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Action: "api.import", Outcome: storage.OutcomeSuccess}
	bulk := func(told chan<- struct{}) storage.Bulk {
		return storage.Bulk{APIs: []storage.API{{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read"}, CreatedAt: ev.Time}},
			Waiting: func() { told <- struct{}{} }}
	}
	// Not a measure: a bound on a wait that must end.
	awaitTold := func(t *testing.T, told <-chan struct{}, loaded <-chan error) {
		t.Helper()
		select {
		case <-told:
		case err := <-loaded:
			t.Fatalf("Load returned without calling Waiting while a server's start held the first-start lock: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("Load did not call Waiting while a server's start held the first-start lock")
		}
	}
	for _, setting := range []string{"lock_timeout", "statement_timeout"} {
		t.Run(setting, func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.SchemaDSN(t)
			server, err := postgres.Open(ctx, dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			importer, err := postgres.Open(ctx, withSetting(dsn, "options", "-c "+setting+"=100ms"), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer importer.Close()
			unlock, err := server.LockFirstStart(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()

			// Cancelled while it waits: it fails, and writes nothing.
			told := make(chan struct{}, 2)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			loaded := make(chan error, 1)
			go func() { loaded <- importer.Load(cctx, bulk(told), []storage.AuditEvent{ev}) }()
			awaitTold(t, told, loaded)
			cancel()
			if err := <-loaded; !errors.Is(err, context.Canceled) {
				t.Fatalf("Load cancelled while it waited for a server's start: %v, want context.Canceled", err)
			}
			if _, err := importer.GetAPI(ctx, "orders"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the cancelled Load wrote the API: %v", err)
			}

			// Held well past the timeout: still waiting, then loaded.
			go func() { loaded <- importer.Load(ctx, bulk(told), []storage.AuditEvent{ev}) }()
			awaitTold(t, told, loaded)
			select {
			case err := <-loaded:
				t.Fatalf("Load returned while a server's start held the first-start lock (%s=100ms): %v", setting, err)
			case <-time.After(time.Second):
			}
			unlock()
			if err := <-loaded; err != nil {
				t.Fatalf("Load once the server's start ended (%s=100ms): %v", setting, err)
			}
			if len(told) != 0 {
				t.Errorf("Load called Waiting %d more times", len(told))
			}
			if _, err := importer.GetAPI(ctx, "orders"); err != nil {
				t.Fatalf("GetAPI after Load: %v", err)
			}
		})
	}
}

// TestFirstStartHoldersSchema: FirstStartHolders names the schema whose
// first-start lock each session holds. Deployments in other schemas of
// the database (or in other databases) that hold theirs at the same time
// are listed too, and without the schema an operator following the
// warning could end another deployment's start or import instead.
func TestFirstStartHoldersSchema(t *testing.T) {
	ctx := context.Background()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	want := map[string]string{} // application_name: schema
	for i := range 2 {
		dsn := pgtest.SchemaDSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		app := fmt.Sprintf("keyward-holders-schema-%s-%d", run, i)
		want[app] = u.Query().Get("search_path")
		s, err := postgres.Open(ctx, dsn+"&application_name="+app, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		unlock, err := s.LockFirstStart(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
	}
	operator := openDB(t, os.Getenv(pgtest.DSNEnv))
	rows, err := operator.QueryContext(ctx, postgres.FirstStartHolders)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	appCol, schemaCol := slices.Index(cols, "application_name"), slices.Index(cols, "schema")
	if schemaCol < 0 {
		t.Fatalf("FirstStartHolders has the columns %q, no schema", cols)
	}
	got := map[string]string{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		v := make([]any, len(cols))
		for i := range v {
			v[i] = &vals[i]
		}
		if err := rows.Scan(v...); err != nil {
			t.Fatal(err)
		}
		if app := vals[appCol].String; want[app] != "" {
			got[app] = vals[schemaCol].String
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for app, schema := range want {
		if got[app] != schema {
			t.Errorf("FirstStartHolders gives the holder %s the schema %q, want %q", app, got[app], schema)
		}
	}
}

// TestMigrationUnlockBounded: SessionUnlock on a session whose server no
// longer answers gives up within migrationUnlockWait, and ends the
// session, as SessionLock's release does: goose calls it with a context
// that never ends, and the start waited for as long as the operating
// system took to find the connection dead.
func TestMigrationUnlockBounded(t *testing.T) {
	ctx := context.Background()
	p := newSilencer(t, pgtest.SchemaDSN(t))
	db := openDB(t, p.dsn)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var l postgres.MigrationLocker
	if err := l.SessionLock(ctx, conn); err != nil {
		t.Fatal(err)
	}
	postgres.SetMigrationUnlockWait(t, 300*time.Millisecond)
	p.silence()
	unlocked := make(chan error, 1)
	go func() { unlocked <- l.SessionUnlock(context.WithoutCancel(ctx), conn) }()
	// Not a measure: a bound on a wait that must end by itself.
	select {
	case err := <-unlocked:
		if err == nil {
			t.Error("SessionUnlock succeeded on a server that does not answer")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SessionUnlock on a server that does not answer has not returned")
	}
	conn.Close()
}

// TestLoadFirstStartWaitTimeoutsBack: the DSN's lock_timeout, turned off
// for Load's wait for a server's start, is in force again for the rest
// of Load's transaction: a lock of the accounts another session holds
// afterwards ends Load after the timeout, with PostgreSQL's error, as it
// does without a wait, instead of holding the import for as long as that
// session keeps it.
func TestLoadFirstStartWaitTimeoutsBack(t *testing.T) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Action: "api.import", Outcome: storage.OutcomeSuccess}
	dsn := pgtest.SchemaDSN(t)
	server, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	importer, err := postgres.Open(ctx, withSetting(dsn, "options", "-c lock_timeout=200ms"), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer importer.Close()
	unlock, err := server.LockFirstStart(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	holder, err := openDB(t, dsn).BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "LOCK TABLE accounts IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}

	told := make(chan struct{}, 1)
	b := storage.Bulk{APIs: []storage.API{{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read"}, CreatedAt: ev.Time}},
		Waiting: func() { told <- struct{}{} }}
	loaded := make(chan error, 1)
	go func() { loaded <- importer.Load(ctx, b, []storage.AuditEvent{ev}) }()
	// Not a measure: bounds on waits that must end.
	select {
	case <-told:
	case err := <-loaded:
		t.Fatalf("Load returned without waiting for the server's start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Load did not call Waiting while a server's start held the first-start lock")
	}
	unlock()
	select {
	case err = <-loaded:
	case <-time.After(30 * time.Second):
		t.Fatal("Load, past its wait for the server's start, waits for the accounts lock without the DSN's lock_timeout")
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "55P03" {
		t.Fatalf("Load while another session holds the accounts locked: %v, want lock_timeout's error (55P03)", err)
	}
}
