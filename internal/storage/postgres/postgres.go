// Package postgres is the PostgreSQL storage backend, for one server or many
// replicas sharing one database.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyward/keyward/internal/storage/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys. Each serializes one kind of write, or migrations,
// across the replicas serving one schema. A lock is two keys: the first
// is one of these, the second the hash of the schema's name (schemaKey),
// so that deployments in different schemas of one database do not take
// turns with each other (hashes that collide only make them take turns).
// Two-key advisory locks never collide with one-key ones, nor with a
// temporary schema's mark (tempSchemaLock).
const (
	lockAudit       = 0x6b770001 // the audit chain head
	lockSigningKeys = 0x6b770002 // signing-key rotation
	lockScopes      = 0x6b770003 // guarded account, key, secret and grant changes, API creations and deletions
	lockMigrations  = 0x6b770004 // schema migrations
	lockFirstStart  = 0x6b770005 // a server's start up to its bootstrap, against Load (import)
)

// schemaKey is the SQL expression of a lock's second key: the hash of the
// schema the store is in, the first of the search_path that exists.
const schemaKey = "hashtext(coalesce(current_schema(), ''))"

// xactLock returns the statement that takes the transaction lock key for
// the current schema.
//
// It also takes, shared, the one-key lock of the same number that
// releases up to 2026-12-06 take, for the whole database, exclusively:
// a replica of such a release, still serving during a rolling upgrade,
// takes turns with this one (a release that took only the per-schema
// lock would write the audit chain head at once with it), while replicas
// of this release, in any schema, share it and so never wait on each
// other for it. It can go once no such release can run.
func xactLock(key int) string {
	return fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, %s), pg_advisory_xact_lock_shared(%d)", key, schemaKey, key)
}

// Options configure Open.
type Options struct {
	// NoMigrate makes Open fail, instead of migrating, when the schema is
	// not up to date.
	NoMigrate bool
	// MigrateNewOnly migrates a database that has no schema yet, and
	// makes Open fail, as NoMigrate does, when it has one that is not up
	// to date (a release still running may be serving from it).
	MigrateNewOnly bool
	// MaxConns bounds the connection pool; 0 means 16.
	MaxConns int
	// Logger, if set, gets Open's warnings of commits that are not
	// durable (synchronous_commit off) and of a clock that differs from
	// the database's.
	Logger *slog.Logger
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and brings its schema up to date. Replicas starting at once take
// turns: migrations run under a session advisory lock.
func Open(ctx context.Context, dsn string, opts Options) (*sqlstore.Store, error) {
	cfg, source, err := connConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	n := opts.MaxConns
	if n <= 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("postgres: connect: %w: %w", noAnswer(cfg.ConnectTimeout, source), err)
		}
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, db, sqlstore.ModeOf(opts.NoMigrate, opts.MigrateNewOnly)); err != nil {
		db.Close()
		return nil, err
	}
	if opts.Logger != nil {
		check(ctx, db, opts.Logger, cfg.ConnectTimeout, source)
	}
	return sqlstore.New(db, db, dialect()), nil
}

// defaultConnectTimeout bounds each attempt to connect (dial, TLS and
// startup) when the DSN sets no connect_timeout. Without it, a server
// that accepts the connection and then says nothing (one stuck, a proxy
// whose database is gone, a network that drops the packets after the
// handshake) holds the attempt for ever: a replica starting then never
// starts nor fails, and the pool and the change watcher never retry.
var defaultConnectTimeout = 10 * time.Second

