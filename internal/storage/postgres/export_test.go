package postgres

import (
	"database/sql"

	"github.com/keyward/keyward/internal/storage/sqlstore"
)

// NewOn returns a store over db, whose schema is up to date, for tests
// that watch the statements the store runs.
func NewOn(db *sql.DB) *sqlstore.Store { return sqlstore.New(db, db, dialect()) }

// MigrationLocker is the session locker migrations run under.
type MigrationLocker = migrationLocker

// WatchPinging is Watch, pinging a connection quiet for ping.
var WatchPinging = watch
