// Package sqlstore implements storage.Storage over database/sql. The SQLite
// and PostgreSQL backends differ only in their Dialect and their schema
// migrations, so both run this one implementation of the queries.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/keyward/keyward/internal/storage"
)

// Dialect is what differs between SQL databases.
type Dialect struct {
	// Name names the backend in errors ("sqlite", "postgres").
	Name string
	// Numbered placeholders: true for $1, $2 (PostgreSQL), false for ?.
	Numbered bool
	// IsUniqueViolation reports whether err is a unique-constraint error.
	IsUniqueViolation func(err error) bool
	// IsConnLost, if set, reports whether err, a statement's, is the
	// connection to the database lost or not made (a network error, the
	// server ending the session), not the database's answer to the
	// statement. SQLite needs none: it has no connection to lose.
	IsConnLost func(err error) bool
	// IsBusy, if set, reports whether err is a wait for a lock given up
	// (storage.ErrBusy): Store.Commit (the batch of token writes) and
	// Ping return such an error wrapped with ErrBusy, as their callers
	// tell a busy store from a failing one; the other methods, tx's
	// commits included, return it as it is.
	IsBusy func(err error) bool
	// LockAudit and LockSigningKeys, if set, run at the start of a
	// transaction that appends to the audit chain or rewrites the signing
	// keys (or creates a sealed value), to serialize it against other
	// processes. SQLite needs none: its write transactions are already
	// exclusive.
	LockAudit, LockSigningKeys string
	// LockScopes, if set, runs at the start of a guarded change of an
	// account, a key, a secret or a grant and of CreateAPI, UpdateAPI and
	// DeleteAPI (see storage.Guard), to serialize them against each other
	// across processes. SQLite needs none.
	LockScopes string
	// The first-start lock is named as the others are, verb first:
	// LockFirstStart and TryLockFirstStart take it for a transaction,
	// as LockAudit and the others do, and the Session ones for a
	// session, until released.
	//
	// LockFirstStart, if set, runs first in Load: it waits for, and then
	// keeps out until Load commits, a server's start holding the same lock
	// for its session, taken by SessionLockFirstStart and released by
	// SessionUnlockFirstStart (which answers whether the session held it;
	// see Store.LockFirstStart). SessionTryLockFirstStart takes it only if
	// no other session holds it, answering whether it did. NoTimeouts, run
	// in the transaction SessionLockFirstStart waits in, turns off for it
	// the timeouts a role or DSN sets for queries. SQLite needs none: a
	// server and an import hold the data directory's lock.
	LockFirstStart, SessionLockFirstStart, SessionTryLockFirstStart, SessionUnlockFirstStart, NoTimeouts string
	// TryLockFirstStart takes LockFirstStart's lock only if no other
	// session holds it, answering whether it did; if it did not, Load
	// waits for it as SessionLockFirstStart's wait does, with the
	// timeouts that Timeouts reads (two strings) off (NoTimeouts), and
	// then set back by SetTimeouts (given them, for the rest of the
	// transaction).
	TryLockFirstStart, Timeouts, SetTimeouts string
	// LockAccounts, if set, runs in Load after LockScopes and
	// LockSigningKeys and before it counts the accounts: it must keep any
	// other transaction from adding an account until Load commits, and
	// wait for one that has added one to finish, so that the count holds
	// at commit. (CreateAccount takes no lock of its own to serialize on.)
	// SQLite needs none: its write transactions are already exclusive.
	LockAccounts string
	// ForUpdate, if set, ends a read of the row a transaction is about to
	// rewrite (" FOR UPDATE"), so that a concurrent change of the row waits
	// for it instead of being overwritten with what was read before it
	// committed. SQLite needs none: its write transactions are exclusive.
	ForUpdate string
	// ForKeyShare, if set, ends a read of a row that a transaction is
	// about to insert rows referring to (" FOR KEY SHARE"), so that the
	// share of it the insertion would take anyway is taken first, before
	// any other row's lock. SQLite needs none.
	ForKeyShare string
	// ByteOrder, if set, follows a text column in an ORDER BY that takes
	// locks (" COLLATE \"C\""), so that the rows are locked in the order
	// of their bytes, the order Go sorts strings in (and so other changes
	// lock them in), whatever the column's collation. SQLite needs none:
	// its default collation compares bytes.
	ByteOrder string
	// ASCIICase follows the text that lower() lowers where emails are
	// compared without case (AccountEmailAt, in the queries and in the
	// indexes of migration 00011: " COLLATE \"C\""), so that it lowers
	// ASCII letters only, as ascii.Lower does, whatever the database's
	// locale (a Turkish one lowers I to dotless ı). SQLite needs none: its
	// lower() lowers ASCII letters only.
	ASCIICase string
	// Notify, if set, is run with a change payload inside every transaction
	// that changes what replicas cache.
	Notify string
	// SnapshotIsolation is the isolation level of Snapshot's read-only
	// transaction: one at which every read of the transaction sees the
	// same snapshot (sql.LevelRepeatableRead on PostgreSQL, whose default
	// gives each statement its own). SQLite needs none: in WAL mode a read
	// transaction sees one snapshot.
	SnapshotIsolation sql.IsolationLevel
}

