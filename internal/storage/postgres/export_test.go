package postgres

import (
	"database/sql"
	"time"

	"github.com/keyward/keyward/internal/storage/sqlstore"
)

// NewOn returns a store over db, whose schema is up to date, for tests
// that watch the statements the store runs.
func NewOn(db *sql.DB) *sqlstore.Store { return sqlstore.New(db, db, dialect()) }

// LockFirstStartKey is the key of the first-start lock, which
// pgtest.FirstStartLockKey must be.
const LockFirstStartKey = lockFirstStart

// MigrationLocker is the session locker migrations run under.
type MigrationLocker = migrationLocker

// WatchPinging is Watch, pinging a connection quiet for ping.
var WatchPinging = watch

// WatchAt is Watch, pinging a connection quiet for ping, its log's time
// read from now.
var WatchAt = watchAt

// SetDefaultConnectTimeout sets the connect timeout of DSNs that set none
// until the test ends.
func SetDefaultConnectTimeout(t interface{ Cleanup(func()) }, d time.Duration) {
	old := defaultConnectTimeout
	defaultConnectTimeout = d
	t.Cleanup(func() { defaultConnectTimeout = old })
}

// Dialect is the store's PostgreSQL dialect.
var Dialect = dialect

// SetMigrationStatementLockWait sets how long a migration's statement
// waits for a table lock until the test ends.
func SetMigrationStatementLockWait(t interface{ Cleanup(func()) }, d time.Duration) {
	old := migrationStatementLockWait
	migrationStatementLockWait = d
	t.Cleanup(func() { migrationStatementLockWait = old })
}

// SetMigrationUnlockWait sets how long a release of the migration lock
// waits for the database to answer until the test ends.
func SetMigrationUnlockWait(t interface{ Cleanup(func()) }, d time.Duration) {
	old := migrationUnlockWait
	migrationUnlockWait = d
	t.Cleanup(func() { migrationUnlockWait = old })
}
