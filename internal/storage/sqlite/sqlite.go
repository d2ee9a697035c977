// Package sqlite is the embedded storage backend: a single SQLite database
// file, written in WAL mode with a full fsync on every commit.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keyward/keyward/internal/storage/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure Open.
type Options struct {
	// NoMigrate makes Open fail, instead of migrating, when the schema is
	// not up to date.
	NoMigrate bool
	// MigrateNewOnly migrates a database that has no schema yet, and
	// makes Open fail, as NoMigrate does, when it has one that is not up
	// to date (a release still running may be serving from it).
	MigrateNewOnly bool
	// Logger receives warnings about the database file's mode; nil
	// discards them.
	Logger *slog.Logger
}

// Open opens (creating if needed) the database file at path and brings its
// schema up to date.
func Open(ctx context.Context, path string, opts Options) (*sqlstore.Store, error) {
	// synchronous(FULL): every commit is fsynced, so an answered request is
	// durable. busy_timeout lets a second process (keyward migrate, a backup)
	// wait instead of failing.
	// A new database is readable by its owner alone, as the data directory
	// is; SQLite gives its WAL and shared-memory files the same mode. (It
	// would create all three 0644.) An existing one that others can read
	// is made so too, on Unix.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Path == path {
		err = pe.Err // named below, once
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	f.Close()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tightenModes(path, log)
	dsn := writerDSN(path)
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer connection: SQLite serializes writers anyway, and one
	// connection makes group commit and the audit chain simple.
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, openError(path, err)
	}
	if err := migrate(ctx, w, sqlstore.ModeOf(opts.NoMigrate, opts.MigrateNewOnly)); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
	r.SetMaxIdleConns(max(4, 2*runtime.GOMAXPROCS(0)))
	return sqlstore.New(w, r, sqlstore.Dialect{Name: "sqlite", IsUniqueViolation: isUniqueViolation, IsBusy: isBusy}), nil
}

// writerDSN is the data source name of the database file at path, as
// Open's connections open it: in WAL mode, every commit fsynced
// (synchronous(FULL)).
func writerDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// openError words the failure to open the database file at path. SQLite's
// own words for a file that is no database, or a damaged one, end in its
// result code ("file is not a database (26)", "database disk image is
// malformed (11)") and say nothing of what to do.
func openError(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_NOTADB:
			return &fileError{fmt.Sprintf("sqlite: %s is not a SQLite database (another kind of file, or one whose start was overwritten): is it the right file? If it is Keyward's database, restore it from a backup", path), err}
		case sqlite3.SQLITE_CORRUPT:
			return &fileError{fmt.Sprintf("sqlite: the database %s is damaged (cut short, or overwritten in part): restore it from a backup", path), err}
		}
	}
	return fmt.Errorf("sqlite: open %s: %w", path, err)
}

// fileError is an error about the database file worded for an operator;
// it wraps SQLite's, for errors.As and the log.
type fileError struct {
	msg string
	err error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

// Migrate brings the schema of the database file at path up to date.
func Migrate(ctx context.Context, path string) error {
	s, err := Open(ctx, path, Options{})
	if err != nil {
		return err
	}
	return s.Close()
}

func migrate(ctx context.Context, db *sql.DB, mode sqlstore.MigrateMode) error {
	sub, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	return sqlstore.Migrate(ctx, p, "sqlite", mode)
}

// isBusy reports whether err is SQLite giving up on busy_timeout: another
// connection or process (keyward migrate, a backup) held the database.
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff // the primary code of an extended one
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