// Store implements storage.Storage.
type Store struct {
	w, r *sql.DB // writer and reader; the same pool on PostgreSQL
	d    Dialect
	q    map[string]string // rebound queries

	// hot holds the statements of the group-commit path, prepared once.
	hotMu sync.Mutex
	hot   map[string]*sql.Stmt
	// reads holds read statements prepared on the reader pool, by name.
	reads sync.Map
}

// queryer runs a query: a *sql.DB or, inside a transaction, a *sql.Tx.
type queryer interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// hotQueries are prepared once on the writer: they run for every request.
// The audit inserts are added with their queries.
var hotQueries = []string{"deleteJTI", "auditHead"}

// New returns a Store that writes through w and reads through r.
func New(w, r *sql.DB, d Dialect) *Store {
	s := &Store{w: w, r: r, d: d, q: make(map[string]string, len(queries))}
	for name, q := range queries {
		s.q[name] = s.rebind(strings.ReplaceAll(q, asciiCase, d.ASCIICase))
	}
	for _, name := range []string{"getAccount", "getAPI", "getKey", "getSecret", "getOrg", "getUser", "getProjectOrg"} {
		s.q[name+"ForUpdate"] = s.q[name] + d.ForUpdate
	}
	s.q["lockAccount"] = s.rebind(`SELECT id FROM accounts WHERE id = ?` + d.ForUpdate)
	s.q["shareOrg"] = s.rebind(`SELECT domain FROM orgs WHERE domain = ?` + d.ForKeyShare)
	s.q["lockOrgs"] = s.rebind(`SELECT domain FROM orgs WHERE domain ` + inOrgs + ` ORDER BY domain` +
		d.ByteOrder + d.ForKeyShare)
	s.q["listAPIIntrospectorsForUpdate"] = s.rebind(`SELECT name, introspectors FROM apis WHERE introspectors <> '[]' ORDER BY name` +
		d.ByteOrder + d.ForUpdate)
	// The users of a put, orgsPerQuery emails a statement (see orgChunks),
	// locked in the order of their emails, as the put writes them.
	s.q["lockUsers"] = s.rebind(`SELECT email, suspended FROM org_users WHERE email ` + inOrgs + ` ORDER BY email` +
		d.ByteOrder + d.ForUpdate)
	s.q["lockOrgUsers"] = s.rebind(`SELECT count(*) FROM (SELECT 1 FROM org_users WHERE org = ? ORDER BY email` + d.ByteOrder + d.ForUpdate + `) u`)
	s.q["lockAccountSecrets"] = s.rebind(`SELECT count(*) FROM (SELECT 1 FROM secrets WHERE account_id = ? ORDER BY id` + d.ByteOrder + d.ForUpdate + `) s`)
	return s
}

var _ storage.Storage = (*Store)(nil)