// connConfig parses dsn, giving it defaultConnectTimeout when it sets no
// connect_timeout, or 0 (libpq's "wait for ever", which would hold a
// start as the unbounded connect did). source says what set the connect
// timeout, for the errors that name it.
func connConfig(dsn string) (cfg *pgx.ConnConfig, source string, err error) {
	inDSN, env := dsnSets(dsn, "connect_timeout"), os.Getenv("PGCONNECT_TIMEOUT")
	inEnv := env != ""
	service := serviceTimeout(dsn)
	cfg, err = pgx.ParseConfig(dsn)
	if err != nil {
		return nil, "", badConnectTimeout(err, inDSN, env, service)
	}
	switch {
	case cfg.ConnectTimeout <= 0 && (inDSN || inEnv):
		cfg.ConnectTimeout = defaultConnectTimeout
		source = "the default, in place of a connect_timeout of 0, which would wait for ever"
	case cfg.ConnectTimeout <= 0:
		cfg.ConnectTimeout = defaultConnectTimeout
		source = "the default when neither the DSN's connect_timeout nor PGCONNECT_TIMEOUT sets one"
	case inDSN:
		source = "the DSN's connect_timeout sets this"
	case inEnv && envTimeout(env) == cfg.ConnectTimeout:
		source = "PGCONNECT_TIMEOUT sets this"
	default:
		// A PostgreSQL service's connect_timeout wins over
		// PGCONNECT_TIMEOUT, in pgx as in libpq.
		source = service + " sets this"
	}
	return cfg, source, nil
}

// serviceTimeout names the connect_timeout of the PostgreSQL service of
// dsn: the one its service parameter names, which wins, or else the one
// PGSERVICE names.
func serviceTimeout(dsn string) string {
	if dsnSets(dsn, "service") || os.Getenv("PGSERVICE") == "" {
		return "the connect_timeout of the DSN's PostgreSQL service"
	}
	return "the connect_timeout of the PostgreSQL service PGSERVICE names"
}

// badConnectTimeout rewords pgx's error of a connect timeout that is not
// a whole number of seconds, which says only "strconv.ParseInt: parsing
// ...", naming the setting that gave it: the DSN's connect_timeout (which
// wins), the PostgreSQL service's (service, as serviceTimeout names it,
// which wins over the environment), or PGCONNECT_TIMEOUT (env, "" if
// unset) when the value refused is its. The DSN, which may hold a
// password, is not repeated. Other errors are returned as they are.
func badConnectTimeout(err error, inDSN bool, env, service string) error {
	if !strings.Contains(err.Error(), ": invalid connect_timeout (") {
		return err
	}
	ne, ok := errors.AsType[*strconv.NumError](err)
	setting := service
	switch {
	case inDSN:
		setting = "the DSN's connect_timeout"
	case env != "" && (ok && ne.Num == env || !ok && envTimeout(env) < 0):
		setting = "PGCONNECT_TIMEOUT"
	}
	what := setting + " is negative"
	if ok && errors.Is(ne.Err, strconv.ErrRange) {
		what = fmt.Sprintf("%s %q is too large", setting, ne.Num)
	} else if ok {
		what = fmt.Sprintf("%s %q is not a whole number of seconds", setting, ne.Num)
	}
	return fmt.Errorf("%s: give whole seconds, such as 10, or 0 for the default (%v)", what, defaultConnectTimeout)
}

// envTimeout is the connect timeout that env, PGCONNECT_TIMEOUT, gives
// as pgx reads it, or -1 if it gives none (it is not a whole number of
// seconds, or is negative).
func envTimeout(env string) time.Duration {
	n, err := strconv.ParseInt(env, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return time.Duration(n) * time.Second
}

// dsnSets reports whether dsn, a postgres:// URL or a key=value string,
// names key, connect_timeout or service (which take precedence over
// PGCONNECT_TIMEOUT and PGSERVICE).
func dsnSets(dsn, key string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		return err == nil && u.Query().Has(key)
	}
	return keyValueKey[key].MatchString(dsn)
}

// keyValueKey finds connect_timeout or service as a key of a key=value
// DSN.
var keyValueKey = map[string]*regexp.Regexp{
	"connect_timeout": regexp.MustCompile(`(^|\s)connect_timeout\s*=`),
	"service":         regexp.MustCompile(`(^|\s)service\s*=`),
}

// noAnswer is the error of a database that did not answer within d, the
// connect timeout that source set.
func noAnswer(d time.Duration, source string) error {
	return fmt.Errorf("the database did not answer within %v (%s)", d, source)
}