// rebind turns ? placeholders into $n for dialects that number them.
func (s *Store) rebind(q string) string {
	if !s.d.Numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// readyQuery looks up, by primary key, a row that none has in each of the
// tables a token request, an introspection or a revocation reads or
// writes: one index lookup each, whatever their size. It fails when the
// database answers but cannot serve them: tables dropped, their role's
// privileges on them revoked, or (SQLite) the file replaced by an empty
// one.
const readyQuery = `SELECT count(*) FROM (
	SELECT 1 AS x FROM accounts WHERE id = ''
	UNION ALL SELECT 1 FROM keys WHERE id = ''
	UNION ALL SELECT 1 FROM secrets WHERE id = ''
	UNION ALL SELECT 1 FROM apis WHERE name = ''
	UNION ALL SELECT 1 FROM signing_keys WHERE id = ''
	UNION ALL SELECT 1 FROM used_jtis WHERE issuer = '' AND jti = ''
	UNION ALL SELECT 1 FROM audit_events WHERE seq = -1
	UNION ALL SELECT 1 FROM tokens WHERE hash = ''
	UNION ALL SELECT 1 FROM revocations WHERE jti = ''
) t`

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return err
	}
	var n int
	err := s.r.QueryRowContext(ctx, readyQuery).Scan(&n)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return err
	case s.d.IsConnLost != nil && s.d.IsConnLost(err):
		// The database answered the ping, but the connection was lost
		// before it answered the read: it may be going down, or a
		// network between may have cut the connection; that says
		// nothing of its tables.
		return fmt.Errorf("%s: the database answered a ping, then the connection to it was lost: %w", s.d.Name, err)
	case s.d.IsBusy != nil && s.d.IsBusy(err):
		// A lock another transaction holds (another replica's
		// migration, say) outlasted the lock or statement timeout:
		// that says nothing of the tables either.
		return fmt.Errorf("%s: %w: the database did not answer the read of the tables in time (a lock held by another transaction, or a statement timeout): %w", s.d.Name, storage.ErrBusy, err)
	}
	return fmt.Errorf("%s: %w: %w", s.d.Name, storage.ErrCannotServe, err)
}

// prepareHot prepares the hot statements, once. It must run outside any
// transaction: on SQLite the writer has a single connection.
func (s *Store) prepareHot(ctx context.Context) error {
	s.hotMu.Lock()
	defer s.hotMu.Unlock()
	if s.hot != nil {
		return nil
	}
	hot := make(map[string]*sql.Stmt, len(hotQueries))
	for _, name := range hotQueries {
		st, err := s.w.PrepareContext(ctx, s.q[name])
		if err != nil {
			for _, st := range hot {
				st.Close()
			}
			return fmt.Errorf("%s: prepare %s: %w", s.d.Name, name, err)
		}
		hot[name] = st
	}
	s.hot = hot
	return nil
}

// readStmt returns the named read statement, prepared on first use, or nil
// when it cannot be prepared (the caller then runs the query text).
func (s *Store) readStmt(ctx context.Context, name string) *sql.Stmt {
	if st, ok := s.reads.Load(name); ok {
		return st.(*sql.Stmt)
	}
	st, err := s.r.PrepareContext(ctx, s.q[name])
	if err != nil {
		return nil
	}
	if prev, loaded := s.reads.LoadOrStore(name, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// snapshotKey keys the transaction of a Snapshot of the store in a context.
type snapshotKey struct{ s *Store }

// Snapshot runs fn with a context in which the store's reads all run in
// one read-only transaction, and so see the store as it was at one
// moment, whatever other transactions commit meanwhile: an export taken
// while the server writes is then one state of the store, not parts of
// several. Writes made with that context are not part of the transaction.
func (s *Store) Snapshot(ctx context.Context, fn func(context.Context) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{Isolation: s.d.SnapshotIsolation, ReadOnly: true})
	if err != nil {
		return s.wrap("begin snapshot", err)
	}
	defer tx.Rollback()
	return fn(context.WithValue(ctx, snapshotKey{s}, tx))
}

// snapshot returns the transaction of the Snapshot ctx is of, or nil.
func (s *Store) snapshot(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(snapshotKey{s}).(*sql.Tx)
	return tx
}

// reader is what the reads with ctx run on: the transaction of its
// Snapshot, or the reader pool.
func (s *Store) reader(ctx context.Context) queryer {
	if tx := s.snapshot(ctx); tx != nil {
		return tx
	}
	return s.r
}

// queryRow runs a named single-row read with a prepared statement.
func (s *Store) queryRow(ctx context.Context, name string, args ...any) *sql.Row {
	if tx := s.snapshot(ctx); tx != nil {
		return tx.QueryRowContext(ctx, s.q[name], args...)
	}
	if st := s.readStmt(ctx, name); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, s.q[name], args...)
}

// query runs a named read with a prepared statement.
func (s *Store) query(ctx context.Context, name string, args ...any) (*sql.Rows, error) {
	if tx := s.snapshot(ctx); tx != nil {
		return tx.QueryContext(ctx, s.q[name], args...)
	}
	if st := s.readStmt(ctx, name); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.r.QueryContext(ctx, s.q[name], args...)
}

// stmt returns a prepared hot statement bound to tx.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, name string) *sql.Stmt {
	s.hotMu.Lock()
	st := s.hot[name]
	s.hotMu.Unlock()
	return tx.StmtContext(ctx, st)
}

// WriterStats returns the statistics of the pool writes go through. On
// SQLite, whose writer pool has one connection, its WaitCount counts the
// writes that waited for another's transaction to end: the conformance
// suite's tests watch it.
func (s *Store) WriterStats() sql.DBStats { return s.w.Stats() }

// Close implements storage.Storage.
func (s *Store) Close() error {
	s.hotMu.Lock()
	for _, st := range s.hot {
		st.Close()
	}
	s.hotMu.Unlock()
	s.reads.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// tx runs fn in a write transaction, appending evs to the audit chain in it.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error, evs ...storage.AuditEvent) error {
	if err := s.prepareHot(ctx); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", s.d.Name, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if len(evs) > 0 {
		if err := s.appendAudit(ctx, tx, evs); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		if s.d.IsConnLost != nil && s.d.IsConnLost(err) {
			err = commitUnknownError{err}
		}
		return fmt.Errorf("%s: commit: %w", s.d.Name, err)
	}
	return nil
}

// commitUnknownError is a commit's error that is storage.ErrCommitUnknown:
// the connection was lost, or its context done, with COMMIT maybe sent,
// or any other error that is not the database's answer (IsConnLost), such
// as the context's error before COMMIT was sent or pgx's
// ErrTxCommitRollback: see storage.ErrCommitUnknown.
type commitUnknownError struct{ error }

func (e commitUnknownError) Unwrap() error { return e.error }

func (e commitUnknownError) Is(target error) bool { return target == storage.ErrCommitUnknown }

// LockFirstStart implements storage.Storage: it takes the dialect's
// SessionLockFirstStart on a connection of its own, which unlock releases
// and gives back to the pool, or closes if it could not (a session lock
// goes with its session). It tries SessionTryLockFirstStart first, so
// that a wait is told to waiting before it begins.
func (s *Store) LockFirstStart(ctx context.Context, waiting func()) (unlock func(), err error) {
	if s.d.SessionLockFirstStart == "" {
		return func() {}, nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, s.wrap("lock first start", err)
	}
	discard := func() {
		conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}
	var got bool
	if err := conn.QueryRowContext(ctx, s.d.SessionTryLockFirstStart).Scan(&got); err != nil {
		discard() // it may hold the lock, cancelled as it was granted
		return nil, s.wrap("lock first start", err)
	}
	if !got {
		if waiting != nil {
			waiting()
		}
		if err := s.waitFirstStart(ctx, conn); err != nil {
			discard() // it may hold the lock, the wait cancelled as it was granted
			return nil, s.wrap("lock first start", err)
		}
	}
	return sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), UnlockWait)
		defer cancel()
		var held bool
		if err := conn.QueryRowContext(ctx, s.d.SessionUnlockFirstStart).Scan(&held); err != nil || !held {
			discard()
			return
		}
		conn.Close()
	}), nil
}