// checkErr is the error of a check of Open's: err, or the cause of ctx
// ending (noAnswer), which says more than "context deadline exceeded".
func checkErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return err
}

// check runs Open's checks of the database (warnUndurable,
// warnClockOffset), each given up, and its warning saying so, after d, the
// connect timeout source set: a database that stops answering once
// migrated does not hold the start for ever.
func check(ctx context.Context, db *sql.DB, log *slog.Logger, d time.Duration, source string) {
	for _, fn := range []func(context.Context){
		func(ctx context.Context) { warnUndurable(ctx, db, log) },
		func(ctx context.Context) { warnClockOffset(ctx, db, log, time.Now) },
	} {
		cctx, cancel := context.WithTimeoutCause(ctx, d, noAnswer(d, source))
		fn(cctx)
		cancel()
	}
}

// warnUndurable logs a warning when the database answers commits before
// they are on disk: synchronous_commit off, set for the role, the
// database, the server or in the DSN. Keyward answers a token request
// only once its audit event is committed; with commits not durable, a
// crash of PostgreSQL can lose tokens and events already answered. The
// setting is left as it is: it is the database administrator's, and
// every value but off (local, on, remote_write, remote_apply) is durable
// on the primary.
func warnUndurable(ctx context.Context, db *sql.DB, log *slog.Logger) {
	var v string
	if err := db.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
		log.Warn("could not read PostgreSQL's synchronous_commit to check that commits are durable", "err", checkErr(ctx, err))
		return
	}
	if v == "off" {
		log.Warn("PostgreSQL commits are not durable: synchronous_commit is off, so a crash of the database can lose tokens and audit events Keyward has already answered",
			"synchronous_commit", v, "fix", "ALTER ROLE <keyward's role> SET synchronous_commit = on, or remove synchronous_commit=off from the database's, server's or DSN's settings")
	}
}

// maxClockOffset is how far this server's clock may be from the
// database's before Open warns. Replicas compare times they each took by
// their own clock (a token's iat with another replica's revoke-tokens
// cutoff, a grant's creation with a delegated token's issue), and wait
// out at most 2 s of difference; two replicas each within maxClockOffset
// of the database are within 2 s of each other.
const maxClockOffset = time.Second

// warnClockOffset logs a warning when the clock now reads differs from
// the database's by more than maxClockOffset, allowing for the time the
// query took: replicas whose clocks differ can let a token issued just
// before a revoke-tokens survive it. The clocks are left as they are:
// keeping them in sync is NTP's job.
func warnClockOffset(ctx context.Context, db *sql.DB, log *slog.Logger, now func() time.Time) {
	var theirs time.Time
	sent := now()
	if err := db.QueryRowContext(ctx, "SELECT clock_timestamp()").Scan(&theirs); err != nil {
		log.Warn("could not read PostgreSQL's clock to check that this server's agrees with it", "err", checkErr(ctx, err))
		return
	}
	took := now().Sub(sent)
	offset := theirs.Sub(sent.Add(took / 2)) // the database's clock minus ours, at the moment it read it
	if offset.Abs() > maxClockOffset+took/2 {
		log.Warn("this server's clock differs from PostgreSQL's: replicas whose clocks differ by more than 2 s can let tokens issued on one just before a revoke-tokens on another survive it, and issue tokens born revoked; keep every replica's clock in sync (NTP)",
			"database_minus_server", offset.Round(time.Millisecond), "query_took", took.Round(time.Millisecond))
	}
}

// FirstStartHolders lists the sessions that hold a first-start lock
// (Store.LockFirstStart), for an operator to run when a server starting
// waits for one: client_addr is the holder's host. It lists the holders
// of every schema's lock, in every database, so it names each one's
// database and, run in that database, schema: the operator must not end
// another deployment's start or import. (A two-key advisory lock shows
// in pg_locks with the first key as classid, the second, the schema's
// hash, as objid, objsubid 2.)
var FirstStartHolders = fmt.Sprintf("SELECT a.pid, a.datname, n.nspname AS schema, a.client_addr, a.application_name, a.backend_start, a.state_change"+
	" FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"+
	" LEFT JOIN pg_namespace n ON l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.objid = hashtext(n.nspname)::oid"+
	" WHERE l.locktype = 'advisory' AND l.classid = %d AND l.objsubid = 2 AND l.granted", lockFirstStart)