// UnlockWait bounds how long the release of a session lock waits for the
// database to answer: a server that does not answer would hold it up
// without end. A release that fails or runs out of time ends its session
// instead, and the lock with it.
const UnlockWait = 10 * time.Second

// waitFirstStart waits for the dialect's SessionLockFirstStart on conn,
// in a transaction with NoTimeouts: a role's or DSN's lock_timeout or
// statement_timeout, meant for queries, made a server starting while an
// import committed, or another server bootstrapped, fail instead of
// waiting; ctx ends the wait. The lock, a session's, outlives the
// transaction.
func (s *Store) waitFirstStart(ctx context.Context, conn *sql.Conn) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.d.NoTimeouts != "" {
		if _, err := tx.ExecContext(ctx, s.d.NoTimeouts); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.SessionLockFirstStart); err != nil {
		return err
	}
	return tx.Commit()
}

// lock runs a dialect's lock statement, if it has one, inside tx.
func (s *Store) lock(ctx context.Context, tx *sql.Tx, query, what string) error {
	if query == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, query)
	return s.wrap(what, err)
}

// notify tells other processes, when the transaction commits, that what
// payload names changed.
func (s *Store) notify(ctx context.Context, tx *sql.Tx, payload string) error {
	if s.d.Notify == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.d.Notify, payload)
	return s.wrap("notify", err)
}

// wrap maps driver errors to storage sentinels.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
	case s.d.IsUniqueViolation(err):
		return fmt.Errorf("%s: %w", op, storage.ErrAlreadyExists)
	default:
		return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
	}
}

// Times are stored as microseconds since the Unix epoch (0 for "none"), so
// both backends store and compare them identically.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func encodeList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func encodeJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("corrupt list %q: %w", s, err)
	}
	return l, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// MigrateMode is what Migrate does with a schema that is not up to date.
type MigrateMode int

const (
	// MigrateUp brings it up to date.
	MigrateUp MigrateMode = iota
	// MigrateCheck refuses it.
	MigrateCheck
	// MigrateNew brings up a database that has no schema yet, and refuses
	// one with an older schema, which a release still running may be
	// serving from: for filling a new store (keyward import).
	MigrateNew
)

// ModeOf is the MigrateMode of a backend's options: noMigrate, then
// newOnly, else MigrateUp.
func ModeOf(noMigrate, newOnly bool) MigrateMode {
	switch {
	case noMigrate:
		return MigrateCheck
	case newOnly:
		return MigrateNew
	}
	return MigrateUp
}

// ErrSchemaNotCurrent is Migrate's error for a schema it was to check,
// not migrate, that has migrations still to apply.
var ErrSchemaNotCurrent = errors.New("the database schema is not up to date")

// Migrate brings a schema up to date with p's migrations, or checks that
// it is, as mode says. A schema written by a newer release (a version
// this binary does not know) is refused either way: running an older
// binary on it could misread what the newer one stored.
func Migrate(ctx context.Context, p *goose.Provider, name string, mode MigrateMode) error {
	have, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("%s: migrations: %w", name, err)
	}
	sources := p.ListSources()
	if known := sources[len(sources)-1].Version; have > known {
		return fmt.Errorf("%s: the database schema is at version %d, but this keyward knows versions up to %d: a newer release wrote it; run that release or a later one", name, have, known)
	}
	if mode == MigrateNew && have > 0 {
		mode = MigrateCheck
	}
	if mode == MigrateCheck {
		pending, err := p.HasPending(ctx)
		if err != nil {
			return fmt.Errorf("%s: migrations: %w", name, err)
		}
		if pending {
			return fmt.Errorf("%s: %w", name, ErrSchemaNotCurrent)
		}
		return nil
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("%s: migrate: %w", name, err)
	}
	return nil
}