// dialect is PostgreSQL's sqlstore.Dialect.
func dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:              "postgres",
		Numbered:          true,
		IsUniqueViolation: isUniqueViolation,
		IsBusy:            isBusy,
		IsConnLost:        isConnLost,
		LockAudit:         xactLock(lockAudit),
		LockSigningKeys:   xactLock(lockSigningKeys),
		LockScopes:        xactLock(lockScopes),
		// Per schema only: releases up to 2026-12-06 take no such lock.
		// Without it, such a release's import or first start may still
		// interleave with this one's, as it did before: only over a store
		// without accounts, where a rolling upgrade does not run (its
		// replicas served the store, which has its administrator).
		LockFirstStart:           fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, %s)", lockFirstStart, schemaKey),
		SessionLockFirstStart:    fmt.Sprintf("SELECT pg_advisory_lock(%d, %s)", lockFirstStart, schemaKey),
		SessionTryLockFirstStart: fmt.Sprintf("SELECT pg_try_advisory_lock(%d, %s)", lockFirstStart, schemaKey),
		TryLockFirstStart:        fmt.Sprintf("SELECT pg_try_advisory_xact_lock(%d, %s)", lockFirstStart, schemaKey),
		Timeouts:                 "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')",
		SetTimeouts:              "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)",
		// As the migration lock's wait (migrationLocker.SessionLock).
		NoTimeouts:              "SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true)",
		SessionUnlockFirstStart: fmt.Sprintf("SELECT pg_advisory_unlock(%d, %s)", lockFirstStart, schemaKey),
		// EXCLUSIVE conflicts with the locks every INSERT, UPDATE, DELETE
		// and SELECT … FOR UPDATE of accounts takes, and with itself, but lets
		// readers (token requests) through.
		LockAccounts: "LOCK TABLE accounts IN EXCLUSIVE MODE",
		ForUpdate:    " FOR UPDATE",
		// Snapshot's transaction reads one snapshot throughout.
		SnapshotIsolation: sql.LevelRepeatableRead,
		ForKeyShare:       " FOR KEY SHARE",
		ByteOrder:         ` COLLATE "C"`,
		ASCIICase:         ` COLLATE "C"`,
		Notify:            "SELECT pg_notify(" + channel + ", $1)",
	}
}

func migrate(ctx context.Context, db *sql.DB, mode sqlstore.MigrateMode) error {
	if err := checkSchema(ctx, db, mode); err != nil {
		return err
	}
	sub, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithSessionLocker(migrationLocker{}))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	err = sqlstore.Migrate(ctx, p, "postgres", mode)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55P03" {
		return err
	}
	// lock_not_available: a statement's lock_timeout ran out, on the
	// migration lock's session migrationStatementLockWait (SessionLock),
	// elsewhere the DSN's or role's. Goose's own statements, on its
	// version table, run on either.
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		return fmt.Errorf("postgres: migration %s waited %v (its lock_timeout) for a lock another session holds on a table it needs (or rows of it), and gave up rather than hold up every query of that table behind it; find that session in pg_locks and pg_stat_activity (a long transaction, or one idle in transaction), end it, and start again: %w", partial.Failed.Source.Path, migrationStatementLockWait, err)
	}
	return fmt.Errorf("postgres: migrations: a statement on goose's version table (goose_db_version), not a migration, gave up waiting for a lock another session holds (its lock_timeout); find that session in pg_locks and pg_stat_activity (a long transaction, or one idle in transaction), end it, and start again: %w", err)
}

// checkSchema refuses, before goose looks at it, a search_path none of
// whose schemas exists in the database, naming them: goose would answer
// `relation "goose_db_version" does not exist` (another schema has one)
// or "no schema has been selected to create in", which name neither.
// Not migrating (mode MigrateCheck: export and the other maintenance
// commands, serve with no-migrate), it refuses as well a schema in which
// no migration ran, saying there is no Keyward schema there (a mistyped
// database name or search_path), instead of letting goose create its
// version table in it, a write to a database such a command must only
// read, and then ask for `keyward migrate`, which would make a store in
// the wrong database.
func checkSchema(ctx context.Context, db *sql.DB, mode sqlstore.MigrateMode) error {
	var schema sql.NullString
	var database, path string
	var versioned bool
	err := db.QueryRowContext(ctx, `SELECT current_schema(), current_database(), current_setting('search_path'),
		EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'goose_db_version')`).Scan(&schema, &database, &path, &versioned)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if !schema.Valid {
		return fmt.Errorf("postgres: database %q has no schema of the search_path (%s): correct the search_path of --db, or create the schema (CREATE SCHEMA)", database, path)
	}
	if mode != sqlstore.MigrateCheck {
		return nil
	}
	if versioned {
		// Goose's table alone, with the version 0 it writes first (as
		// earlier releases' export left it): no migration ran.
		q := "SELECT EXISTS (SELECT 1 FROM " + pgx.Identifier{schema.String, "goose_db_version"}.Sanitize() + " WHERE version_id > 0)"
		if err := db.QueryRowContext(ctx, q).Scan(&versioned); err != nil {
			return fmt.Errorf("postgres: migrations: %w", err)
		}
	}
	if !versioned {
		return fmt.Errorf("postgres: database %q has no Keyward schema (nothing of Keyward's in its schema %q): check the database name and search_path of --db", database, schema.String)
	}
	return nil
}

// migrationStatementLockWait bounds how long a migration's statement waits
// for a lock on a table another session holds (lock_timeout): an ALTER
// TABLE waiting for a long or idle-in-transaction session would wait for
// ever, and every query of that table, the replicas' still serving among
// them, waits in line behind it. Set on the migrations' session, it
// replaces the role's or DSN's lock_timeout, meant for queries. The
// migrations' statement_timeout stays the role's or DSN's: a migration
// rewriting a large table does work, not wait, and one cut short would
// never complete.
var migrationStatementLockWait = 10 * time.Second

// migrationLockWait bounds how long a replica waits for another's
// migrations, as goose's own locker did (60 tries 5 s apart).
const migrationLockWait = 5 * time.Minute

// errMigrationLockWait is the cause of SessionLock's context when
// migrationLockWait, not the caller's own deadline, ended the wait.
var errMigrationLockWait = fmt.Errorf("another replica held the migration lock for %v", migrationLockWait)

// migrationLocker is the session advisory lock migrations run under:
// lockMigrations for the current schema, so that deployments in
// different schemas of one database migrate without waiting on each
// other. It also takes goose's key (lock.DefaultLockID), which releases
// up to 2026-12-06 take for the whole database, exclusively (polling it
// with goose's locker or waiting for it): shared, so a replica of such a
// release, migrating during a rolling upgrade, takes turns with this one,
// and replicas of this release share it. It can go once no such release
// can run. It waits in pg_advisory_lock instead of polling: a replica
// starts migrating as soon as the one before it unlocks, not at its next
// try up to 5 s later, and shows in pg_locks as waiting.
type migrationLocker struct{}

// SessionLock waits for the lock in a transaction of its own with
// statement_timeout and lock_timeout off (SET LOCAL), so a role's or
// DSN's timeouts, meant for queries, do not end the wait for a slow
// migration: migrationLockWait bounds it. The lock is a session lock: it
// stays held after the transaction commits, until SessionUnlock. Once it
// has it, it sets the session's lock_timeout to
// migrationStatementLockWait, for the migrations.
func (migrationLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	ctx, cancel := context.WithTimeoutCause(ctx, migrationLockWait, errMigrationLockWait)
	defer cancel()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true)"); err != nil {
		return err
	}
	// A session lock outlives the transaction that took it, and goose
	// unlocks only a lock SessionLock took: one that fails once it asked
	// for the first releases what the session may hold (a lock it does
	// not hold only draws a warning), or the connection would go back to
	// the pool holding the schema's lock; a release that fails ends the
	// session.
	fail := func(err error) error {
		tx.Rollback()
		uctx, cancel := migrationUnlockContext(ctx)
		defer cancel()
		if _, uerr := conn.ExecContext(uctx, migrationUnlock); uerr != nil {
			endSession(conn) // it may still hold the lock
		}
		return err
	}
	// The schema's lock first: a replica waiting for it holds nothing an
	// older release's replica, in any schema, would wait for.
	for _, q := range []string{
		fmt.Sprintf("SELECT pg_advisory_lock(%d, %s)", lockMigrations, schemaKey),
		fmt.Sprintf("SELECT pg_advisory_lock_shared(%d)", lock.DefaultLockID),
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			if context.Cause(ctx) == errMigrationLockWait {
				return fail(errMigrationLockWait)
			}
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	// For the migrations goose runs next on this session; SessionUnlock
	// resets it before the connection goes back to the pool.
	if _, err := conn.ExecContext(ctx, "SELECT set_config('lock_timeout', $1, false)", fmt.Sprint(max(migrationStatementLockWait.Milliseconds(), 1))); err != nil {
		migrationLocker{}.SessionUnlock(ctx, conn) // goose unlocks only a lock taken; bounded past ctx's end
		return err
	}
	return nil
}

// migrationUnlockWait bounds how long SessionUnlock, or SessionLock
// failing, waits to release what the session may hold: past ctx's end
// (goose's to SessionUnlock never ends), but not without end on a server
// that does not answer (sqlstore.UnlockWait, as for the first-start
// lock).
var migrationUnlockWait = sqlstore.UnlockWait

// migrationUnlockContext is the context of a release of the migration
// lock: ctx's values, not its cancellation, bounded by
// migrationUnlockWait.
func migrationUnlockContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), migrationUnlockWait)
}

// endSession closes conn's session, and with it the session locks it may
// still hold after a release that failed or whose answer was lost. A
// connection closed under database/sql is not used again: pgx's
// ResetSession refuses it (driver.ErrBadConn) when the pool would next
// hand it out, and the pool discards it.
func endSession(conn *sql.Conn) {
	conn.Raw(func(dc any) error { return dc.(driver.Conn).Close() })
}

// SessionUnlock releases the locks SessionLock took on the same session
// conn, so the next replica waiting in pg_advisory_lock goes on, then
// gives the session back its own lock_timeout; it fails if the session
// did not hold them (pg_advisory_unlock answers false). If either
// statement fails, it ends the session: the connection would go back to
// the pool maybe holding the lock, or with the migrations' lock_timeout.
// Both are bounded by migrationUnlockWait.
func (migrationLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	ctx, cancel := migrationUnlockContext(ctx)
	defer cancel()
	var schema, legacy bool
	err := conn.QueryRowContext(ctx, migrationUnlock).Scan(&schema, &legacy)
	if err == nil {
		_, err = conn.ExecContext(ctx, "RESET lock_timeout")
	}
	if err != nil {
		endSession(conn)
		return err
	}
	if !schema || !legacy {
		return errors.New("the migration lock was not held")
	}
	return nil
}

// migrationUnlock releases the locks migrationLocker takes; each answers
// whether the session held it.
var migrationUnlock = fmt.Sprintf("SELECT pg_advisory_unlock(%d, %s), pg_advisory_unlock_shared(%d)", lockMigrations, schemaKey, lock.DefaultLockID)

// isBusy reports whether err is a wait given up: lock_not_available
// (lock_timeout) or query_canceled (statement_timeout).
func isBusy(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "55P03" || pe.Code == "57014")
}

// isConnLost reports whether err is the connection lost rather than the
// database's answer: any error that is not PostgreSQL's (a network error,
// the connection closed, no connection made), or one that ends the
// session: connection_exception (class 08), admin_shutdown (57P01,
// pg_terminate_backend or a server shutting down), crash_shutdown
// (57P02), cannot_connect_now (57P03).
func isConnLost(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return true
	}
	return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
